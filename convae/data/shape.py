"""What a data source serves, known from the config alone: channels and image size.

The model is built for the data (``in_channels``, ``image_size``) and the config is
checked against it before any file is read, so a wrong size costs a second, not a load.
"""

from __future__ import annotations

from dataclasses import dataclass

MNIST_LIKE = ("auto", "bundled", "mnist", "fashion_mnist")
# Sources that cut or scale their images to data.image_size; the others have one size.
SIZED = ("photos", "folder")
SOURCES = (*MNIST_LIKE, "cifar10", *SIZED)
NATIVE_SIZE = {**dict.fromkeys(MNIST_LIKE, 28), "cifar10": 32, "photos": 32, "folder": 32}
COLOUR = ("cifar10", *SIZED)  # RGB unless data.grayscale=true
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
    native = NATIVE_SIZE[source]
    size = native if image_size is None else image_size
    if source not in SIZED and size != native:
        raise ShapeError(
            "data.image_size",
            image_size,
            f"data.source={source} serves {native}x{native} images; expected null or {native} "
            f"(data.source=photos or folder take any even size)",
        )
    if size < 4 or size % 2:
        raise ShapeError(
            "data.image_size", image_size, "expected an even int >= 4 (or null: the source's own)"
        )
    channels = 3 if source in COLOUR and not grayscale else 1
    return ImageShape(channels, size)
