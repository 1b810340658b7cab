"""data.source=cifar10: the CIFAR-10 python batches, in torchvision's on-disk layout.

The batches are pickles, and unpickling can run any code a file asks for; they are read
with an unpickler that builds only what the batches hold (a dict, lists, a uint8 numpy
array) and refuses every other global, as the checkpoints of this project are.
"""

from __future__ import annotations

import codecs
import logging
import os
import pickle
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch

from convae.data.idx import DataFileError
from convae.data.sources import ImageArrays, download_lock

log = logging.getLogger(__name__)

CIFAR_FOLDER = "cifar-10-batches-py"  # torchvision's layout under data.root
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
SIDE = 32
CLASSES = 10


def _latin1(text: str, encoding: str) -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1")
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed() -> dict[tuple[str, str], object]:
    reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's _reconstruct, any version
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,  # written by numpy 1.x
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # written by numpy 2.x
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,
    }


class _BatchUnpickler(pickle.Unpickler):
    """Builds only a CIFAR batch's contents; any other global is refused, never imported."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")  # the batches were written by Python 2
        self.path = path
        self.allowed = _allowed()

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.allowed:
            raise DataFileError(
                f"{self.path}: refused to unpickle {module}.{name}; a CIFAR-10 batch holds "
                "only a dict, lists and a numpy array (not a genuine batch, or tampered with)"
            )
        return self.allowed[(module, name)]


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch as uint8 images (n, 3, 32, 32) and int64 labels (n,)."""
    if not path.is_file():
        raise DataFileError(f"{path}: file not found (CIFAR-10 needs {', '.join(BATCHES)})")
    try:
        with open(path, "rb") as file:
            batch = _BatchUnpickler(file, path).load()
    except DataFileError:
        raise
    except Exception as err:  # a corrupt pickle fails in many ways (EOFError, KeyError, ...)
        reason = " ".join(str(err).split())[:300]
        raise DataFileError(
            f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {reason})"
        ) from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        raise DataFileError(f"{path}: not a CIFAR-10 batch (expected a dict with data, labels)")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
        raise DataFileError(f"{path}: data is not a 2-d uint8 array (n x {3 * SIDE * SIDE})")
    if data.shape[1] != 3 * SIDE * SIDE:
        raise DataFileError(f"{path}: data has shape {data.shape}, expected (n, {3 * SIDE**2})")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataFileError(f"{path}: labels are not a list of integers") from None
    if len(labels) != len(data):
        raise DataFileError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= CLASSES):
        raise DataFileError(f"{path}: labels outside 0..{CLASSES - 1}")
    # rows are the R, G and B planes of a 32x32 image, one after the other
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, SIDE, SIDE))
    return images, torch.from_numpy(labels)


def _read_batches(folder: Path, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [_read_batch(folder / name) for name in names]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def _move_into(source: Path, target: Path) -> None:
    """The files of ``source`` into ``target`` (which may exist, holding no batch): copied
    next to it first, so the last step is renames on one disk, not a copy cut short."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convae-download-", dir=target.parent))
    try:
        shutil.move(str(source), staging / source.name)
        target.mkdir(exist_ok=True)
        for file in sorted((staging / source.name).iterdir()):
            os.replace(file, target / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(target: Path, timeout_s: float) -> None:
    """torchvision's download (md5-checked) into a temporary folder, moved into place only
    when complete, so a failed download leaves nothing under data.root."""
    import torchvision.datasets as tvd

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        with tempfile.TemporaryDirectory(prefix="convae-download-") as tmp:
            tvd.CIFAR10(tmp, train=True, download=True)  # the archive holds test_batch too
            _move_into(Path(tmp) / CIFAR_FOLDER, target)
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        reason = " ".join(str(err).split())[:300]
        raise DataFileError(
            f"could not download cifar10 into {target} ({type(err).__name__}: {reason}); "
            "put the CIFAR-10 python batches there "
            "(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpacked) "
            "or use data.source=photos"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _has_any(folder: Path) -> bool:
    return any((folder / name).is_file() for name in BATCHES)


def load_cifar10(root: str | Path, *, allow_download: bool, timeout_s: float) -> ImageArrays:
    """CIFAR-10 from ``<root>/cifar-10-batches-py``: 50,000 train and 10,000 test images,
    uint8 (N, 3, 32, 32), with int64 labels; downloaded there first when the folder holds
    no batch and ``allow_download``. A folder with only some batches is an error naming the
    missing file (never overwritten by a download)."""
    folder = Path(root) / CIFAR_FOLDER
    if not _has_any(folder):
        if not allow_download:
            raise DataFileError(
                f"{folder}: no CIFAR-10 batches there (data_batch_1..5, test_batch)"
            )
        with download_lock(folder):
            if not _has_any(folder):  # else another process has just downloaded it
                log.info("cifar10 not found under %s; downloading", folder)
                _download(folder, timeout_s)
    images, labels = _read_batches(folder, TRAIN_BATCHES)
    test_images, test_labels = _read_batches(folder, (TEST_BATCH,))
    return ImageArrays("cifar10", images, labels, test_images, test_labels)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 1, H, W): ITU-R 601 luma in PIL's fixed point, so CIFAR-10
    in grey equals its images through PIL's convert("L"), as photos and folders are read."""
    weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(1, 3, 1, 1)
    luma = (images.to(torch.int32) * weights).sum(1, keepdim=True)
    return ((luma + 0x8000) >> 16).to(torch.uint8)
