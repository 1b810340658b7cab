"""What a data source serves, known from the config alone: channels and image size.

The model is built for the data (``in_channels``, ``image_size``) and the config is
checked against it before any file is read, so a wrong size costs a second, not a load.
Each source declares what it serves where it registers (convae/data/registry.py); no
torch is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from convae.data.registry import SourceNames, data_source, registered

# Every registered source's name, read live (a source registered later is in it too).
SOURCES = SourceNames()
RESIZE_MODES = ("none", "resize", "crop")  # data.resize, for source=folder
# data.source=photos: the smallest held-out photograph (chelsea.png, 451x300) bounds a patch.
MAX_PATCH = 300


class ShapeError(ValueError):
    """(key, value, what is allowed): config.validate turns it into its one-line error."""


@dataclass(frozen=True)
class ImageShape:
    channels: int
    size: int  # square images, size x size


def served_shape(source: str, image_size: int | None, grayscale: bool) -> ImageShape:
    """The shape of the images ``source`` serves under these data settings."""
    spec = data_source(source)
    native = spec.native_size
    size = native if image_size is None else image_size
    if not spec.any_size and size != native:
        sized = " or ".join(name for name, s in registered().items() if s.any_size)
        raise ShapeError(
            "data.image_size",
            image_size,
            f"data.source={source} serves {native}x{native} images; expected null or {native} "
            f"(data.source={sized} take any even size)",
        )
    if size < 4 or size % 2:
        raise ShapeError(
            "data.image_size", image_size, "expected an even int >= 4 (or null: the source's own)"
        )
    channels = 3 if spec.colour and not grayscale else 1
    return ImageShape(channels, size)
