"""A resumed run continues exactly where a straight run would be: same epochs and steps,
whichever of ``max_steps`` and ``max_epochs`` stops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from convae.compat import mark_finished_epoch_completed
from convae.runs.checkpoint import PRECISION_KEY


class ExactResume(pl.Callback):
    """Mends the ways Lightning's save and restore drift from the uninterrupted run, and
    leaves ``last`` holding the final step when training stops between epochs."""

    def __init__(self, last: Path) -> None:
        self.last = last

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any) -> None:
        # max_steps can stop training mid-epoch, after the last epoch-end save: without this
        # a resume with a larger max_steps would train those steps again and log them twice.
        # Saved here, not in on_train_end: by then Lightning has counted the partial epoch
        # as finished, and a resume would skip the rest of it.
        # fast_dev_run (a smoke test that sets max_steps) saves nothing, as Lightning's own.
        if 0 <= trainer.max_steps <= trainer.global_step and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.last)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # trainer.precision=auto may resolve differently on the machine that resumes: the
        # resume trains on at the precision the run began with (convae/runs/resume.py).
        checkpoint[PRECISION_KEY] = trainer.precision

    def on_load_checkpoint(
        self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Runs before Lightning restores its loops from the same dict: a checkpoint saved at
        # an epoch's end is restored as one saved between epochs, else a max_steps run that
        # max_epochs stops loses an epoch (see compat.mark_finished_epoch_completed).
        mark_finished_epoch_completed(checkpoint)
