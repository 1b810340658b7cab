"""Checkerboard scores and pictures for every run (see convae/metrics/checkerboard.py).

Scored on one fixed batch (the first ``n`` validation digits, the same in every run with
the same data seed) at step 0, after every validation and, at the end, on the first ``n``
test digits, so decoders can be compared at initialisation and after training.

The pictures are drawn at step 0, every ``images_every``-th validation, the first
validation past half the run's planned steps, the last validation of a run (whatever
stopped it: max_steps, max_epochs, early stopping) and for the test split, so every run
shows its start, middle and end whatever its length.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from convae.callbacks.common import FixedDigitsCallback, tb_step, tb_writer
from convae.metrics.catalogue import SPECTRAL
from convae.metrics.checkerboard import batch_spectra, spectra_scores
from convae.metrics.spectrum_plots import ResidualFigure, SpectrumFigure, zoomed_pairs

SCORES = SPECTRAL  # what spectra_scores returns, by name (convae/metrics/catalogue.py)
IMAGE_TAGS = ("artifacts/zoomed", "artifacts/spectrum", "artifacts/residual")


class CheckerboardScores(FixedDigitsCallback):
    """Scores after every validation; the pictures (matplotlib, slow) at step 0, every
    ``images_every``-th validation, past the middle, at the last validation and for the
    test split (module docstring), so that validation stays cheap next to an epoch of
    training. ``images_every=0``: no pictures at all."""

    def __init__(self, n: int = 500, images_every: int = 10) -> None:
        super().__init__(n)
        self.images_every = images_every
        self._validations = 0
        self._middle_drawn = False
        # The last validation's picture data when it was not drawn: drawn when the fit or
        # validate call ends (teardown), so the run's last validation is always pictured.
        self._pending: tuple[torch.Tensor, torch.Tensor, Any, int] | None = None
        self._spectrum, self._residual = SpectrumFigure(), ResidualFigure()

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints, so a resumed run draws its pictures at the same steps."""
        return {"validations": self._validations, "middle_drawn": self._middle_drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._validations = state["validations"]
        self._middle_drawn = state.get("middle_drawn", False)  # older checkpoints lack it

    @staticmethod
    def metric_tags() -> list[str]:
        return [f"{split}/{s}" for split in ("val", "test") for s in SCORES]

    def _past_middle(self, trainer: pl.Trainer) -> bool:
        """Whether this validation, during fit, is at or past half the planned steps."""
        if trainer.state.fn != TrainerFn.FITTING:
            return False
        planned = planned_steps(trainer)
        return planned is not None and trainer.global_step >= planned / 2

    def _score(self, trainer: pl.Trainer, module: pl.LightningModule, split: str) -> None:
        _, x_hat, targets = self.fixed_digits(trainer, module, split)
        spectra = batch_spectra(x_hat, targets)  # shared by the scores and the picture
        for name, value in spectra_scores(spectra).items():
            # Every process scores the same digits with the same weights; sync_dist only
            # keeps DDP from warning (the mean of equal values is that value).
            module.log(f"{split}/{name}", value, on_step=False, on_epoch=True, sync_dist=True)
        writer = tb_writer(trainer)
        if writer is None or self.images_every <= 0:
            return
        picture = (x_hat, targets, spectra, tb_step(trainer))
        middle = split == "val" and not self._middle_drawn and self._past_middle(trainer)
        if split == "test" or middle or self._validations % self.images_every == 0:
            self._draw(writer, picture)
            self._pending = None
            self._middle_drawn = self._middle_drawn or self._past_middle(trainer)
        else:
            self._pending = picture

    def _draw(self, writer: Any, picture: tuple[torch.Tensor, torch.Tensor, Any, int]) -> None:
        x_hat, targets, spectra, step = picture
        writer.add_image(IMAGE_TAGS[0], zoomed_pairs(x_hat, targets), step)
        writer.add_image(IMAGE_TAGS[1], self._spectrum.draw(spectra), step, dataformats="HWC")
        writer.add_image(IMAGE_TAGS[2], self._residual(x_hat, targets), step, dataformats="HWC")

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._score(trainer, module, "val")
            self._validations += 1

    @torch.no_grad()
    def on_test_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._score(trainer, module, "test")

    def teardown(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        """The end of a fit or validate call, however it stopped (not on an exception):
        its last validation, if not drawn, is drawn now, at that validation's step."""
        writer = tb_writer(trainer)
        if self._pending is not None and writer is not None:
            self._draw(writer, self._pending)
        self._pending = None


def planned_steps(trainer: pl.Trainer) -> int | None:
    """The step at which the run will stop unless stopped early: trainer.max_steps, or
    max_epochs x the batches of an epoch when that comes first; None when unknown. Not
    ``trainer.estimated_stepping_batches``, which builds the train loader before a resume
    restores its position (convae/training/module.py's _run_steps)."""
    limits = [trainer.max_steps] if trainer.max_steps > 0 else []
    batches_per_epoch = getattr(trainer.datamodule, "batches_per_epoch", None)
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and batches_per_epoch:
        batches = batches_per_epoch(trainer.world_size)
        limit = trainer.limit_train_batches
        batches = min(batches, limit) if isinstance(limit, int) else math.ceil(batches * limit)
        steps = math.ceil(max(1, batches) / trainer.accumulate_grad_batches)
        limits.append(steps * trainer.max_epochs)
    return min(limits) if limits else None
