"""Reconstruction grids of fixed validation digits, at step 0 and after every validation."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid

from convae.callbacks.common import tb_step, tb_writer

TAG = "images/reconstructions"


class ReconstructionGrid(pl.Callback):
    """Rows: noisy inputs (noisy runs only), reconstructions, targets. The digits are the
    first ``n`` of the validation split, so the same images appear in every run and at
    every step: runs can be compared side by side in TensorBoard's IMAGES tab."""

    def __init__(self, n: int = 16) -> None:
        self.n = n

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        writer = tb_writer(trainer)
        if writer is None:
            return
        inputs, targets = trainer.datamodule.fixed_digits(self.n)
        inputs, targets = inputs.to(module.device), targets.to(module.device)
        rows = [module.reconstruct(inputs), targets]
        if module.noise_std > 0:
            rows.insert(0, inputs)
        grid = make_grid(torch.cat(rows).float().cpu(), nrow=len(targets), padding=1, pad_value=0.5)
        writer.add_image(TAG, grid, tb_step(trainer))
