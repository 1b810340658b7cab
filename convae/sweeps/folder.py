"""A sweep folder that already holds something: one sweep at a time, and an explicit
choice (``sweep_existing``) before a sweep writes into a folder with old jobs.

The sweep folder (``SweepFolder``, a Hydra callback in conf/train.yaml's
``hydra.callbacks``) is locked from ``on_multirun_start`` (before the launcher creates
the folder and writes multirun.yaml) to the end of the sweep. A folder that already holds
anything is refused unless ``sweep_existing=continue`` or ``overwrite``; ``overwrite``
removes its old contents here, before any job starts. What each job then does with its
own folder (completed: skipped; unfinished: resumed; failed: started again) is in
convae/runs/folder.py.
"""

from __future__ import annotations

import atexit
import logging
import shutil
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from convae.config.errors import ConfigError
from convae.config.schema import SWEEP_EXISTING
from convae.hardware import process_rank
from convae.runs.lock import LOCK_NAME, FolderRefused, RunLock, acquire, refuse_links
from convae.sweeps.summary import remember_sweep_folder

log = logging.getLogger("convae")


class SweepFolder(Callback):
    """Claims the sweep folder for the whole sweep and applies ``sweep_existing`` to it."""

    def __init__(self) -> None:
        self._lock: RunLock | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_lock": None}  # parallel launchers pickle callbacks: the lock stays here

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0:  # a DDP rank re-launched with the sweep's command line
            return
        folder = Path(str(config.hydra.sweep.dir))
        try:
            self._lock = claim_sweep_folder(folder, str(config.get("sweep_existing", "refuse")))
        except ConfigError as err:
            # Hydra turns a callback's Exception into a warning and goes on: stop here.
            raise SystemExit(f"convae-train: error: {' '.join(str(err).split())}") from None
        remember_sweep_folder(folder)  # a failed sweep's last line names all its failed jobs
        atexit.register(self._release)  # a failed job ends the sweep without the end hook

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()
        atexit.unregister(self._release)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def claim_sweep_folder(folder: Path, existing: str) -> RunLock:
    """The sweep folder's lock, once the folder is empty, emptied (``overwrite``) or
    accepted as it is (``continue``); raises ConfigError (one line) otherwise."""
    if existing not in SWEEP_EXISTING:
        raise ConfigError(
            f"sweep_existing={existing!r} is invalid: expected one of {', '.join(SWEEP_EXISTING)}"
        )
    if existing == "continue":  # its job folders are written again: none through a link
        refuse_links(folder, what="sweep folder")
    lock = acquire(folder, "sweep folder")
    try:
        old = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)
        if old and existing == "refuse":
            raise FolderRefused(
                f"hydra.sweep.dir={folder} is not empty ({len(old)} entries, e.g. {old[0]}): "
                "pass sweep_existing=continue (skip completed jobs, resume unfinished ones, "
                "restart failed ones) or sweep_existing=overwrite (remove its contents first), "
                "or choose another hydra.sweep.dir"
            )
        if old and existing == "overwrite":
            _empty_sweep_folder(folder)
        elif old:
            log.info("Continuing the sweep in %s (%d entries there)", folder, len(old))
    except BaseException:
        lock.release()
        raise
    return lock


def _empty_sweep_folder(folder: Path) -> None:
    """Removes a sweep folder's contents for ``overwrite``: only a folder a sweep made
    (multirun.yaml), never one holding the launch folder, never a job still running."""
    if not (folder / "multirun.yaml").is_file():
        raise FolderRefused(
            f"hydra.sweep.dir={folder} has no multirun.yaml, so it is not a sweep folder: "
            "sweep_existing=overwrite leaves it alone; remove it yourself or choose another"
        )
    if folder.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise FolderRefused(f"hydra.sweep.dir={folder} holds the launch folder: not removed")
    for entry in sorted(folder.iterdir()):
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            job_lock = acquire(entry, "job folder")  # refuses while a job writes there
            try:
                shutil.rmtree(entry)
            finally:
                job_lock.release()
        else:
            entry.unlink()
    log.warning("sweep_existing=overwrite: removed the old contents of %s", folder)
