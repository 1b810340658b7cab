"""Checkpoint saves that are atomic on the checkpoint's own filesystem and never fail quietly.

Lightning's ``TorchCheckpointIO`` saves through fsspec, which writes a temporary file in
``$TMPDIR`` and moves it onto the target; with ``$TMPDIR`` on another filesystem the move is
a copy, so a kill during it leaves a truncated (often empty) ``last.ckpt``, and a kill before
it leaks the temporary file. Its ``_atomic_save`` also catches ``PermissionError`` and drops
it unless the cause was a cross-device rename, so a read-only ``checkpoints/`` folder lost
every checkpoint without a word. Here the temporary file lives beside the target, is
fsynced, renamed over it and the folder fsynced; an ``OSError`` becomes a
:class:`CheckpointSaveError` that names the checkpoint and stops the run.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.plugins.io import TorchCheckpointIO

from convae.errors import ConvaeError

log = logging.getLogger("convae")
PathLike = str | os.PathLike[str]  # what Lightning passes as a checkpoint path

_TMP_SUFFIX = ".tmp"
_HINTS = {
    errno.ENOSPC: "free space on its filesystem",
    errno.EDQUOT: "free space or raise the quota",
    errno.EROFS: "put the run on a writable filesystem",
}
_WRITABLE = "make the folder writable"


class CheckpointSaveError(ConvaeError):
    """A checkpoint could not be written: the run stops, since every later save would fail
    the same way and the training would be lost."""

    def __init__(self, path: Path, err: OSError) -> None:
        self.path = path
        self.os_error = err
        reason = f"[Errno {err.errno}] {err.strerror}" if err.strerror else str(err)
        hint = _HINTS.get(err.errno or 0, _WRITABLE)
        super().__init__(f"checkpoint save failed: {path}: {reason}; {hint}, then run again")

    def __reduce__(self) -> tuple[Any, ...]:
        # Built again from its own arguments (the default would call it with the message
        # alone): a sweep job failing with it reaches the sweep's main process intact.
        return type(self), (self.path, self.os_error), self.__dict__


def temp_name(target: Path) -> Path:
    """``.<name>.<host>.<pid>.<random>.tmp`` beside the target: host and pid let a later save
    tell a temporary file of a killed process from one still being written."""
    host = socket.gethostname().replace(".", "_") or "host"
    return target.with_name(
        f".{target.name}.{host}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary checkpoint files left in ``folder`` by killed processes on this host
    (a SIGKILL gives the writer no chance to); those of live processes stay. Returns them."""
    host = socket.gethostname().replace(".", "_") or "host"
    removed = []
    for tmp in folder.glob(f".*{_TMP_SUFFIX}"):
        parts = tmp.name[: -len(_TMP_SUFFIX)].rsplit(".", 3)  # [.name, host, pid, random]
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        if pid != os.getpid() and _pid_alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if removed:
        log.warning("Removed %d stale temporary checkpoint file(s) in %s", len(removed), folder)
    return removed


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as err:  # some filesystems cannot fsync a folder; the rename is done
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def save_atomic(checkpoint: dict[str, Any], path: PathLike) -> None:
    """torch.save to a temporary file beside ``path``, fsync, rename over ``path``, fsync
    the folder: a kill at any moment leaves the old file or the new one. On failure the
    temporary file is removed; an ``OSError`` is raised as :class:`CheckpointSaveError`."""
    target = Path(path).absolute()
    tmp = temp_name(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(target.parent)
        # Serialized first (as Lightning does): torch's zip writer, failing on a full disk,
        # would hide the OSError behind its own RuntimeError.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with open(tmp, "xb") as f:  # 0o666 less the umask, like any file the run writes
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):  # the folder refused the file: nothing is left
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CheckpointSaveError(target, err) from err
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with :func:`save_atomic` for local paths; loading and
    removal are Lightning's, remote (fsspec URL) paths keep Lightning's save."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        save_atomic(checkpoint, path)


def _is_local(path: PathLike) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(get_filesystem(path), LocalFileSystem)
