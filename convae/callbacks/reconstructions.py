"""Reconstruction grids of fixed validation digits, at step 0 and after every validation."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid

from convae.callbacks.common import FixedDigitsCallback, tb_step, tb_writer

TAG = "images/reconstructions"


class ReconstructionGrid(FixedDigitsCallback):
    """Rows: noisy inputs (noisy runs only), reconstructions, targets. The digits are the
    first ``n`` of the validation split, so the same images appear in every run and at
    every step: runs can be compared side by side in TensorBoard's IMAGES tab."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        writer = tb_writer(trainer)
        if writer is None:
            return
        inputs, x_hat, targets = self.fixed_digits(trainer, module, "val")
        rows = [x_hat, targets]
        if module.noise_std > 0:
            rows.insert(0, inputs)
        grid = make_grid(torch.cat(rows), nrow=len(targets), padding=1, pad_value=0.5)
        writer.add_image(TAG, grid, tb_step(trainer))
