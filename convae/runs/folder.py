"""A run folder that already holds something: one writer at a time, and what a job does
with what it finds there.

Each job's folder (``claim_run_folder``, then ``prepare_run_folder``, both called by
convae/train.py's ``hydra_main`` for every run, single or sweep job) is locked for the
whole job, then, before convae writes anything, decided by what it holds. This is also
where a requeued job (SLURM, submitit) lands, since a requeue runs the job again without
the sweep callback (the sweep folder itself: convae/sweeps/folder.py):

========================================  ============================================
the job folder holds                       what the job does
========================================  ============================================
nothing of a run (a new job)               trains
results.json ``completed``                 sweep: nothing, returns its recorded
                                           val/loss (the same job: its config must
                                           match); single run: refused, resume= it
``checkpoints/last.ckpt``, not completed   resumes from it (convae/runs/resume.py's
or failed (interrupted, killed)            ``requeued_checkpoint``, in ``train``)
a failed run, or one with no checkpoint    its run files are removed, then it trains
                                           from the start (no appended TensorBoard
                                           events, no stale results.json)
========================================  ============================================

``resume=``/``ckpt_path=`` runs skip the table: they continue what is there.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from convae.config.convert import flatten, to_container
from convae.config.schema import PLUMBING_KEYS
from convae.hardware import process_rank
from convae.runs.checkpoint import CheckpointError, read_checkpoint
from convae.runs.lock import FolderRefused, RunLock, acquire, refuse_links
from convae.runs.results import RESULTS, read_results
from convae.runs.resume import requeued_checkpoint

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


def claim_run_folder(run_dir: Path) -> RunLock | None:
    """The run folder's lock, taken before convae writes anything there (the caller
    releases it on every exit, SIGTERM's SystemExit included); raises FolderLocked while
    another process holds it. Only global rank 0 locks (and then prepares the folder): DDP
    re-launches ranks > 0 into the same folder, with RANK/LOCAL_RANK set. A folder with a
    symbolic link inside is refused first: nothing is written through one."""
    if process_rank() != 0:
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
            folder = shlex.quote(str(run_dir))
            raise FolderRefused(
                f"hydra.run.dir={folder} holds a completed run: resume={folder} continues it "
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
