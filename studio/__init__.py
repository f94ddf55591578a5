"""GAN Studio: look inside a trained StyleGAN2 or StyleGAN3 and animate what it makes."""

__version__ = "0.2.0"
