"""A sweep's console: one line per job when it ends, a table of every job and the sweep
folder when the sweep ends (also before the error line of a failed or stopped sweep).

``SweepConsole`` (a Hydra callback in conf/train.yaml) also keeps each job's console to
warnings and errors, its full config and Lightning's lines going to its train.log
(convae/tracking/console.py); ``CONVAE_VERBOSE=1`` keeps the full output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from convae.config.errors import one_line
from convae.hardware import process_rank
from convae.hydra_compat import BASIC_SWEEPER
from convae.runs.stopping import JobInterrupted
from convae.sweeps.lines import JobOutcome, job_line, read_outcome, summary_table
from convae.sweeps.preflight import OPTUNA_SWEEPER, sweep_jobs
from convae.sweeps.summary import not_started, sweep_folders, unfinished_jobs
from convae.tracking.console import hide_launch_lines, quiet_sweep, quiet_sweep_job

_tabled: set[Path] = set()  # sweep folders whose table this process printed


class SweepConsole(Callback):
    """Prints each job's line and the sweep's table (module docstring)."""

    def __init__(self) -> None:
        self._total: int | None = None  # set in the main process, pickled to the workers
        self._started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0:
            return
        hide_launch_lines()
        self._total = sweep_size(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.monotonic()
        if _in_sweep(config) and quiet_sweep():
            quiet_sweep_job()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not _in_sweep(config) or process_rank() != 0:
            return
        seconds = time.monotonic() - self._started if self._started is not None else None
        outcome = job_outcome(Path(str(config.hydra.runtime.output_dir)), job_return, seconds)
        num = OmegaConf.select(config, "hydra.job.num")
        say(job_line(outcome, num + 1 if isinstance(num, int) else None, self._total))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() == 0:
            print_sweep_table(Path(str(config.hydra.sweep.dir)))


def _in_sweep(config: DictConfig) -> bool:
    return OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep launches: the basic sweeper's every combination, Optuna's
    n_trials; None where that is not known up front."""
    target = OmegaConf.select(config, "hydra.sweeper._target_")
    if target == OPTUNA_SWEEPER:
        trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
        return trials if isinstance(trials, int) else None
    if target != BASIC_SWEEPER:
        return None
    try:
        jobs = sweep_jobs(config, GlobalHydra.instance().config_loader())
    except Exception:  # a malformed sweep: Hydra refuses it with its own message
        return None
    return len(jobs) if jobs else None


def job_outcome(job: Path, job_return: JobReturn, seconds: float | None) -> JobOutcome:
    """What the job's results.json says; a job that failed before writing it (a refused
    folder) is named by its error."""
    error = job_return._return_value if job_return.status == JobStatus.FAILED else None
    outcome = read_outcome(job, seconds, one_line(error) if error is not None else None)
    if isinstance(error, BaseException) and not isinstance(error, JobInterrupted):
        if outcome.state == "completed":  # e.g. refused as another process's folder
            outcome.state, outcome.metrics = "failed", {}
        outcome.error = one_line(error)
    return outcome


def say(line: str) -> None:
    print(line, flush=True)


def print_sweep_table(folder: Path) -> None:
    """The sweep's table and folder, once per sweep folder; nothing for a sweep that
    started no job."""
    if folder in _tabled or not folder.is_dir():
        return
    _tabled.add(folder)
    jobs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    outcomes = [read_outcome(job) for job in jobs]
    names = {o.name for o in outcomes}
    outcomes += [JobOutcome(name, "not started") for name in not_started() if name not in names]
    if outcomes:
        say("\n".join([*summary_table(outcomes), f"Sweep folder: {folder}"]))


def closing_lines() -> str:
    """convae-train's addition to a failed sweep's error line (``run_cli``'s ``more``):
    the sweep's table printed first, then the jobs that did not complete."""
    for folder in sweep_folders():
        print_sweep_table(folder)
    sys.stdout.flush()
    return unfinished_jobs()
