"""convae: config-driven experiments with convolutional autoencoders."""

__version__ = "0.1.0"
