"""How many torch threads a run may use: oversubscribing the cores (jobs x threads > cores)
made training several times slower (docs/speed.md), so parallel sweep jobs split the cores."""

from __future__ import annotations

import logging
import os

from hydra.core.hydra_config import HydraConfig

log = logging.getLogger("convae")


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def capped_threads(threads: int) -> int:
    """``threads``, or the cores this process may use when it asks for more, with a
    WARNING: more threads than cores only slows training down (docs/speed.md)."""
    cores = available_cores()
    if threads <= cores:
        return threads
    log.warning(
        "threads=%d is more than the %d cores this process may use; using threads=%d "
        "(more threads than cores only slow torch down)",
        threads,
        cores,
        cores,
    )
    return cores


def default_threads() -> int:
    """All cores, or cores // n_jobs under the joblib launcher, or the submitit
    launcher's cpus_per_task."""
    cores = available_cores()
    if not HydraConfig.initialized():
        return cores
    launcher = HydraConfig.get().launcher
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs")
    if n_jobs is not None:
        jobs = cores if n_jobs <= 0 else min(int(n_jobs), cores)
        return max(1, cores // jobs)
    return cores
