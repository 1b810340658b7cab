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


AUTO = "auto"
# Lightning's names; "bf16"/"16"/"32" are its short aliases of the same settings.
ALIASES = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}
CHOICES = (AUTO, "32-true", "bf16-mixed", "16-mixed")
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
