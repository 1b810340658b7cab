"""A decoder in one file: ``model.upsample=nearest_blur``, a nearest resize smoothed by a
fixed [1, 2, 1] blur before the stage's conv (docs/extending.md walks through it).

A stage maps ``in_ch`` channels to ``out_ch`` at size ``target`` and ends in a ReLU, with
one learned layer, as every decoder in convae/models/upsample.py does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convae.models.decoders import register
from convae.models.upsample import Resize, same_conv


class Blur(nn.Module):
    """A fixed 3x3 binomial blur on each channel, edges padded by reflection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        row = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(row, row) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), groups=x.shape[1])


@register("nearest_blur")
def nearest_blur(*, in_ch: int, out_ch: int, target: int, kernel_size: int, options: None):
    """Nearest resize to the target size, a fixed blur, then a 'same' conv."""
    return nn.Sequential(
        Resize(target, "nearest"),
        Blur(in_ch),
        same_conv(in_ch, out_ch, kernel_size),
        nn.ReLU(inplace=True),
    )
