"""How many torch threads a run may use: oversubscribing the cores (jobs x threads > cores)
made training 3-9x slower on a 2-core machine, so parallel sweep jobs split the cores."""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


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
