"""conf/logger/ -> the run's Lightning loggers: TensorBoard, a CSV file, or both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, TensorBoardLogger

from convae.compat import AppendingCSVLogger


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """``cfg``: the logger section. Both write straight into the run folder, so
    `tensorboard --logdir <sweep>` names each run after its job folder (its overrides),
    and metrics.csv sits beside results.json."""
    loggers: list[Logger] = []
    if cfg.tensorboard:
        loggers.append(
            TensorBoardLogger(save_dir=run_dir, name="", version="", default_hp_metric=False)
        )
    if cfg.csv:
        loggers.append(AppendingCSVLogger(save_dir=run_dir, name="", version=""))
    return loggers


def tensorboard_writer(loggers: Sequence[Logger]) -> Any | None:
    """The SummaryWriter of the run's TensorBoard logger; None for a CSV-only run (no
    pictures, no HPARAMS entry)."""
    return next((lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)), None)
