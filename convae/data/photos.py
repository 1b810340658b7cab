"""``data.source=photos``: square patches of the photographs in scikit-image's wheel.

Checkerboard artifacts were described on natural images (textures, skies, faces), where
MNIST's flat backgrounds and strokes barely show them. scikit-image ships about twenty
photographs under ``skimage/data/`` (no download), so these patches work offline.

Validation and test patches come from photographs that training never sees: the test
measures generalisation to new images, not memory of the training ones. Each split mixes
colour photographs and greyscale textures; greyscale photographs are repeated over the
three channels of an RGB patch. Patch positions are drawn from the data split seed, so
every run with the same ``data.split_seed`` gets the same patches.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from convae.data.folder import open_image
from convae.data.idx import DataFileError
from convae.data.noise import seeded_generator
from convae.data.sources import ImageArrays

# file under skimage/data -> split. Licences as scikit-image's docstrings state them:
# public domain or CC0 for all but coins and ihc ("no known copyright restrictions").
# Left out: synthetic images (chessboard, color, phantom, logo, horse) and the photographs
# whose docstring states no licence (moon, page, the Middlebury stereo motorcycle pair).
PHOTOS = {
    "astronaut.png": "train",  # skimage.data.astronaut: public domain (NASA)
    "hubble_deep_field.jpg": "train",  # public domain (NASA)
    "ihc.png": "train",  # immunohistochemistry: no known copyright restrictions
    "retina.jpg": "train",  # CC0 (Wikimedia Commons)
    "rocket.jpg": "train",  # public domain (SpaceX)
    "camera.png": "train",  # CC0 (Lav Varshney)
    "coins.png": "train",  # no known copyright restrictions
    "cell.png": "train",  # CC0
    "clock_motion.png": "train",  # clock: public domain (Stefan van der Walt)
    "microaneurysms.png": "train",  # CC0 (Andreas Maier)
    "text.png": "train",  # public domain
    "gravel.png": "train",  # CC0 (CC0Textures)
    "coffee.png": "val",  # CC0 (Rachel Michetti)
    "grass.png": "val",  # CC0 (CC0Textures)
    "chelsea.png": "test",  # CC0 (Stefan van der Walt)
    "brick.png": "test",  # CC0 (CC0Textures)
}
SPLITS = ("train", "val", "test")


def photo_folder() -> Path:
    """skimage/data inside the installed wheel, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise DataFileError(
            "data.source=photos needs scikit-image's photographs: pip install scikit-image"
        )
    return Path(spec.origin).parent / "data"


def read_photo(path: Path, grayscale: bool) -> torch.Tensor:
    """uint8 (C, H, W)."""
    try:  # the size checked from the header before decoding, as for data.source=folder
        with open_image(path) as image:
            array = np.asarray(image.convert("L" if grayscale else "RGB"))
    except DataFileError:  # a ValueError: open_image's own line, kept as it is
        raise
    except (OSError, ValueError) as err:
        raise DataFileError(f"{path}: cannot read this photograph ({err})") from None
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())  # PIL's buffer is read-only


def cut_patches(
    photos: list[torch.Tensor], count: int, size: int, seed: int, split: int
) -> torch.Tensor:
    """``count`` patches, shared out evenly over the photographs at least ``size`` on each
    side, at positions drawn from (seed, split, photograph)."""
    usable = [p for p in photos if min(p.shape[-2:]) >= size]
    out = torch.empty(count, photos[0].shape[0], size, size, dtype=torch.uint8)
    start = 0
    for i, photo in enumerate(usable):
        n = count // len(usable) + (i < count % len(usable))
        g = seeded_generator(seed, split, i)
        h, w = photo.shape[-2:]
        ys = torch.randint(0, h - size + 1, (n,), generator=g).tolist()
        xs = torch.randint(0, w - size + 1, (n,), generator=g).tolist()
        for j, (y, x) in enumerate(zip(ys, xs, strict=True)):
            out[start + j] = photo[:, y : y + size, x : x + size]
        start += n
    return out


def load_photos(
    *, patch_size: int, counts: tuple[int, int, int], grayscale: bool, seed: int
) -> ImageArrays:
    """Train, validation and test patches (``counts``), each split from its own photographs."""
    folder = photo_folder()
    patches = {}
    for index, split in enumerate(SPLITS):
        names = [name for name, s in PHOTOS.items() if s == split]
        photos = [read_photo(folder / name, grayscale) for name in names]
        patches[split] = cut_patches(photos, counts[index], patch_size, seed, index)
    return ImageArrays(
        "photos", patches["train"], val_images=patches["val"], test_images=patches["test"]
    )
