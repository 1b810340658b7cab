"""What the host offers a run: the cores this process may use (and how many torch
threads a run may take of them), and whether the CPU multiplies bf16 natively.

Oversubscribing the cores (jobs x threads > cores) made training several times slower
(docs/speed.md), so parallel sweep jobs split the cores. Emulated bf16 (a CPU without AMX
or AVX512-BF16) is slower than fp32, so ``trainer.precision: auto`` asks
:func:`cpu_bf16_flags` (convae/config/precision.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

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


CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bf16 math


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bf16 instruction sets this CPU reports ([] where unknown: not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines()
                  if ln.startswith("flags")), [])  # fmt: skip
    return [f for f in CPU_BF16_FLAGS if f in flags]


# Where a launcher says which process of a multi-process run this is, in the order Lightning
# reads them (LOCAL_RANK before SLURM_PROCID, which SLURM sets for any job).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank() -> int:
    """This process's global rank as its launcher set it (0 when none did): known before
    Lightning is imported, as Lightning's rank_zero_only reads it at import."""
    for key in RANK_VARIABLES:
        value = os.environ.get(key)
        if value is not None:
            return int(value)
    return 0
