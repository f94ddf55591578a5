"""The headless engine of GAN Studio. Nothing in here imports the GUI."""
