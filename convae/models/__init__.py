"""The autoencoder and the registry of decoder upsampling modes."""

from convae.models.autoencoder import ConvAutoencoder, count_parameters
from convae.models.upsample import UPSAMPLERS

__all__ = ["UPSAMPLERS", "ConvAutoencoder", "count_parameters"]
