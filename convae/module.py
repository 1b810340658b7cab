"""The LightningModule: loss, input noise, metrics. The network itself is convae.models."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio

from convae.config import SCHEDULER_KEYS
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.losses import LOSSES, LossFn
from convae.metrics.ssim import FastSSIM
from convae.models import ConvAutoencoder, count_parameters


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def eval_metrics(prefix: str) -> nn.ModuleDict:
    """Per-split metrics keyed by their TensorBoard tag; torchmetrics reduces across
    processes, so DDP runs report the same numbers as one process."""
    # PSNR per image then averaged (dim=(1,2,3)), the usual convention in image restoration.
    return nn.ModuleDict(
        {
            f"{prefix}/loss": MeanMetric(),
            f"{prefix}/psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
            f"{prefix}/ssim": FastSSIM(data_range=1.0),
        }
    )


def update_eval_metrics(
    metrics: nn.ModuleDict, loss_fn: LossFn, logits: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Updates ``eval_metrics`` with one batch; returns the reconstructions. Shared by the
    validation and test steps and convae-eval, so the two report the same numbers.

    The metrics are computed from float32 logits outside autocast, whatever the training
    precision: autocast would run SSIM's filter products in bf16 and sum scores there.
    """
    with torch.autocast(logits.device.type, enabled=False):
        logits = logits.float()
        x_hat = torch.sigmoid(logits)
        for tag, metric in metrics.items():
            if tag.endswith("/loss"):
                metric.update(loss_fn(logits, targets), weight=len(targets))
            else:
                metric.update(x_hat, targets)
    return x_hat


class AutoencoderModule(pl.LightningModule):
    """Everything needed to rebuild the run lives in ``hparams`` (saved in each checkpoint):
    the model arguments and, under ``config``, the whole resolved Hydra config."""

    def __init__(
        self,
        *,
        model: dict[str, Any],
        optim: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        loss: str = "bce",
        noise_std: float = 0.0,
        seed: int = 0,
        channels_last: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = ConvAutoencoder(**model)
        self.num_parameters = count_parameters(self.net)
        # NHWC lets oneDNN (CPU) and cuDNN (GPU) pick faster conv kernels; results agree
        # with NCHW to float rounding.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.loss_name = loss
        self.loss_fn = LOSSES[loss]  # config.validate has checked the name
        self.noise_std = noise_std
        self.seed = seed
        self.val_metrics = eval_metrics("val")
        self.test_metrics = eval_metrics("test")
        self.test_clean_metrics = eval_metrics("test_clean")
        self._last_finite_loss: torch.Tensor | None = None
        self.validated_at_step = -1  # global step of the latest validation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; ``reconstruct`` gives images."""
        return self.net(x.contiguous(memory_format=self.memory_format))

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(inputs).float())

    def _training_pair(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        targets = to_unit(batch)
        g = seeded_generator(
            self.seed, TRAIN, self.global_step, self.global_rank, device=targets.device
        )
        return add_noise(targets, self.noise_std, g), targets

    @staticmethod
    def _eval_pair(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval batches are uint8 targets, or (uint8 targets, fixed noisy inputs)."""
        if isinstance(batch, (tuple, list)):
            return batch[1], to_unit(batch[0])
        targets = to_unit(batch)
        return targets, targets

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        inputs, targets = self._training_pair(batch)
        loss = self.loss_fn(self(inputs).float(), targets)
        if not torch.isfinite(loss):
            # Stop before the optimizer step and before any checkpoint sees the model.
            last = "none" if self._last_finite_loss is None else f"{self._last_finite_loss:.4g}"
            raise TrainingDiverged(
                f"training loss is {loss.item()} at step {self.global_step} (last finite loss: "
                f"{last}); try a lower optim.lr (now {self.hparams.optim['lr']}) or check the "
                "inputs for NaN/inf"
            )
        self._last_finite_loss = loss.detach()
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _eval_step(self, batch: Any, metrics: nn.ModuleDict) -> dict[str, torch.Tensor]:
        """Updates the split's metrics; returns the batch's inputs and reconstructions for
        the callbacks that draw and score the fixed digits (convae/callbacks/common.py)."""
        inputs, targets = self._eval_pair(batch)
        logits = self(inputs)  # bf16 under bf16-mixed: the forward pass is what it speeds up
        x_hat = update_eval_metrics(metrics, self.loss_fn, logits, targets)
        for tag, metric in metrics.items():
            self.log(tag, metric, on_step=False, on_epoch=True, add_dataloader_idx=False)
        return {"inputs": inputs, "x_hat": x_hat}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self.validated_at_step = self.global_step

    def test_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        return self._eval_step(
            batch, self.test_clean_metrics if dataloader_idx else self.test_metrics
        )

    def _run_steps(self) -> int:
        """The run's optimizer steps: trainer.max_steps when set, else max_epochs x the
        batches of an epoch. Not ``trainer.estimated_stepping_batches``: it builds the
        train loader before a resume restores the loader's position, and the resumed run
        then diverged from the uninterrupted one (tests/test_resume.py)."""
        trainer = self.trainer
        if trainer.max_steps > 0:
            return trainer.max_steps
        batches = trainer.datamodule.batches_per_epoch(trainer.world_size)
        limit = trainer.limit_train_batches
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
        return max(1, batches * trainer.max_epochs)

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optim)(params=self.parameters())
        arguments = dict(self.hparams.get("scheduler") or {})
        if not arguments.get("_target_"):
            return optimizer
        lightning = {k: arguments.pop(k) for k in SCHEDULER_KEYS if k in arguments}
        for total in ("T_max", "total_steps"):  # null: the whole run (cosine, one-cycle)
            if total in arguments and arguments[total] is None:
                arguments[total] = self._run_steps()
        schedule: dict[str, Any] = {
            "scheduler": instantiate(arguments)(optimizer),
            "interval": lightning.get("interval", "step"),
            "name": "lr",  # LearningRateMonitor's tag
        }
        if lightning.get("monitor"):
            # strict=False: epochs without a validation skip the plateau check
            schedule.update(monitor=lightning["monitor"], strict=False)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
