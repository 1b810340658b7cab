"""The LightningModule: loss, input noise, metrics. The network itself is convae.models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio

from convae.config.optim import scheduler_spec
from convae.config.schema import SCHEDULER_KEYS
from convae.data.noise import to_unit, training_inputs
from convae.errors import ConvaeError
from convae.metrics.grid import GridScore, model_grid_periods
from convae.metrics.ssim import FastSSIM
from convae.models import ConvAutoencoder, count_parameters
from convae.models.losses import LOSSES, LossFn
from convae.runs.checkpoint import FOREIGN, CheckpointError, read_checkpoint, short_reason
from convae.training.optimizers import build_optimizer, build_scheduler


class TrainingDiverged(ConvaeError, RuntimeError):
    """The training loss, or the model's weights after an optimizer step, became NaN or
    infinite."""


DIVERGED = "training diverged"  # every TrainingDiverged message starts with this


def non_finite(tensors: Iterable[tuple[str, Any]]) -> list[str]:
    """The names of the floating-point tensors among ``tensors`` that hold NaN or inf."""
    return [
        name
        for name, t in tensors
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all())
    ]


def _optimizer_tensors(states: Any) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of every optimizer state tensor in a checkpoint's optimizer_states."""
    for i, state in enumerate(states or ()):
        per_param = state.get("state", {}) if isinstance(state, dict) else {}
        for param, slots in per_param.items():
            for slot, t in slots.items() if isinstance(slots, dict) else ():
                yield f"optimizer {i} param {param} {slot}", t


def eval_metrics(prefix: str) -> nn.ModuleDict:
    """Per-split metrics keyed by their TensorBoard tag; torchmetrics reduces across
    processes, so DDP runs report the same numbers as one process."""
    # PSNR per image then averaged (dim=(1,2,3)), the usual convention in image restoration.
    # The loss keeps NaN batches (MeanMetric's default drops them with a warning): a model
    # that gives NaN on some images has a NaN loss, which stops a diverged run. A float
    # strategy (NaN for NaN), not "disable": torchmetrics' "disable" also drops the weights,
    # so a smaller last batch would count as much as a full one.
    return nn.ModuleDict(
        {
            f"{prefix}/loss": MeanMetric(nan_strategy=float("nan")),
            f"{prefix}/psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
            f"{prefix}/ssim": FastSSIM(data_range=1.0),
        }
    )


def grid_metric(model: dict[str, Any]) -> GridScore:
    """The grid scores of a model's outputs: one period per upsampling stage (``model``:
    the network's arguments, as stored in every checkpoint)."""
    return GridScore(model_grid_periods(model))


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
        # Whole-split grid scores (convae/metrics/grid.py), logged at each epoch's end.
        self.grid_metrics = nn.ModuleDict(
            {split: grid_metric(model) for split in ("val", "test", "test_clean")}
        )
        self._last_finite_loss: torch.Tensor | None = None
        self._last_batch: torch.Tensor | None = None  # the latest training batch
        self.validated_at_step = -1  # global step of the latest validation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; ``reconstruct`` gives images."""
        return self.net(x.contiguous(memory_format=self.memory_format))

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(inputs).float())

    def _training_pair(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        targets = to_unit(batch)
        inputs = training_inputs(
            targets, self.noise_std, seed=self.seed, step=self.global_step, rank=self.global_rank
        )
        return inputs, targets

    @staticmethod
    def _eval_pair(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval batches are uint8 targets, or (uint8 targets, fixed noisy inputs)."""
        if isinstance(batch, (tuple, list)):
            return batch[1], to_unit(batch[0])
        targets = to_unit(batch)
        return targets, targets

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self._last_batch = batch  # a reference, no copy: check_finite_outputs' probe
        inputs, targets = self._training_pair(batch)
        loss = self.loss_fn(self(inputs).float(), targets)
        if not torch.isfinite(loss):
            # Stop before the optimizer step and before any checkpoint sees the model.
            raise TrainingDiverged(
                f"{DIVERGED}: training loss is {loss.item()} at step {self.global_step} "
                f"({self._last_loss_text()}); {self._hint()}"
            )
        self._last_finite_loss = loss.detach()
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _last_loss_text(self) -> str:
        last = self._last_finite_loss
        return f"last finite loss: {'none' if last is None else f'{float(last):.4g}'}"

    def _hint(self) -> str:
        lr = (self.hparams.get("optim") or {}).get("lr")
        return f"try a lower optim.lr (now {lr}) or check the inputs for NaN/inf"

    def check_finite_weights(self, when: str, extra: Iterable[tuple[str, Any]] = ()) -> None:
        """Raises TrainingDiverged when a weight (or buffer, or ``extra`` tensor) is NaN or
        inf. A finite loss does not vouch for the optimizer step it drives: a huge learning
        rate makes the weights NaN in that step, and the next training_step sees it only
        after a validation or a checkpoint has used them."""
        net = self.net
        bad = non_finite(net.named_parameters("net")) + non_finite(net.named_buffers("net"))
        bad += non_finite(extra)
        if self._any_rank(bool(bad)):
            what = f"{bad[0]}{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; " if bad else ""
            raise TrainingDiverged(
                f"{DIVERGED}: the model's weights are NaN/inf after step {self.global_step} "
                f"({what}{self._last_loss_text()}), found before {when}; {self._hint()}; "
                "no checkpoint was written from them"
            )

    def check_finite_outputs(self, when: str) -> None:
        """Raises TrainingDiverged when the model, as it is now, gives a NaN/inf loss on the
        last training batch. Finite weights can still be huge enough (one step of a huge
        learning rate) that every output overflows: then no loss of these weights has been
        seen unless a validation ran since the last step. One forward pass of one batch,
        done only where weights leave training without a validation (a checkpoint saved
        at the end of training, on an interrupt, or between validations)."""
        if self._last_batch is None or self.validated_at_step == self.global_step:
            return
        targets = to_unit(self._last_batch)
        with torch.no_grad(), torch.autocast(targets.device.type, enabled=False):
            loss = self.loss_fn(self(targets).float(), targets)
        if self._any_rank(not bool(torch.isfinite(loss))):
            raise TrainingDiverged(
                f"{DIVERGED}: the model's loss on the last training batch is {loss.item()} "
                f"after step {self.global_step} ({self._last_loss_text()}), found before "
                f"{when}; {self._hint()}; no checkpoint was written from it"
            )

    def _any_rank(self, flag: bool) -> bool:
        """``flag`` on any process: under DDP every process raises, or none does."""
        trainer = self._trainer
        return trainer.strategy.reduce_boolean_decision(flag, all=False) if trainer else flag

    def on_train_end(self) -> None:
        self._last_batch = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this while it assembles every checkpoint (ModelCheckpoint's best
        # and last, the interrupt's last.ckpt, trainer.save_checkpoint), before any file is
        # opened: raising here leaves no file at all.
        when = "a checkpoint save"
        self.check_finite_weights(when, _optimizer_tensors(checkpoint.get("optimizer_states")))
        self.check_finite_outputs(when)

    def on_validation_start(self) -> None:
        self.check_finite_weights("a validation")

    def on_test_start(self) -> None:
        self.check_finite_weights("the test")

    def _eval_step(self, batch: Any, metrics: nn.ModuleDict, split: str) -> dict[str, torch.Tensor]:
        """Updates the split's metrics; returns the batch's inputs and reconstructions for
        the callbacks that draw and score the fixed digits (convae/callbacks/common.py)."""
        inputs, targets = self._eval_pair(batch)
        logits = self(inputs)  # bf16 under bf16-mixed: the forward pass is what it speeds up
        x_hat = update_eval_metrics(metrics, self.loss_fn, logits, targets)
        self.grid_metrics[split].update(x_hat)
        for tag, metric in metrics.items():
            self.log(tag, metric, on_step=False, on_epoch=True, add_dataloader_idx=False)
        return {"inputs": inputs, "x_hat": x_hat}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, self.val_metrics, "val")

    def _log_grid(self, split: str) -> None:
        """The split's grid scores over every image it evaluated (all processes')."""
        metric = self.grid_metrics[split]
        if not metric.update_count:
            return
        for name, value in metric.compute().items():
            # compute() has summed every process's statistics: the values agree; sync_dist
            # only keeps DDP from warning.
            self.log(f"{split}/{name}", float(value), sync_dist=True, add_dataloader_idx=False)
        metric.reset()

    def on_test_epoch_end(self) -> None:
        self._log_grid("test")
        self._log_grid("test_clean")

    def on_validation_epoch_end(self) -> None:
        self._log_grid("val")
        # After the callbacks' pictures of this validation (they draw NaN outputs without
        # failing), before ModelCheckpoint's save at on_validation_end.
        metric = self.val_metrics["val/loss"]
        loss = metric.compute() if metric.update_count else None  # all processes' batches
        if loss is not None and not bool(torch.isfinite(loss)):
            raise TrainingDiverged(
                f"{DIVERGED}: validation loss is {loss.item()} at step {self.global_step} "
                f"({self._last_loss_text()}); {self._hint()}; no checkpoint was written "
                "from this model"
            )
        self.validated_at_step = self.global_step

    def test_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        if dataloader_idx:
            return self._eval_step(batch, self.test_clean_metrics, "test_clean")
        return self._eval_step(batch, self.test_metrics, "test")

    def _run_steps(self) -> int:
        """The run's optimizer steps: trainer.max_steps when set, else max_epochs x the
        batches of an epoch. Not ``trainer.estimated_stepping_batches``: it builds the
        train loader before a resume restores the loader's position, and the resumed run
        then diverged from the uninterrupted one (tests/e2e/test_resume.py)."""
        trainer = self.trainer
        if trainer.max_steps > 0:
            return trainer.max_steps
        batches = trainer.datamodule.batches_per_epoch(trainer.world_size)
        limit = trainer.limit_train_batches
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
        return max(1, batches * trainer.max_epochs)

    def configure_optimizers(self) -> Any:
        # Built from checked classes and plain arguments, never instantiate: hparams may
        # come from a checkpoint someone else wrote (convae/config/optim.py).
        optimizer = build_optimizer(self.hparams.optim, self.parameters())
        settings = self.hparams.get("scheduler") or {}
        spec = scheduler_spec(settings)
        if spec is None:
            return optimizer
        cls, arguments = spec
        lightning = {k: settings.get(k) for k in SCHEDULER_KEYS}
        for total in ("T_max", "total_steps"):  # null: the whole run (cosine, one-cycle)
            if total in arguments and arguments[total] is None:
                arguments[total] = self._run_steps()
        schedule: dict[str, Any] = {
            "scheduler": build_scheduler(cls, arguments, optimizer),
            "interval": lightning["interval"] or "step",
            "name": "lr",  # LearningRateMonitor's tag
        }
        if lightning.get("monitor"):
            # strict=False: epochs without a validation skip the plateau check
            schedule.update(monitor=lightning["monitor"], strict=False)
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def load_module(path: str | Path) -> AutoencoderModule:
    """The trained module in eval mode on the CPU, after :func:`read_checkpoint` vouched for
    the file (so the user sees its one-line error, not Lightning's)."""
    read_checkpoint(path)
    try:
        module = AutoencoderModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # e.g. weights that do not fit the stored model config
        raise CheckpointError(
            path, f"does not load into its model ({short_reason(err)})", FOREIGN
        ) from err
    return module.eval()
