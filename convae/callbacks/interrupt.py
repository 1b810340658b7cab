"""Pre-emption: SIGTERM (what schedulers send) or SIGINT stops training after the current
batch and leaves a resumable ``checkpoints/last.ckpt``; ``convae-train resume=<run dir>``
continues from it with the same data order, noise and TensorBoard run.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException


class GracefulInterrupt(pl.Callback):
    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.saved: Path | None = None
        self._previous_sigint = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # Lightning turns SIGTERM into SIGTERMException at the next batch boundary; route a
        # first Ctrl-C the same way (a second one interrupts at once).
        def on_sigint(signum, frame) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            trainer._signal_connector.received_sigterm = True

        self._previous_sigint = signal.signal(signal.SIGINT, on_sigint)

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        # One optimizer, no accumulation: the logging step is the global step. Lightning
        # adds one to it when restoring a checkpoint saved at an epoch's end, which would
        # leave a gap in every curve of a resumed run.
        loop = trainer.fit_loop.epoch_loop
        loop._batches_that_stepped = trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(
        self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        # Also mid-validation during fit: the loops' state lets Lightning redo that pass.
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.checkpoint)
            self.saved = self.checkpoint
