"""data.source=folder: the user's own PNG and JPEG files, as uint8 squares of one size.

Every file is checked while it is read, so a corrupt file, an odd size or an empty folder
fails at load time with one line naming it, not as a shape error deep inside training.
A ``train/`` subfolder (with optional ``val/`` and ``test/``) gives the splits; otherwise
the data module carves them out of all the images.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from convae.data.idx import DataFileError
from convae.data.shape import RESIZE_MODES
from convae.data.sources import ImageArrays

log = logging.getLogger(__name__)

SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
PROGRESS_MIN_FILES = 500  # below this, reading takes too little time to be worth a bar
_WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16-bit greyscale PNGs open as these
# The most pixels an image file may declare: checked from its header, before any pixel is
# decoded. A PNG of one colour compresses about 1000:1, so a 164 KB file can declare
# 13000x13000 pixels and cost 0.7 GB to decode (PIL's own limit, 89 megapixels, only
# warns below twice that). 50 megapixels is more than a full-frame camera photograph
# (45 MP, 8256x5504), about 200 MB decoded as RGBA, and far more than a training image
# needs (each is resized or cropped to data.image_size).
MAX_PIXELS = 50_000_000
_PIL_BOMB = re.compile(r"Image size \((\d+) pixels\)")


def _image_files(folder: Path) -> list[Path]:
    """PNG/JPEG files under ``folder``, hidden ones left out: macOS writes a ``._name.jpg``
    metadata file beside each image on some disks, and those are not images."""
    found = (
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _files_in(folder: Path, label: str) -> list[Path]:
    files = _image_files(folder)
    if not files:
        raise DataFileError(f"{label}: no PNG or JPEG files (searched recursively)")
    return files


def _split_files(root: Path) -> list[list[Path] | None]:
    """Files of train, val and test (None: no such subfolder), or of all under ``root``
    as train when it has no ``train/`` subfolder."""
    label = f"data.root={root}"
    if not (root / "train").is_dir():
        return [_files_in(root, label), None, None]
    splits = [
        _files_in(root / name, f"{label}/{name}") if (root / name).is_dir() else None
        for name in SPLITS
    ]
    inside = {p for files in splits for p in files or ()}
    ignored = [p for p in _image_files(root) if p not in inside]
    if ignored:
        log.warning(
            "data.root=%s: %d PNG/JPEG files outside train/, val/ and test/ are ignored (e.g. %s)",
            root,
            len(ignored),
            ignored[0],
        )
    return splits


def _too_large(path: Path, size: str) -> DataFileError:
    return DataFileError(
        f"{path}: {size} declared in its header, more than the {MAX_PIXELS // 1_000_000} "
        "megapixels an image may have (convae.data.folder.MAX_PIXELS); not decoded: "
        "downscale it or remove the file"
    )


def check_pixels(image, path: Path) -> None:
    """A DataFileError naming ``path`` when the opened (not yet decoded) ``image`` declares
    more than MAX_PIXELS pixels."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_large(path, f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels)")


@contextmanager
def open_image(path: Path) -> Iterator:
    """``PIL.Image.open`` (which reads the header only) with the size checked before
    anything is decoded; PIL's own decompression-bomb warning and error (above 89 and 179
    megapixels, past this cap) become this module's one-line error."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as err:
        found = _PIL_BOMB.search(str(err))
        raise _too_large(path, f"{found.group(1)} pixels" if found else "an image size") from None
    with image:
        check_pixels(image, path)
        yield image


def _to_mode(image, grayscale: bool):
    from PIL import Image

    if image.mode in _WIDE_GREY:  # convert() would clip 16-bit values at 255: scale instead
        wide = np.asarray(image).astype(np.int64)
        image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    return image.convert("L" if grayscale else "RGB")


def _centre(image, size: int):
    width, height = image.size
    left, top = round((width - size) / 2), round((height - size) / 2)
    return image.crop((left, top, left + size, top + size))


def _fit(image, path: Path, size: int, resize: str):
    """``image`` as a ``size`` square, as data.resize says (torchvision's Resize + CenterCrop
    for "resize"), or a DataFileError naming the file."""
    from PIL import Image

    width, height = image.size
    if resize == "none" and (width, height) != (size, size):
        raise DataFileError(
            f"{path}: {width}x{height} pixels, expected {size}x{size} (data.image_size); "
            "set data.resize=resize or data.resize=crop"
        )
    if resize == "crop" and min(width, height) < size:
        raise DataFileError(
            f"{path}: {width}x{height} pixels, smaller than {size}x{size} (data.image_size) "
            "so it cannot be cropped; set data.resize=resize or remove the file"
        )
    if resize == "resize":
        short, long = min(width, height), max(width, height)
        scaled = (size, int(size * long / short))
        scaled = scaled if width <= height else scaled[::-1]
        if scaled != (width, height):
            image = image.resize(scaled, Image.BICUBIC)
    return _centre(image, size)


def _read(path: Path, *, size: int, grayscale: bool, resize: str) -> np.ndarray:
    """One file as a uint8 (C, size, size) array."""
    from PIL import ImageOps

    try:  # load() inside: a truncated file fails here, not later
        with open_image(path) as image:
            image.load()
            # upright, as image viewers show it: cameras store the pixels as the sensor read
            # them and the rotation in an EXIF tag
            pixels = _to_mode(ImageOps.exif_transpose(image), grayscale)
    except DataFileError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... on bad data
        reason = " ".join(str(err).split())[:300]
        raise DataFileError(
            f"{path}: not a readable PNG or JPEG image ({type(err).__name__}: {reason})"
        ) from None
    array = np.asarray(_fit(pixels, path, size, resize))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_splits(
    splits: Sequence[list[Path] | None], *, size: int, grayscale: bool, resize: str, progress: bool
) -> list[torch.Tensor | None]:
    from tqdm import tqdm

    total = sum(len(files) for files in splits if files)
    show = progress and total > PROGRESS_MIN_FILES
    out: list[torch.Tensor | None] = []
    with tqdm(total=total, disable=not show, desc="reading images", unit="img") as bar:
        for files in splits:
            if files is None:
                out.append(None)
                continue
            # preallocated uint8: a list of float tensors would take 8x the memory at its peak
            images = torch.empty((len(files), 1 if grayscale else 3, size, size), dtype=torch.uint8)
            array = images.numpy()  # a view: each file is copied straight into place
            for i, path in enumerate(files):
                array[i] = _read(path, size=size, grayscale=grayscale, resize=resize)
                bar.update()
            out.append(images)
    return out


def load_folder(
    root: str | Path, *, image_size: int, grayscale: bool, resize: str, progress: bool = True
) -> ImageArrays:
    """Every PNG/JPEG file under ``root`` (recursively, sorted by relative path) as uint8
    (N, 1 or 3, image_size, image_size); ``resize`` is one of RESIZE_MODES. Splits come from
    ``train/``, ``val/`` and ``test/`` subfolders when ``root/train`` exists."""
    if resize not in RESIZE_MODES:  # config.validate checks data.resize; this is a bug guard
        raise ValueError(f"resize={resize!r}: expected one of {', '.join(RESIZE_MODES)}")
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(
            f"data.root={root}: no such folder; data.source=folder reads PNG/JPEG files "
            "under data.root"
        )
    train, val, test = _read_splits(
        _split_files(root), size=image_size, grayscale=grayscale, resize=resize, progress=progress
    )
    assert train is not None  # _split_files always has train files or raises
    return ImageArrays("folder", train, test_images=test, val_images=val)
