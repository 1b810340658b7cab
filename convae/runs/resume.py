"""Continuing a run: which checkpoint, and which config (the checkpointed one)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from convae.config.convert import plain
from convae.config.errors import ConfigError
from convae.config.schema import EXTENSION_POINTS, PLUMBING_KEYS, TrainConfig
from convae.runs.checkpoint import (
    DAMAGED,
    PRECISION_KEY,
    CheckpointError,
    global_step,
    read_checkpoint,
)
from convae.runs.finished_run import FinishedRun

log = logging.getLogger("convae")
_NO = object()
_DECIDED: dict[tuple[Path, int, int], Path] = {}  # last.ckpt (path, size, mtime) -> resume from
_NOTHING_TO_RESUME: set[tuple[Path, int, int]] = set()  # damaged last.ckpt files, warned of


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """``ckpt_path=<file>`` or ``resume=<run dir>`` (its checkpoints/last.ckpt), or None."""
    if cfg.ckpt_path:
        key, path = "ckpt_path", Path(cfg.ckpt_path)
    elif cfg.resume:
        key, path = "resume", Path(cfg.resume) / "checkpoints" / "last.ckpt"
    else:
        return None
    if not path.is_file():
        raise ConfigError(f"{key}={cfg[key]!r} is invalid: no checkpoint at {path}")
    if key == "resume":
        return usable_last(path)
    read_checkpoint(path)  # a file named by the user: its own error, no fallback
    return path


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """A job started again in its own folder (a SLURM requeue through submitit, a sweep
    under ``sweep_existing=continue``) resumes from the last checkpoint there, unless that
    run completed or failed. A damaged last.ckpt (a save that was killed: empty or
    truncated) with no loadable best-*.ckpt beside it leaves nothing to resume from: None,
    with a warning naming the file, and the job starts again from step 0 (as one killed
    before its first save), rather than failing on that file at every requeue. A refused
    or foreign checkpoint still stops the job."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    status = FinishedRun.read(run_dir).status
    if not (ckpt.is_file() and status in (None, "interrupted")):
        return None
    try:
        return usable_last(ckpt)
    except CheckpointError as err:
        if err.kind != DAMAGED:
            raise
        st = ckpt.stat()
        key = (ckpt.absolute(), st.st_size, st.st_mtime_ns)
        if key not in _NOTHING_TO_RESUME:  # said once, though the folder claim asks too
            _NOTHING_TO_RESUME.add(key)
            log.warning("%s; the run starts again from step 0", err)
        return None


def usable_last(last: Path) -> Path:
    """``last``, checked by a safe load; when it is truncated or empty (a save that was
    killed), the newest loadable best-*.ckpt beside it, with a warning. The data order
    depends only on seed, epoch and step, so resuming from that earlier step is still
    exact. A refused or foreign file is never skipped: its error stops the resume.

    Decided once per file as it is now (the folder claim asks too, then ``train``)."""
    st = last.stat()
    key = (last.absolute(), st.st_size, st.st_mtime_ns)
    if key not in _DECIDED:
        _DECIDED[key] = _usable_last(last)
    return _DECIDED[key]


def _usable_last(last: Path) -> Path:
    try:
        read_checkpoint(last)
        return last
    except CheckpointError as err:
        if err.kind != DAMAGED:
            raise
        damaged = err
    found = []
    for candidate in sorted(last.parent.glob("best-*.ckpt")):
        try:
            found.append((global_step(read_checkpoint(candidate)), candidate))
        except CheckpointError as err:
            if err.kind != DAMAGED:
                raise
            log.warning("Skipping %s", err)
    if not found:
        raise CheckpointError(
            last,
            f"{damaged.why}; no loadable best-*.ckpt beside it to resume from instead",
            DAMAGED,
        )
    step, fallback = max(found)
    log.warning("%s; resuming from %s (step %d) instead", damaged, fallback.name, step)
    return fallback


# What a resume may change: how long and how the run is carried out, never what it trains
# (model, data, loss, optimizer, seed, precision). Other changes are refused, not ignored.
RESUMABLE = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.check_val_every_n_epoch",
    "trainer.val_check_interval",
    "trainer.log_every_n_steps",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "callbacks.early_stopping_patience",
    "callbacks.artifact_images_every",
    "callbacks.latent_space",
    *PLUMBING_KEYS,
)


def config_for_resume(cfg: DictConfig, ckpt: Path, overrides: Sequence[str]) -> DictConfig:
    """The checkpointed run's config (stored in every checkpoint), with this command line's
    ``overrides`` applied where a resume may change them (RESUMABLE, e.g. a larger
    trainer.max_epochs). An override that would change what the run trains, or a group
    choice (``upsample=bilinear``) the run was not started with, is refused in one line;
    one that repeats the run's own value (a requeued sweep job's) is fine."""
    saved = read_checkpoint(ckpt)["hyper_parameters"]
    schema = OmegaConf.structured(TrainConfig)
    for section in EXTENSION_POINTS:  # e.g. +optim.momentum=0.9, given when the run began
        OmegaConf.set_struct(schema[section], False)
    resumed = OmegaConf.merge(schema, saved["config"])
    started_with = FinishedRun(ckpt.parent.parent).first_overrides() or []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in ("resume", "ckpt_path"):
            continue
        old = OmegaConf.select(resumed, key, default=_NO)
        if old is _NO or OmegaConf.is_dict(old):
            # a group choice (upsample=..., or a section's own group: trainer=gpu): its
            # keys are already in the checkpointed config
            if override not in started_with:
                raise _refused(override, "the run was not started with this group choice")
            continue
        new = OmegaConf.select(cfg, key)
        if plain(new) == plain(old):
            continue
        if key not in RESUMABLE:
            raise _refused(override, f"the run was trained with {key}={plain(old)!r}")
        OmegaConf.update(resumed, key, new, merge=False)
    resumed.resume, resumed.ckpt_path = cfg.resume, cfg.ckpt_path
    return resumed


def trained_precision(ckpt: Path | None) -> str | None:
    """The precision a run was trained at, as its checkpoint records it: a resumed ``auto``
    run goes on at it (auto may mean another precision on other hardware)."""
    if ckpt is None:
        return None
    recorded = read_checkpoint(ckpt).get(PRECISION_KEY)
    return str(recorded) if recorded else None


def _refused(override: str, why: str) -> ConfigError:
    return ConfigError(
        f"{override}: a resumed run keeps what it trains ({why}); start a new run for it, "
        f"or change only {', '.join(RESUMABLE[:2])} and the like on resume"
    )
