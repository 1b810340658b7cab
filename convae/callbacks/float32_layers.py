"""The layers a run keeps in float32 under bf16 autocast, set on the module before every
stage (fit, validate, test), so a resumed or re-tested module computes as the run did."""

from __future__ import annotations

import pytorch_lightning as pl

from convae.models.upsample import keep_transposed_float32


class Float32Layers(pl.Callback):
    """``transposed``: the precision's ``float32_transposed`` (convae/config/precision.py)."""

    def __init__(self, transposed: bool) -> None:
        self.transposed = transposed

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        keep_transposed_float32(pl_module, self.transposed)
