"""Continuing a run: which checkpoint, and which config (the checkpointed one)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from convae.config import ConfigError, TrainConfig
from convae.results import read_results

_NO = object()


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
    return path


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """A job started again in its own folder (a SLURM requeue through submitit) resumes
    from the last checkpoint there, unless that run completed or failed."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    status = read_results(run_dir).get("status")
    return ckpt if ckpt.is_file() and status in (None, "interrupted") else None


def config_for_resume(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """The checkpointed run's config (stored in every checkpoint), with only this command
    line's overrides on top, e.g. a larger trainer.max_epochs."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["hyper_parameters"]
    resumed = OmegaConf.merge(OmegaConf.structured(TrainConfig), saved["config"])
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in ("resume", "ckpt_path") or OmegaConf.select(resumed, key, default=_NO) is _NO:
            # a group choice (upsample=..., experiment=...): the checkpointed config
            # already holds what it set; to change it on resume, set its keys instead
            continue
        OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), merge=False)
    resumed.resume, resumed.ckpt_path = cfg.resume, cfg.ckpt_path
    return resumed
