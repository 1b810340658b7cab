"""Continuing a run: which checkpoint, and which config (the checkpointed one)."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from convae.checkpoint import DAMAGED, CheckpointError, global_step, read_checkpoint
from convae.config import EXTENSION_POINTS, ConfigError, TrainConfig
from convae.results import read_results

log = logging.getLogger("convae")
_NO = object()
_DECIDED: dict[tuple[Path, int, int], Path] = {}  # last.ckpt (path, size, mtime) -> resume from


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
    """A job started again in its own folder (a SLURM requeue through submitit) resumes
    from the last checkpoint there, unless that run completed or failed."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    status = read_results(run_dir).get("status")
    return usable_last(ckpt) if ckpt.is_file() and status in (None, "interrupted") else None


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


def config_for_resume(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """The checkpointed run's config (stored in every checkpoint), with only this command
    line's overrides on top, e.g. a larger trainer.max_epochs."""
    saved = read_checkpoint(ckpt)["hyper_parameters"]
    schema = OmegaConf.structured(TrainConfig)
    for section in EXTENSION_POINTS:  # e.g. +optim.momentum=0.9, given when the run began
        OmegaConf.set_struct(schema[section], False)
    resumed = OmegaConf.merge(schema, saved["config"])
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in ("resume", "ckpt_path") or OmegaConf.select(resumed, key, default=_NO) is _NO:
            # a group choice (upsample=..., experiment=...): the checkpointed config
            # already holds what it set; to change it on resume, set its keys instead
            continue
        OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), merge=False)
    resumed.resume, resumed.ckpt_path = cfg.resume, cfg.ckpt_path
    return resumed
