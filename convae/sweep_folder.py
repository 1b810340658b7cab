"""Sweep and run folders that already hold something: one writer at a time, and an
explicit choice (``sweep_existing``) before a sweep writes into a folder with old jobs.

Two levels, two places:

- The sweep folder (``SweepFolder``, a Hydra callback in conf/train.yaml's
  ``hydra.callbacks``): locked from ``on_multirun_start`` (before the launcher creates
  the folder and writes multirun.yaml) to the end of the sweep. A folder that already
  holds anything is refused unless ``sweep_existing=continue`` or ``overwrite``;
  ``overwrite`` removes its old contents here, before any job starts.
- Each job's folder (``claim_run_folder``, then ``prepare_run_folder``, both called by
  convae/train.py's ``hydra_main`` for every run, single or sweep job): locked for the
  whole job, then, before convae writes anything, decided by what it holds. This is
  also where a requeued job (SLURM, submitit) lands, since a requeue runs the job again
  without the sweep callback:

  ========================================  ============================================
  the job folder holds                       what the job does
  ========================================  ============================================
  nothing of a run (a new job)               trains
  results.json ``completed``                 sweep: nothing, returns its recorded
                                             val/loss (the same job: its config must
                                             match); single run: refused, resume= it
  ``checkpoints/last.ckpt``, not completed   resumes from it (convae/resume.py's
  or failed (interrupted, killed)            ``requeued_checkpoint``, in ``train``)
  a failed run, or one with no checkpoint    its run files are removed, then it trains
                                             from the start (no appended TensorBoard
                                             events, no stale results.json)
  ========================================  ============================================

  ``resume=``/``ckpt_path=`` runs skip the table: they continue what is there.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from convae.checkpoint import CheckpointError, read_checkpoint
from convae.config import PLUMBING_KEYS, SWEEP_EXISTING, ConfigError, flatten, to_container
from convae.results import RESULTS, read_results
from convae.resume import requeued_checkpoint
from convae.run_lock import LOCK_NAME, FolderRefused, RunLock, acquire, refuse_links
from convae.sweep_summary import remember_sweep_folder

log = logging.getLogger("convae")

# What a run writes in its folder (Hydra adds .hydra/ and train.log): all a restarted job
# removes, so a folder named by hydra.run.dir that holds other files keeps them.
RUN_FILES = (
    "results.json",
    "failed_resume.json",
    "checkpoints",
    "eval",
    "hparams.yaml",
    "metrics.csv",
    "projector_config.pbtxt",
    "mlflow_run_id",
)
RUN_STATES = ("completed", "failed", "interrupted")  # what convae-train records
EVENTS = "events.out.tfevents.*"
PROJECTOR_DATA = "[0-9][0-9][0-9][0-9][0-9]"  # add_embedding's <step>/ folders


class SweepFolder(Callback):
    """Claims the sweep folder for the whole sweep and applies ``sweep_existing`` to it."""

    def __init__(self) -> None:
        self._lock: RunLock | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_lock": None}  # parallel launchers pickle callbacks: the lock stays here

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if rank_zero_only.rank != 0:  # a DDP rank re-launched with the sweep's command line
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


def claim_run_folder(run_dir: Path) -> RunLock | None:
    """The run folder's lock, taken before convae writes anything there (the caller
    releases it on every exit, SIGTERM's SystemExit included); raises FolderLocked while
    another process holds it. Only global rank 0 locks (and then prepares the folder): DDP
    re-launches ranks > 0 into the same folder, with RANK/LOCAL_RANK set. A folder with a
    symbolic link inside is refused first: nothing is written through one."""
    if rank_zero_only.rank != 0:
        return None
    refuse_links(run_dir)
    lock = acquire(run_dir)
    try:
        refuse_links(run_dir)  # a link made while we claimed it
    except BaseException:
        lock.release()
        raise
    return lock


def prepare_run_folder(
    cfg: DictConfig, run_dir: Path, in_sweep: bool, lock: RunLock | None = None
) -> dict[str, Any] | None:
    """The per-job part of ``sweep_existing`` (see the table above), under the folder's
    lock: the results of a sweep job that completed earlier (nothing is to run), or None
    when the run is to train (resuming, or from scratch in a cleared folder). Raises
    FolderRefused, having written nothing, for a folder this run must not touch."""
    if cfg.resume or cfg.ckpt_path:
        return None  # an explicit resume continues whatever the folder holds
    results = read_results(run_dir)
    status = results.get("status") if isinstance(results, dict) else None
    if status == "completed" and isinstance(results.get("metrics"), dict):
        if not in_sweep:
            raise FolderRefused(
                f"hydra.run.dir={run_dir} holds a completed run: resume={run_dir} continues it "
                "(e.g. with a larger trainer.max_steps), or choose another folder"
            )
        _check_same_job(cfg, results, run_dir)
        log.info("%s: completed earlier, not run again (sweep_existing)", run_dir)
        return results
    if requeued_checkpoint(run_dir) is not None:
        return None  # train() resumes from its last.ckpt (a requeue, or continue)
    stale = run_files(run_dir)
    if stale and not cfg.get("replace_unknown_files") and not _written_by_convae(run_dir, lock):
        raise FolderRefused(
            f"{run_dir} holds {', '.join(p.name for p in stale)} but no convae run (no "
            "results.json of a run, no convae checkpoint): convae replaces only its own files; "
            "choose another folder, or pass replace_unknown_files=true to remove those"
        )
    if stale:
        log.warning(
            "%s: %s run with nothing to resume from: removing %s and starting it again",
            run_dir,
            status or "unfinished",
            ", ".join(p.name for p in stale),
        )
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return None


def _written_by_convae(run_dir: Path, lock: RunLock | None) -> bool:
    """Whether the folder's run files are a convae run's: a results.json of a run's shape,
    a checkpoint convae can load, or a lock left by a convae process that died."""
    record = read_results(run_dir)
    if lock is not None and lock.stale:
        return True
    if record.get("status") in RUN_STATES:
        return True
    for ckpt in sorted((run_dir / "checkpoints").glob("*.ckpt")):
        try:
            read_checkpoint(ckpt)
            return True
        except CheckpointError:
            continue
    return False


def run_files(run_dir: Path) -> list[Path]:
    """The files a run wrote in ``run_dir`` (TensorBoard events, checkpoints, results)."""
    found = [run_dir / name for name in RUN_FILES if os.path.lexists(run_dir / name)]
    projector = [p for p in run_dir.glob(PROJECTOR_DATA) if p.is_dir()]
    return sorted(found + list(run_dir.glob(EVENTS)) + projector)


def _check_same_job(cfg: DictConfig, results: dict[str, Any], run_dir: Path) -> None:
    """A completed job is skipped only if it trained what this sweep asks for: the folder
    name leaves out keys set once on the command line (e.g. trainer.max_steps)."""
    recorded = results.get("config")
    if not isinstance(recorded, dict):
        return
    try:
        new = flatten(to_container(cfg))
    except Exception as err:  # an interpolation that does not resolve
        raise FolderRefused(f"{run_dir}: cannot compare with its completed job: {err}") from None
    old = flatten(recorded)
    for key in sorted(old.keys() & new.keys()):
        if key in PLUMBING_KEYS or old[key] == new[key]:
            continue
        raise FolderRefused(
            f"{run_dir / RESULTS} is a completed job with {key}={old[key]!r}, this sweep asks "
            f"for {new[key]!r}: sweep_existing=continue skips only the same job; use "
            "sweep_existing=overwrite or another hydra.sweep.dir"
        )
