"""Reading MNIST-format IDX files (plain or gzipped) with errors that name the file.

torchvision's reader trusts its input; a truncated download or a wrong file then fails
deep inside training. Here every check happens at load time.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from convae.errors import ConvaeError

# Third byte of the magic number: element type; fourth: number of dimensions.
_UBYTE = 0x08


class DataFileError(ConvaeError, ValueError):
    """A data file is missing, corrupt or inconsistent; the message names the file."""


def read_idx(path: str | Path, *, ndim: int) -> torch.Tensor:
    """An unsigned-byte IDX array of ``ndim`` dimensions as a uint8 tensor."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(f"{path}: corrupt or truncated gzip data ({err})") from None
    if len(raw) < 4:
        raise DataFileError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    zero, dtype, dims = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype != _UBYTE or dims != ndim:
        raise DataFileError(
            f"{path}: wrong magic number 0x{raw[:4].hex()}, expected "
            f"0x000008{ndim:02x} (unsigned bytes, {ndim} dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataFileError(
            f"{path}: {len(raw) - header} data bytes, expected {expected} for shape {shape} "
            "(truncated or corrupt file)"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(array.copy())


def read_idx_pair(images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) and labels (N,), checked to agree in count."""
    x = read_idx(images, ndim=3)
    y = read_idx(labels, ndim=1)
    if len(x) != len(y):
        raise DataFileError(
            f"{images} holds {len(x)} images but {labels} holds {len(y)} labels; they must match"
        )
    return x, y
