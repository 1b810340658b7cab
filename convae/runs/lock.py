"""One writer per folder: a run or sweep folder is claimed with a lock file for as long as a
process writes there, so two sweeps, two resumes or a sweep and its rerun never write into
one folder at once.

The lock file (``.convae.lock``, JSON: pid, host, start time, command) is created with
O_CREAT|O_EXCL, which is atomic on local file systems and NFS, and its holder also keeps an
exclusive ``flock`` on it until it releases it (the kernel drops that lock when the process
dies). A second process reads the holder from the file and gets a one-line error naming it.
A lock whose process is gone (same host, dead pid, no flock held) is stale: it is taken over
with a warning. A lock from another host is never taken over: its pid means nothing here.

Nothing is ever written through a link: the lock is created and reopened with O_NOFOLLOW
and must be a regular file, and a folder holding a symbolic link anywhere inside is refused
before anything is written there (``refuse_links``): every file convae writes in a run or
sweep folder is its own, so a link there can only send its writes elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from convae.config.errors import ConfigError

LOCK_NAME = ".convae.lock"
_MAX_COMMAND = 160  # characters of the holder's command shown in an error line
_ATTEMPTS = 50  # a lock file another process is creating or releasing: look again

log = logging.getLogger("convae")


class FolderRefused(ConfigError):
    """This command must not write in the folder (one line says why and the way out);
    nothing was written there."""


class FolderLocked(FolderRefused):
    """Another live process writes in the folder; the message names it."""


@dataclass
class RunLock:
    """A held lock; ``release()`` (idempotent) removes the file and drops the flock."""

    folder: Path
    fd: int
    pid: int
    stale: bool = False  # taken over from a process that died: the folder was convae's

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def release(self) -> None:
        if self.fd < 0 or os.getpid() != self.pid:  # a copy in a forked or pickled child
            return
        with contextlib.suppress(OSError):
            if _same_file(self.path, self.fd):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1


def holder_info(command: list[str] | None = None) -> dict[str, Any]:
    """What a lock file records about the process holding it."""
    cmd = " ".join(command if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]])
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": cmd,
    }


def acquire(folder: str | Path, what: str = "run folder") -> RunLock:
    """Claims ``folder`` (created if missing) for this process, or raises FolderLocked
    naming the holder. A stale lock (same host, dead pid) is taken over with a warning."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)  # someone probing it holds this only briefly
            _write(fd, holder_info())
            return RunLock(folder, fd, os.getpid())
        lock = _take_over_if_stale(path, folder, what)
        if lock is not None:
            return lock
        time.sleep(0.02)  # it was being created or released: look again
    raise FolderLocked(f"{folder}: could not claim {path}: it is being written; try again")


def _take_over_if_stale(path: Path, folder: Path, what: str) -> RunLock | None:
    """The existing lock file: raises FolderLocked if its holder may be alive, returns the
    lock taken over if it is stale, None if the file vanished or is being written."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None  # released meanwhile
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _not_a_lock(path, "a symbolic link") from None
        if err.errno == errno.EISDIR:
            raise _not_a_lock(path, "a folder") from None
        raise
    keep = False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_a_lock(path, "not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            flocked = True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            flocked = False
        if flocked and not _same_file(path, fd):
            return None  # released (unlinked) between our open and flock: try again
        holder = _read(fd)
        if holder is None:  # empty or half-written
            if not flocked or _age_s(fd) < 5:
                return None  # its creator is writing it: look again
            holder = {}  # its creator died before writing it
        here = socket.gethostname()
        host, pid = holder.get("host"), holder.get("pid")
        if host not in (None, here):
            raise FolderLocked(
                f"{folder}: {what} in use by {_describe(holder)}; a lock held on another host "
                f"is never taken over: if that process is gone, delete {path}"
            )
        if not flocked or (isinstance(pid, int) and _alive(pid)):
            raise FolderLocked(
                f"{folder}: {what} in use by {_describe(holder)}; wait for it to finish or "
                "stop it (one writer per folder)"
            )
        log.warning(
            "%s: taking over the stale lock of %s (that process is gone)",
            folder,
            _describe(holder),
        )
        _write(fd, holder_info())
        keep = True
        return RunLock(folder, fd, os.getpid(), stale=True)
    finally:
        if not keep:
            os.close(fd)


def _not_a_lock(path: Path, what: str) -> FolderRefused:
    return FolderRefused(
        f"{path} is {what}, not a convae lock: convae never opens it for writing; remove it "
        "if no convae process uses the folder"
    )


def refuse_links(folder: str | Path, only: str | None = None, what: str = "run folder") -> None:
    """Raises FolderRefused naming the first symbolic link inside ``folder`` (or inside its
    entry ``only``, that entry included). The folder itself may sit under a linked path:
    only what is inside is convae's to write."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    top = folder if only is None else folder / only
    if top.is_symlink():
        raise _link_inside(top, folder, what)
    for root, dirs, files in os.walk(top):  # followlinks=False: a linked dir not entered
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                raise _link_inside(path, folder, what)


def _link_inside(path: Path, folder: Path, what: str) -> FolderRefused:
    return FolderRefused(
        f"{path} is a symbolic link inside the {what} {folder}: convae writes only its own "
        "files there and never through a link; remove the link or choose another folder"
    )


def read_holder(folder: str | Path) -> dict[str, Any] | None:
    """The recorded holder of ``folder``'s lock, or None if it has none (or unreadable)."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return _read(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


def _describe(holder: dict[str, Any]) -> str:
    cmd = str(holder.get("command", "?"))
    if len(cmd) > _MAX_COMMAND:
        cmd = cmd[: _MAX_COMMAND - 3] + "..."
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
        f"{holder.get('since', '?')} ({' '.join(cmd.split())})"
    )


def _write(fd: int, data: dict[str, Any]) -> None:
    raw = (json.dumps(data) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, raw, 0)
    os.fsync(fd)


def _read(fd: int) -> dict[str, Any] | None:
    try:
        size = os.fstat(fd).st_size
        data = json.loads(os.pread(fd, max(size, 1), 0).decode())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _same_file(path: Path, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _age_s(fd: int) -> float:
    return time.time() - os.fstat(fd).st_mtime


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True
