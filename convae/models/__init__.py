"""Autoencoder builders and the registry of decoder upsampling modes."""

from convae.models.autoencoder import ConvAutoencoder, build_autoencoder, count_parameters
from convae.models.upsample import UPSAMPLERS

__all__ = ["UPSAMPLERS", "ConvAutoencoder", "build_autoencoder", "count_parameters"]
