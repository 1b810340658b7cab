"""Decoder upsampling stages, by name.

Every stage maps ``in_ch`` channels at size n to ``out_ch`` channels at a given target size
(2n or 2n - 1, e.g. 4 -> 7, 7 -> 14, 14 -> 28) and ends in a ReLU. Resize stages keep the
learned part a plain conv after the resize; learned upsamplers fold it into the upsampling
layer, so every mode has one learned layer per stage and comparable parameter counts.

A new decoder is one builder decorated with ``@register("name")`` plus one YAML file in
``conf/upsample/`` (docs/extending.md); ``tests/test_models.py`` runs over the whole
registry. A decoder with settings of its own declares them with its registration,
``@register("name", options=SomeOptions)``: a frozen dataclass whose fields are its
``model.*`` keys with their defaults, handed to the builder as ``options`` (None for a
decoder without settings). Every other decoder ignores them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


class StageBuilder(Protocol):
    def __call__(
        self, *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: Any
    ) -> nn.Module: ...


UPSAMPLERS: dict[str, StageBuilder] = {}
# The settings dataclass of each decoder that has settings.
DECODER_OPTIONS: dict[str, type] = {}


def register(name: str, *, options: type | None = None) -> Callable[[StageBuilder], StageBuilder]:
    """Registers the decorated stage builder as ``model.upsample=<name>``, with the
    dataclass of its own settings (``options``), if it has any."""
    if options is not None and not dataclasses.is_dataclass(options):
        raise TypeError(f"upsample mode {name!r}: options must be a dataclass, not {options!r}")

    def add(builder: StageBuilder) -> StageBuilder:
        if name in UPSAMPLERS:
            raise ValueError(f"upsample mode {name!r} is registered twice")
        if options is not None:
            settings = decoder_settings()
            for field in dataclasses.fields(options):
                if field.name in settings and settings[field.name] != _default(field):
                    raise ValueError(
                        f"upsample mode {name!r}: setting {field.name!r} has another default "
                        "in another decoder's options"
                    )
            DECODER_OPTIONS[name] = options
        UPSAMPLERS[name] = builder
        return builder

    return add


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def decoder_settings() -> dict[str, Any]:
    """Every decoder setting (a ``model.*`` key) any registered decoder declares, with its
    default."""
    return {
        field.name: _default(field)
        for options in DECODER_OPTIONS.values()
        for field in dataclasses.fields(options)
    }


def decoder_setting_problems(settings: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """(key, value, what is allowed) for each decoder setting in ``settings`` (the model
    config) that its decoder's options refuse, through their optional static method
    ``problems(values)``. Every decoder's settings are checked, whichever decoder the config
    chooses, so a config stays valid when only its ``upsample`` changes."""
    found: list[tuple[str, Any, str]] = []
    for options in DECODER_OPTIONS.values():
        check = getattr(options, "problems", None)
        if check is not None:
            own = {f.name for f in dataclasses.fields(options)}
            found += check({k: v for k, v in settings.items() if k in own})
    return found


def decoder_options(upsample: str, settings: Mapping[str, Any]) -> Any:
    """The options of decoder ``upsample`` from ``settings`` (model arguments beyond the
    common ones): its own fields, the defaults where a key is not given; None for a
    decoder without settings. A key no registered decoder declares is a TypeError, as an
    unexpected keyword argument is."""
    unknown = sorted(set(settings) - set(decoder_settings()))
    if unknown:
        raise TypeError(f"unexpected model arguments {', '.join(unknown)}: no decoder has them")
    options = DECODER_OPTIONS.get(upsample)
    if options is None:
        return None
    own = {f.name for f in dataclasses.fields(options)}
    return options(**{k: v for k, v in settings.items() if k in own})


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


@dataclasses.dataclass(frozen=True)
class TransposedOptions:
    transposed_kernel_size: int = 3  # 3: uneven overlap (checkerboard-prone); 4: even overlap

    @staticmethod
    def problems(values: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
        k = values.get("transposed_kernel_size", 3)
        if k >= 2:
            return []
        return [
            (
                "model.transposed_kernel_size",
                k,
                "expected an int >= 2 (stride 2 leaves holes below)",
            )
        ]


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
        nn.ConvTranspose2d(in_ch, out_ch, k, stride=2),
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


@dataclasses.dataclass(frozen=True)
class PixelShuffleOptions:
    icnr: bool = False  # start as conv + nearest resize (ICNR, Aitken et al. 2017)


@register("pixel_shuffle", options=PixelShuffleOptions)
def pixel_shuffle(
    *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: PixelShuffleOptions
) -> nn.Module:
    return PixelShuffleStage(in_ch, out_ch, target, kernel_size, icnr=options.icnr)
