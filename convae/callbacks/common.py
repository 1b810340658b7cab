"""What the image callbacks share: where and at which step to write."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


def tb_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives this validation's scalars (the last trained batch), so
    images line up with the val/ curves; 0 for the step-0 validation."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def tb_writer(trainer: pl.Trainer) -> Any | None:
    """The run's SummaryWriter on the process that writes (rank 0), else None."""
    if trainer.sanity_checking or not trainer.is_global_zero or trainer.logger is None:
        return None
    return trainer.logger.experiment
