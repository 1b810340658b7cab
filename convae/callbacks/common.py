"""What the image callbacks share: where and at which step to write, and the fixed digits
with their reconstructions."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from convae.compat import logging_step
from convae.tracking.loggers import tensorboard_writer


def tb_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives this validation's scalars (the last trained batch), so
    images line up with the val/ curves; 0 for the step-0 validation."""
    return logging_step(trainer)


def tb_writer(trainer: pl.Trainer) -> Any | None:
    """The run's SummaryWriter on the process that writes (rank 0); None elsewhere and in
    runs that log no TensorBoard (logger=csv: no pictures)."""
    if trainer.sanity_checking or not trainer.is_global_zero:
        return None
    return tensorboard_writer(trainer.loggers)


class FixedDigitsCallback(pl.Callback):
    """Base for callbacks that look at the first ``n`` digits of the validation or test
    split (``datamodule.fixed_digits``). Their reconstructions are picked up from the
    evaluation steps' outputs as they pass, so the pictures and scores cost no forward pass
    of their own; the digits are recomputed only when the evaluation did not see them first
    (DDP shards, ``limit_*_batches``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._seen: list[dict[str, torch.Tensor]] = []
        self._count = 0

    def _collect(self, outputs: Any, dataloader_idx: int) -> None:
        if dataloader_idx != 0 or self._count >= self.n or not isinstance(outputs, dict):
            return
        take = self.n - self._count
        part = {k: outputs[k][:take].detach().float().cpu() for k in ("inputs", "x_hat")}
        self._seen.append(part)
        self._count += len(part["x_hat"])

    def on_validation_epoch_start(self, trainer: pl.Trainer, module: Any) -> None:
        self._seen, self._count = [], 0

    def on_test_epoch_start(self, trainer: pl.Trainer, module: Any) -> None:
        self._seen, self._count = [], 0

    def on_validation_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        self._collect(outputs, dataloader_idx)

    def on_test_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        self._collect(outputs, dataloader_idx)

    def fixed_digits(
        self, trainer: pl.Trainer, module: Any, split: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs, reconstructions, targets) of the first ``n`` digits, float on the CPU."""
        inputs, targets = trainer.datamodule.fixed_digits(self.n, split)
        if self._count == len(targets):
            seen = {k: torch.cat([p[k] for p in self._seen]) for k in ("inputs", "x_hat")}
            if torch.equal(seen["inputs"], inputs.float()):
                return inputs, seen["x_hat"], targets
        x_hat = module.reconstruct(inputs.to(module.device)).float().cpu()
        return inputs, x_hat, targets
