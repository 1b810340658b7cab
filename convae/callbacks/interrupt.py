"""Pre-emption: SIGTERM (what schedulers send) or SIGINT stops training after the current
batch and leaves a resumable ``checkpoints/last.ckpt``; ``convae-train resume=<run dir>``
continues from it with the same data order, noise and TensorBoard run. A launcher's SIGUSR2
handler (submitit's: requeue at the time limit, then exit) runs after that save. In a
joblib sweep's worker the same stop comes from the sweep's main process
(convae/sweeps/signals.py: ``sweep_stopping``).
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
from convae.errors import ConvaeError


class JobInterrupted(ConvaeError):
    """A sweep job stopped this way, raised as an error rather than exit 143: the launcher
    records it as the job's result and goes on with the other jobs. With an exit, submitit
    had no result to return, and on a cluster without accounting (no sacct) the sweep
    command waited for one forever."""


class JobNotStarted(JobInterrupted):
    """A sweep job left out because the sweep was stopped before it began
    (convae/sweeps/signals.py): nothing of it was written. ``args[0]``: its folder name."""

    @property
    def job(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.job}: not started, the sweep was stopped"


# A parallel sweep told to stop (SIGTERM or Ctrl-C to its main process): set up in the
# sweep's processes by convae/sweeps/signals.py. Outside a sweep both stay None.
_sweep_stopping: Callable[[], bool] | None = None
_stop_sweep: Callable[[int], None] | None = None


def watch_sweep_stop(
    stopping: Callable[[], bool] | None, stop_sweep: Callable[[int], None] | None = None
) -> None:
    """``stopping()``: whether the sweep this process runs jobs for was told to stop (a
    running job then stops like on SIGTERM, see ``GracefulInterrupt``); ``stop_sweep``: what
    a stop signal caught during training also does, in the sweep's main process (it runs
    the jobs itself when joblib falls back to one process). None, None: no sweep."""
    global _sweep_stopping, _stop_sweep
    _sweep_stopping, _stop_sweep = stopping, stop_sweep


def sweep_stopping() -> bool:
    """Whether this process's sweep was told to stop; False outside a sweep."""
    return _sweep_stopping is not None and _sweep_stopping()


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
            if _stop_sweep is not None:  # the sweep's main process: the other jobs stop too
                _stop_sweep(signum)

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
