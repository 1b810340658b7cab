"""Decoder upsampling stages, by name.

Every stage maps ``in_ch`` channels at size n to ``out_ch`` channels at a given target size
(2n or 2n - 1, e.g. 4 -> 7, 7 -> 14, 14 -> 28) and ends in a ReLU. Resize stages keep the
learned part a plain conv after the resize; learned upsamplers fold it into the upsampling
layer, so every mode has one learned layer per stage and comparable parameter counts.

A new decoder is one builder decorated with ``@register("name")`` plus one YAML file in
``conf/upsample/`` (docs/extending.md); ``tests/unit/models/test_models.py`` runs over the whole
registry. The registry, the decoders' own settings and the built-in names are in
convae/models/decoders.py, which imports no torch; this module is imported at the first
build.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from convae.models.decoders import (
    PixelShuffleOptions,
    StageBuilder,
    TransposedOptions,
    register,
)

__all__ = [
    "CropTo",
    "PixelShuffleStage",
    "Resize",
    "TransposedConv",
    "icnr_",
    "keep_transposed_float32",
    "register",
    "same_conv",
]


def same_conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


class Resize(nn.Module):
    """Parameter-free resize to a fixed size, as ``tf.image.resize`` in the tutorial."""

    def __init__(self, size: int, mode: str) -> None:
        super().__init__()
        self.size = size
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, size=(self.size, self.size), mode="nearest")
        return F.interpolate(x, size=(self.size, self.size), mode=self.mode, align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, mode={self.mode!r}"


class CropTo(nn.Module):
    """Keeps ``size`` rows and columns from ``offset``: 2x upsamplers overshoot odd sizes."""

    def __init__(self, size: int, offset: int = 0) -> None:
        super().__init__()
        self.size = size
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, s = self.offset, self.size
        return x[..., o : o + s, o : o + s]

    def extra_repr(self) -> str:
        return f"size={self.size}, offset={self.offset}"


def _resize_conv(mode: str) -> StageBuilder:
    def build(
        *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: None
    ) -> nn.Module:
        return nn.Sequential(
            Resize(target, mode), same_conv(in_ch, out_ch, kernel_size), nn.ReLU(inplace=True)
        )

    build.__doc__ = f"{mode} resize to the target size, then a 'same' conv (Odena et al. 2016)."
    return build


register("nearest")(_resize_conv("nearest"))
register("bilinear")(_resize_conv("bilinear"))


class TransposedConv(nn.ConvTranspose2d):
    """A ConvTranspose2d that can keep float32 inside bf16 autocast (``float32``, set by
    :func:`keep_transposed_float32`): the same parameters and state dict either way."""

    float32 = False

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        device = x.device.type
        if not (self.float32 and torch.is_autocast_enabled(device)):
            return super().forward(x, output_size)
        with torch.autocast(device, enabled=False):
            return super().forward(x.float(), output_size)


def keep_transposed_float32(net: nn.Module, on: bool) -> None:
    """Keeps (or stops keeping) every transposed convolution of ``net`` in float32 under
    autocast: convae/config/precision.py's ``float32_transposed`` says when."""
    for module in net.modules():
        if isinstance(module, TransposedConv):
            module.float32 = on


@register("transposed", options=TransposedOptions)
def transposed(
    *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: TransposedOptions
) -> nn.Module:
    """ConvTranspose2d with stride 2 and kernel ``transposed_kernel_size``.

    The full output (2(n-1) + k) is cropped from offset (k-1)//2 — the alignment of
    padding (k-1)//2 — to the target size. k = 3 overlaps unevenly (checkerboard-prone);
    k = 4 overlaps evenly.
    """
    k = options.transposed_kernel_size
    return nn.Sequential(
        TransposedConv(in_ch, out_ch, k, stride=2),
        CropTo(target, offset=(k - 1) // 2),
        nn.ReLU(inplace=True),
    )


class PixelShuffleStage(nn.Module):
    """Sub-pixel conv (Shi et al. 2016): conv to 4C channels, PixelShuffle(2), crop, ReLU.

    On the 4 -> 7 stage the shuffle gives 8x8 and the last row and column are dropped, so
    the kept 7x7 grid starts on the same phase as every other stage.

    With ``icnr`` (Aitken et al. 2017) the four sub-kernels that the shuffle interleaves into
    one output channel start identical, biases too, so at initialisation the stage equals a
    conv followed by a nearest 2x resize: no checkerboard at step 0.
    """

    def __init__(self, in_ch: int, out_ch: int, target: int, kernel_size: int, icnr: bool):
        super().__init__()
        self.conv = same_conv(in_ch, out_ch * 4, kernel_size)
        self.shuffle = nn.PixelShuffle(2)
        self.crop = CropTo(target)
        self.act = nn.ReLU(inplace=True)
        self.icnr = icnr
        if icnr:
            icnr_(self.conv, upscale=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.crop(self.shuffle(self.conv(x))))


@torch.no_grad()
def icnr_(
    conv: nn.Conv2d, upscale: int = 2, reinit: Callable[[nn.Conv2d], None] | None = None
) -> None:
    """Copies one freshly initialised sub-kernel (and bias) to all r*r shuffle phases;
    ``reinit`` re-initialises that sub-kernel first (convae/models/init.py)."""
    r2 = upscale * upscale
    out_ch = conv.out_channels // r2
    base = nn.Conv2d(conv.in_channels, out_ch, conv.kernel_size, padding=conv.padding)
    if reinit is not None:
        reinit(base)
    # PixelShuffle takes channel c*r2 + phase to output channel c, so repeat each kernel r2 times.
    conv.weight.copy_(base.weight.repeat_interleave(r2, dim=0))
    if conv.bias is not None and base.bias is not None:
        conv.bias.copy_(base.bias.repeat_interleave(r2, dim=0))


@register("pixel_shuffle", options=PixelShuffleOptions)
def pixel_shuffle(
    *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: PixelShuffleOptions
) -> nn.Module:
    return PixelShuffleStage(in_ch, out_ch, target, kernel_size, icnr=options.icnr)
