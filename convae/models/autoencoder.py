"""The convolutional autoencoder of the tutorial, generalised to any depths and decoder.

Encoder: per depth d_i, conv (k x k, 'same') + ReLU + MaxPool2d(2, ceil_mode=True), so
28 -> 14 -> 7 -> 4 for three stages. Decoder: mirror image, each stage upsampling back to
the matching encoder size with the mirrored depth, then a final conv to one channel.
The network returns logits; ``torch.sigmoid`` gives the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from convae.models.decoders import UPSAMPLERS, decoder_options
from convae.models.geometry import encoder_sizes
from convae.models.init import initialise_
from convae.models.upsample import same_conv

__all__ = ["ConvAutoencoder", "count_parameters", "encoder_sizes"]


class ConvAutoencoder(nn.Module):
    """Keyword-only, so a config's model section maps straight onto it:
    ``ConvAutoencoder(**cfg.model)``. The values are trusted: ``config.validate`` has
    checked them (positive depths, odd kernel, a registered upsample mode). The decoder's
    own settings (``transposed_kernel_size``, ``icnr``, ...: convae/models/upsample.py)
    come as ``decoder_settings``; each decoder takes its own and ignores the others'."""

    def __init__(
        self,
        *,
        depths: Sequence[int] = (16, 8, 8),
        kernel_size: int = 3,
        upsample: str = "nearest",
        init: str = "torch",
        in_channels: int = 1,
        image_size: int = 28,
        **decoder_settings: Any,
    ) -> None:
        super().__init__()
        depths = list(depths)
        sizes = encoder_sizes(image_size, len(depths))

        enc: list[nn.Module] = []
        ch = in_channels
        for d in depths:
            enc += [same_conv(ch, d, kernel_size), nn.ReLU(inplace=True)]
            enc.append(nn.MaxPool2d(2, ceil_mode=True))
            ch = d
        self.encoder = nn.Sequential(*enc)

        build = UPSAMPLERS[upsample]
        options = decoder_options(upsample, decoder_settings)
        dec: list[nn.Module] = []
        for d, target in zip(reversed(depths), reversed(sizes[:-1]), strict=True):
            dec.append(
                build(in_ch=ch, out_ch=d, target=target, kernel_size=kernel_size, options=options)
            )
            ch = d
        dec.append(same_conv(ch, in_channels, kernel_size))
        self.decoder = nn.Sequential(*dec)
        initialise_(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as the run's results and the HPARAMS tab report them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
