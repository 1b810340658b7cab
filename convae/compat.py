"""Every use of a framework internal lives here (Hydra's, which must not import torch, in
convae/hydra_compat.py), behind a named function that says what it relies on;
tests/unit/test_compat.py checks each assumption against the installed versions, so an
upgrade fails a named test instead of a run.

Covered: Lightning's loop counters, signal connector and CSV writer, TensorBoard's
SummaryWriter file writer and torchmetrics' SSIM states.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from torchmetrics.image import StructuralSimilarityIndexMeasure

# --- Lightning ------------------------------------------------------------------------


def logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives logged scalars: the fit loop's count of batches that stepped
    the optimizer (``_TrainingEpochLoop._batches_that_stepped``, no public accessor)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def set_logging_step(trainer: pl.Trainer, step: int) -> None:
    """Overrides that count (see ``logging_step``)."""
    trainer.fit_loop.epoch_loop._batches_that_stepped = step


def batches_done_in_epoch(trainer: pl.Trainer) -> int:
    """Training batches already processed in the current epoch, restored from a checkpoint
    on resume (``_TrainingEpochLoop.batch_progress.current.processed``; the loop class is
    private, and Lightning offers no public count)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def request_sigterm_stop(trainer: pl.Trainer) -> None:
    """Makes Lightning stop after the current batch as it does on SIGTERM: it raises its
    ``SIGTERMException`` on every process at the same step, which callbacks see in
    ``on_exception`` (``_SignalConnector.received_sigterm``, checked by the training epoch
    loop after each batch; ``trainer.should_stop`` would instead end the run as completed)."""
    trainer._signal_connector.received_sigterm = True


def mark_finished_epoch_completed(checkpoint: dict[str, Any]) -> bool:
    """Rewrites, in place, the loop state of a checkpoint saved after an epoch's last batch
    but before Lightning counted the epoch completed (``on_train_epoch_end`` saves, and the
    epoch-end validation's) into the state of a checkpoint saved between epochs.

    Why: with ``max_steps`` set, Lightning 2.x always restores such a checkpoint as
    "restarting on epoch end" (``_FitLoop.restarting`` is forced on for iteration-based
    training), re-enters the finished epoch, finds its batches all done and counts it as a
    trained epoch: a resumed run limited by ``max_epochs`` trained one epoch fewer than a
    straight run. With ``max_steps=-1`` the same state resumes correctly; this makes both
    paths see it the same way. Relies on the checkpoint layout ``loops.fit_loop`` with
    ``epoch_progress`` and ``epoch_loop.batch_progress`` (``_Progress`` state dicts).
    Returns whether it changed anything."""
    try:
        fit = checkpoint["loops"]["fit_loop"]
        epochs = fit["epoch_progress"]
        batches = fit["epoch_loop.batch_progress"]
    except (KeyError, TypeError):
        return False
    cur = epochs["current"]
    finished = cur["ready"] == cur["started"] == cur["processed"] == cur["completed"] + 1
    if not (finished and batches.get("is_last_batch")):
        return False
    for part in ("current", "total"):
        epochs[part]["completed"] = epochs[part]["processed"]
    batches["current"] = dict.fromkeys(batches["current"], 0)
    batches["is_last_batch"] = False
    return True


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing a metrics.csv it finds instead of deleting it
    (``_ExperimentWriter._check_log_dir_exists`` removes the file; ``metrics_keys`` is the
    header, sorted, that ``save`` appends rows under)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))


class AppendingCSVLogger(CSVLogger):
    """A CSVLogger whose metrics.csv survives a resume: the rows logged before the
    interruption stay, the resumed run's rows follow (``CSVLogger._experiment``)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


# --- TensorBoard ----------------------------------------------------------------------


def tb_file_writer(writer: Any) -> Any:
    """The ``FileWriter`` behind a ``torch.utils.tensorboard.SummaryWriter``, to add a raw
    summary (the HPARAMS-tab protos) to the run's own event file
    (``SummaryWriter._get_file_writer``; the public ``add_hparams`` writes them into a new
    sub-run instead)."""
    return writer._get_file_writer()


def wrap_tb_file_writers(writer: Any, wrap: Callable[[Callable[[], Any]], Any]) -> None:
    """Every ``FileWriter`` the SummaryWriter ``writer`` hands out from now on comes from
    ``wrap(open_file_writer)`` (it replaces the private ``SummaryWriter._get_file_writer``,
    through which every add_* call and ``tb_file_writer`` reach the file)."""
    open_file_writer = writer._get_file_writer
    writer._get_file_writer = lambda: wrap(open_file_writer)


def tb_event_file(file_writer: Any) -> str:
    """The event file a ``FileWriter`` writes (its ``EventFileWriter``'s private
    ``_file_name``), else its log folder."""
    event_writer = getattr(file_writer, "event_writer", None)
    return getattr(event_writer, "_file_name", None) or file_writer.get_logdir()


# --- torchmetrics ---------------------------------------------------------------------


def ssim_options(metric: StructuralSimilarityIndexMeasure) -> dict[str, Any]:
    """The settings an SSIM metric was built with, as torchmetrics keeps them (attribute
    names of ``StructuralSimilarityIndexMeasure.__init__``, not a public API)."""
    names = ("gaussian_kernel", "sigma", "kernel_size", "data_range", "k1", "k2", "reduction")
    options = {name: getattr(metric, name) for name in names}
    options["full_outputs"] = metric.return_full_image or metric.return_contrast_sensitivity
    return options


def ssim_add_scores(metric: StructuralSimilarityIndexMeasure, per_image: torch.Tensor) -> None:
    """Adds per-image SSIMs to the metric's states as its own ``update`` would under
    ``elementwise_mean`` or ``sum`` reduction (states ``similarity`` and ``total``), so
    ``compute`` and the DDP reduction stay torchmetrics' own."""
    metric.similarity += per_image.sum()
    metric.total += len(per_image)
