"""The scheduler group on a real Trainer: each option builds its torch.optim.lr_scheduler,
spans the run when its length is null, and LearningRateMonitor logs the rate as ``lr``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from convae.tracking.loggers import build_loggers
from convae.training.build import build_datamodule, build_module, build_trainer

STEPS = 8  # one epoch of the bundled split is 20 batches: all within epoch 0
LR = 1e-3


def fit(compose, tmp_path: Path, *overrides: str) -> tuple[object, list[float]]:
    """A short fit on the bundled digits; returns the scheduler and the logged lr per step."""
    cfg = compose("data.source=bundled", "model.depths=[4,4]", f"trainer.max_steps={STEPS}",
                  "trainer.enable_progress_bar=false", "callbacks.artifact_images_every=0",
                  "logger=csv", "test=false", *overrides)  # fmt: skip
    trainer = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path))
    trainer.fit(build_module(cfg), datamodule=build_datamodule(cfg))
    with (tmp_path / "metrics.csv").open(newline="") as file:
        lrs = [float(r["lr"]) for r in csv.DictReader(file) if r.get("lr")]
    configs = trainer.lr_scheduler_configs
    return (configs[0].scheduler if configs else None), lrs


@pytest.mark.parametrize(
    "option,kind",
    [("cosine", "CosineAnnealingLR"), ("step", "StepLR"), ("onecycle", "OneCycleLR")],
)
def test_a_schedule_is_built_and_its_rate_logged_every_step(compose, tmp_path, option, kind):
    scheduler, lrs = fit(compose, tmp_path, f"scheduler={option}")
    assert type(scheduler).__name__ == kind
    assert len(lrs) == STEPS
    if option == "cosine":  # T_max null: the run's 8 steps, from optim.lr down to 0
        assert scheduler.T_max == STEPS
        assert lrs == pytest.approx(
            [LR * (1 + math.cos(math.pi * i / STEPS)) / 2 for i in range(STEPS)]
        )
    elif option == "step":  # halves every 2,000 steps: constant over 8
        assert lrs == [LR] * STEPS
    else:  # total_steps null: the run's 8 steps; up to max_lr, then down
        assert scheduler.total_steps == STEPS
        peak = lrs.index(max(lrs))
        assert 0 < peak < STEPS - 1 and max(lrs) == pytest.approx(0.01, rel=0.05)


def test_plateau_watches_val_loss_and_no_schedule_logs_no_lr(compose, tmp_path):
    scheduler, lrs = fit(compose, tmp_path / "plateau", "scheduler=plateau")
    assert type(scheduler).__name__ == "ReduceLROnPlateau" and lrs == [LR] * STEPS
    scheduler, lrs = fit(compose, tmp_path / "none")
    assert scheduler is None and lrs == []


def test_a_null_length_without_max_steps_is_epochs_times_batches(compose, tmp_path):
    scheduler, lrs = fit(compose, tmp_path, "scheduler=cosine", "trainer.max_steps=-1",
                         "trainer.max_epochs=2", "trainer.limit_train_batches=3")  # fmt: skip
    assert scheduler.T_max == 6 and len(lrs) == 6
