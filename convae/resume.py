"""Continuing a run: which checkpoint, and which config (the checkpointed one)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from convae.config import ConfigError, TrainConfig


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
    """A job requeued into its own folder (SLURM pre-emption via submitit) resumes from the
    checkpoint its interrupted predecessor left, without being told."""
    results, ckpt = run_dir / "results.json", run_dir / "checkpoints" / "last.ckpt"
    if not (results.is_file() and ckpt.is_file()):
        return None
    try:
        status = json.loads(results.read_text()).get("status")
    except ValueError:
        return None
    return ckpt if status == "interrupted" else None


def config_for_resume(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """The checkpointed run's config (stored in every checkpoint), with only this command
    line's overrides on top, e.g. a larger trainer.max_epochs."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["hyper_parameters"]
    resumed = OmegaConf.merge(OmegaConf.structured(TrainConfig), saved["config"])
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), merge=False)
    return resumed
