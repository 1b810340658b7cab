"""The autoencoder and the registry of decoder upsampling modes.

Names are resolved on first use (PEP 562), so importing a torch-free module of this package
(decoders, geometry, init's and losses' names, memory) does not import torch."""

from __future__ import annotations

from typing import Any

__all__ = ["UPSAMPLERS", "ConvAutoencoder", "count_parameters"]


def __getattr__(name: str) -> Any:
    if name == "UPSAMPLERS":
        from convae.models.decoders import UPSAMPLERS

        return UPSAMPLERS
    if name in ("ConvAutoencoder", "count_parameters"):
        from convae.models import autoencoder

        return getattr(autoencoder, name)
    raise AttributeError(f"module 'convae.models' has no attribute {name!r}")
