"""Pre-emption: SIGTERM (what schedulers send) or SIGINT stops training after the current
batch and leaves a resumable ``checkpoints/last.ckpt``; ``convae-train resume=<run dir>``
continues from it with the same data order, noise and TensorBoard run. A launcher's SIGUSR2
handler (submitit's: requeue at the time limit, then exit) runs after that save. In a
joblib sweep's worker the same stop comes from the sweep's main process
(convae/sweeps/signals.py, convae/runs/stopping.py: ``sweep_stopping``).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.compat import request_sigterm_stop
from convae.runs import stopping
from convae.runs.stopping import sweep_stopping


class GracefulInterrupt(pl.Callback):
    """While fitting, SIGTERM and a first Ctrl-C only raise a flag; at the end of a training
    batch the processes agree on it (any one of them) and Lightning's SIGTERM stop (its
    ``SIGTERMException`` after that batch) runs on all of them at the same step, where this
    callback saves ``last.ckpt``. Lightning's own handler stops each DDP process when the
    signal reaches it, so one process could wait in a gradient all-reduce for another that
    is already saving, and the job hung; with one process it made no difference.

    SIGUSR2 stops the same way when a launcher has a handler for it (submitit sends it
    before the time limit and requeues the job from its handler, then exits): that handler
    runs once ``last.ckpt`` holds the exact step, or at once if training has ended."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.saved: Path | None = None
        self._stop_requested = False
        self._previous: dict[int, Any] = {}
        self._launcher_usr2: Callable[[int, Any], Any] | None = None  # due after the save

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        def request_stop(signum: int, frame: Any) -> None:
            if signum == signal.SIGINT:  # a second Ctrl-C interrupts at once
                signal.signal(signal.SIGINT, signal.default_int_handler)
            self._stop_requested = True
            stopping.stop_sweep(signum)  # in the sweep's main process: the other jobs stop too

        # A sweep stopped before this job began training: it stops after its first batch.
        self._stop_requested = sweep_stopping()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, request_stop)
        launcher_usr2 = signal.getsignal(signal.SIGUSR2)
        if callable(launcher_usr2):  # e.g. submitit's, which would exit mid-step

            def stop_then_hand_over(signum: int, frame: Any) -> None:
                self._launcher_usr2 = launcher_usr2
                self._stop_requested = True

            self._previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, stop_then_hand_over)

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any) -> None:
        if not self._stop_requested and sweep_stopping():  # its main process was signalled
            self._stop_requested = True
        # A collective every step (like Lightning's own SIGTERM broadcast): a few microseconds.
        if trainer.strategy.reduce_boolean_decision(self._stop_requested, all=False):
            request_sigterm_stop(trainer)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._restore_handlers()
        self._hand_over_usr2()

    def _hand_over_usr2(self) -> None:
        if self._launcher_usr2 is not None:  # submitit: requeue this job, then exit
            handler, self._launcher_usr2 = self._launcher_usr2, None
            handler(signal.SIGUSR2, None)

    def _restore_handlers(self) -> None:
        """Back to Lightning's handlers: a signal during the test stage stops it at once."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_exception(
        self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.checkpoint)
            self.saved = self.checkpoint
            self._hand_over_usr2()
