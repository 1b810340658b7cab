"""Keeps the TensorBoard step of every logged scalar equal to the global step, so the
curves of a resumed run continue without a gap."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from convae.compat import set_logging_step


class LoggingStepIsGlobalStep(pl.Callback):
    """One optimizer and no gradient accumulation: the logging step is the global step.
    Lightning adds one to it when restoring some checkpoints saved at an epoch's end, which
    would leave a gap in every curve of a resumed run."""

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, *args: Any) -> None:
        set_logging_step(trainer, trainer.global_step)
