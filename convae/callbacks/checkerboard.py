"""Checkerboard scores and pictures for every run (see convae/metrics/checkerboard.py).

Scored on one fixed batch (the first ``n`` validation digits, the same in every run with
the same data seed) at step 0, after every validation and, at the end, on the first ``n``
test digits, so decoders can be compared at initialisation and after training.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from convae.callbacks.common import FixedDigitsCallback, tb_step, tb_writer
from convae.metrics.catalogue import SPECTRAL
from convae.metrics.checkerboard import batch_spectra, spectra_scores
from convae.metrics.spectrum_plots import ResidualFigure, SpectrumFigure, zoomed_pairs

SCORES = SPECTRAL  # what spectra_scores returns, by name (convae/metrics/catalogue.py)
IMAGE_TAGS = ("artifacts/zoomed", "artifacts/spectrum", "artifacts/residual")


class CheckerboardScores(FixedDigitsCallback):
    """Scores after every validation; the pictures (matplotlib, slow) at step 0,
    every ``images_every``-th validation and for the test split at the end, so that
    validation stays cheap next to an epoch of training."""

    def __init__(self, n: int = 500, images_every: int = 10) -> None:
        super().__init__(n)
        self.images_every = images_every
        self._validations = 0
        self._spectrum, self._residual = SpectrumFigure(), ResidualFigure()

    def state_dict(self) -> dict[str, int]:
        """Saved in checkpoints, so a resumed run draws its pictures at the same steps."""
        return {"validations": self._validations}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._validations = state["validations"]

    @staticmethod
    def metric_tags() -> list[str]:
        return [f"{split}/{s}" for split in ("val", "test") for s in SCORES]

    def _score(self, trainer: pl.Trainer, module: pl.LightningModule, split: str) -> None:
        _, x_hat, targets = self.fixed_digits(trainer, module, split)
        spectra = batch_spectra(x_hat, targets)  # shared by the scores and the picture
        for name, value in spectra_scores(spectra).items():
            # Every process scores the same digits with the same weights; sync_dist only
            # keeps DDP from warning (the mean of equal values is that value).
            module.log(f"{split}/{name}", value, on_step=False, on_epoch=True, sync_dist=True)
        writer = tb_writer(trainer)
        due = self.images_every > 0 and (
            split == "test" or self._validations % self.images_every == 0
        )
        if writer is not None and due:
            step = tb_step(trainer)
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
