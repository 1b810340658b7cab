"""A run or sweep told to stop, known without Lightning: the errors a stopped job ends with
and the sweep-wide stop that a joblib sweep's main process shares with its workers
(convae/sweeps/signals.py sets it up; convae/callbacks/interrupt.py acts on it in training).
"""

from __future__ import annotations

from collections.abc import Callable

from convae.errors import ConvaeError


class Interrupted(SystemExit):
    """Training stopped on SIGTERM/SIGINT after saving a resumable checkpoint: exit 143."""

    def __init__(self, why: str) -> None:
        super().__init__(143)
        self.why = why


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


def stop_sweep(signum: int) -> None:
    """In a sweep's main process, a stop signal caught during training stops the sweep's
    other jobs too; elsewhere nothing."""
    if _stop_sweep is not None:
        _stop_sweep(signum)
