"""GAN Studio: look inside a trained StyleGAN2 and animate what it makes."""

__version__ = "0.1.0"
