"""Every use of a framework internal lives here, behind a named function that says what it
relies on; tests/test_compat.py checks each assumption against the installed versions, so an
upgrade fails a named test instead of a run."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


def logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives logged scalars: the fit loop's count of batches that stepped
    the optimizer (``_TrainingEpochLoop._batches_that_stepped``, no public accessor)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def set_logging_step(trainer: pl.Trainer, step: int) -> None:
    """Overrides that count (see ``logging_step``)."""
    trainer.fit_loop.epoch_loop._batches_that_stepped = step


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
