"""A joblib sweep stops as a whole on SIGTERM or Ctrl-C, and a failed job never takes the
other jobs down.

hydra-joblib-launcher runs each job in a loky worker process. Without this module:

- SIGTERM to the sweep's main process killed it at once (the default action); its workers
  trained on as orphans, holding their job folders' locks.
- Ctrl-C raised KeyboardInterrupt in the main process, and joblib killed every worker with
  SIGKILL, in the middle of its interrupt checkpoint. From a terminal the Ctrl-C also
  reached the idle workers, which exited, and loky called the whole pool broken.
- A job whose exception could not be unpickled (CheckpointError did not) broke the pool:
  BrokenProcessPool, the running jobs killed, the others never started.

``SweepSignals`` (a Hydra callback in conf/train.yaml) makes the joblib launcher run its
jobs through :func:`launch`, which is the plugin's ``launch`` plus:

- Each worker leaves SIGTERM and SIGINT to the main process (``_worker_started``; it is
  born with them blocked), so a signal sent to the whole process group (Ctrl-C in a
  terminal, ``scancel``) never kills one; while a job trains, ``GracefulInterrupt``
  handles them as in a single run. A worker whose main process is gone exits on them.
- While its jobs run, the main process catches SIGTERM and SIGINT and posts a stop on a
  semaphore the workers share (read without a lock: a killed worker cannot block it).
  A training job sees it after its current batch and stops as a single run does on
  SIGTERM: ``last.ckpt``, results.json ``interrupted``, its lock released. A job not yet
  begun is not started at all (no folder). Once every job has returned, the sweep ends
  with exit status 128 + the signal and a last line naming each job that did not
  complete. A second Ctrl-C stops at once (joblib kills the workers, as before).
- A worker whose main process is gone (killed with SIGKILL) stops its job the same way.
- A failed job's exception is checked to survive pickling; one that would not reaches the
  main process as a RuntimeError with its type and message instead of breaking the pool.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.experimental.callback import Callback
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from convae.config.errors import MAX_LINE_CHARS, cap_line
from convae.hardware import process_rank
from convae.runs import stopping
from convae.runs.stopping import JobNotStarted
from convae.sweeps.console import print_sweep_table
from convae.sweeps.summary import remember_not_started, unfinished_jobs
from convae.tracking.console import verbose

log = logging.getLogger("convae")

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# The sweep's main process: the stop shared with its workers (made once, so that joblib
# reuses the same workers for every batch of a sweeper), and the signal that stopped it.
_stop: Any = None
_stopped_by: int | None = None


class SweepSignals(Callback):
    """Routes a joblib sweep through :func:`launch` (see the module's docstring)."""

    def __init__(self) -> None:
        self._plugin_launch: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_plugin_launch": None}  # parallel launchers pickle callbacks

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0 or OmegaConf.select(config, "hydra.launcher._target_") != (
            JOBLIB_LAUNCHER
        ):
            return
        from hydra_plugins.hydra_joblib_launcher import _core

        # JoblibLauncher.launch calls _core.launch, looked up at each call.
        self._plugin_launch, _core.launch = _core.launch, launch

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._plugin_launch is not None:
            from hydra_plugins.hydra_joblib_launcher import _core

            _core.launch, self._plugin_launch = self._plugin_launch, None


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
    """hydra-joblib-launcher's ``_core.launch``, with a stop shared by all the jobs."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed
    from joblib.externals.loky.backend.context import get_context
    from joblib.parallel import LokyBackend

    global _stop
    assert launcher.config is not None and launcher.hydra_context is not None
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir.mkdir(parents=True, exist_ok=True)

    joblib_cfg = {**launcher.joblib, "backend": "loky"}  # as the plugin: loky, always
    process_joblib_cfg(joblib_cfg)
    log.info(
        "Joblib.Parallel(%s) is launching %d jobs",
        ",".join(f"{k}={v}" for k, v in joblib_cfg.items()),
        len(job_overrides),
    )
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    each = logging.INFO if verbose() else logging.DEBUG  # quiet: each job's line at its end
    for idx, overrides in enumerate(job_overrides):
        log.log(each, "\t#%d : %s", idx, " ".join(filter_overrides(overrides)))

    if _stop is None:
        _stop = get_context("loky").Semaphore(0)
    with_workers = {"initializer": _worker_started, "initargs": (_stop, os.getpid())}
    singleton_state = Singleton.get_state()
    jobs = [
        delayed(run_unless_stopped)(
            initial_job_idx + idx,
            overrides,
            launcher.hydra_context,
            launcher.config,
            launcher.task_function,
            singleton_state,
        )
        for idx, overrides in enumerate(job_overrides)
    ]
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    # joblib runs the jobs in this process when it has one worker: they stop the same way
    stopping.watch_sweep_stop(lambda: _stopped_by is not None, _stop_sweep)
    try:
        # Workers are born with SIGTERM and SIGINT blocked and unblock them once their own
        # handler is set (a Ctrl-C while they import torch would kill them): a first call
        # starts them all (loky starts a pool's workers together); the jobs' call reuses them.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            Parallel(**{**joblib_cfg, "backend": LokyBackend(**with_workers)})(
                [delayed(os.getpid)()]
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a signal held back runs now
        runs = Parallel(**{**joblib_cfg, "backend": LokyBackend(**with_workers)})(jobs)
    except Exception:
        if _stopped_by is None:
            raise
        runs = []  # e.g. a worker that the signal killed while it was starting
    finally:
        stopping.watch_sweep_stop(None, None)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if _stopped_by is not None:
        _exit_stopped(sweep_dir, runs)
    return runs


def _on_signal(signum: int, frame: Any) -> None:
    """The main process's SIGTERM and SIGINT handler while the jobs run."""
    if _stopped_by is None:
        _stop_sweep(signum)
    elif signum == signal.SIGINT:  # a second Ctrl-C: at once (joblib kills the workers)
        raise KeyboardInterrupt


def _stop_sweep(signum: int) -> None:
    global _stopped_by
    if _stopped_by is not None:
        return
    _stopped_by = signum
    if _stop is not None:
        # One post is enough where sem_getvalue exists; more for _posted's fallback.
        for _ in range(2 * (os.cpu_count() or 1) + 1):
            _stop.release()
    log.warning(
        "%s: stopping the sweep: each running job stops after its current step and saves a "
        "checkpoint, the jobs not started are left out%s",
        signal.Signals(signum).name,
        "; Ctrl-C again stops at once" if signum == signal.SIGINT else "",
    )


def _exit_stopped(sweep_dir: Path, runs: Sequence[JobReturn]) -> None:
    """The last line of a stopped sweep, then exit 128 + the signal (143 for SIGTERM)."""
    assert _stopped_by is not None
    remember_not_started([
        r._return_value.job for r in runs
        if r.status == JobStatus.FAILED and isinstance(r._return_value, JobNotStarted)
    ])  # fmt: skip
    name = signal.Signals(_stopped_by).name
    line = (
        f"the sweep was stopped by {name}; continue it with the same command and "
        f"hydra.sweep.dir={sweep_dir} sweep_existing=continue"
    )
    print_sweep_table(sweep_dir)
    line = cap_line(line + unfinished_jobs(at_least=1), 2 * MAX_LINE_CHARS)
    print(f"convae-train: error: {line}", file=sys.stderr)
    raise SystemExit(128 + _stopped_by)


def _worker_started(stop: Any, main_pid: int) -> None:
    """A loky worker's initializer: outside training, SIGTERM and SIGINT are left to the
    main process (they reach a worker too when sent to the whole process group), unless
    it is gone; its jobs stop once the main process posts ``stop``, or is gone."""

    def orphaned() -> bool:
        return os.getppid() != main_pid

    def on_signal(signum: int, frame: Any) -> None:
        if orphaned():  # no main process left to stop it: end as the signal would
            raise SystemExit(128 + signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since its birth
    stopping.watch_sweep_stop(lambda: _posted(stop) or orphaned())


def _posted(stop: Any) -> bool:
    try:
        return stop.get_value() > 0
    except NotImplementedError:  # no sem_getvalue (macOS): take a post and give it back
        if stop.acquire(False):
            stop.release()
            return True
        return False


def run_unless_stopped(
    idx: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """The plugin's ``execute_job``, in a worker: a job of a stopped sweep is not started
    (nothing written), and a failure that would not unpickle is sent as a RuntimeError."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    if stopping.sweep_stopping():
        job = str(OmegaConf.select(sweep_config, "hydra.sweep.subdir"))
        return JobReturn(
            overrides=list(overrides), status=JobStatus.FAILED, _return_value=JobNotStarted(job)
        )
    ret = run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    return portable(ret)


def portable(ret: JobReturn) -> JobReturn:
    """``ret`` with a failure that survives pickling: an exception that would not unpickle
    in the main process (BrokenProcessPool there) becomes a RuntimeError naming it."""
    err = ret._return_value
    if ret.status == JobStatus.FAILED and isinstance(err, BaseException):
        try:
            pickle.loads(pickle.dumps(err))
        except Exception:
            ret._return_value = RuntimeError(f"{type(err).__name__}: {err}")
    return ret
