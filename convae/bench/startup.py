"""How fast the commands answer before any training: ``--help``, a refused override, a
refused sweep, against ``import pytorch_lightning`` timed in the same run (the ratio is what
compares across machines). Each command runs as a fresh process, as a user starts it."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = "python -c 'import pytorch_lightning'"
# (label, argv after the console script's name); every one answers without training.
COMMANDS = [
    ("convae-train --help", ["convae-train", "--help"]),
    ("convae-train, a bad override", ["convae-train", "model.upsample=bogus"]),
    ("convae-train -m, a bad second job", ["convae-train", "-m", "model.upsample=nearest,bogus"]),
    ("convae-train --cfg job", ["convae-train", "--cfg", "job"]),
    ("convae-eval --help", ["convae-eval", "--help"]),
    ("convae-eval, no such run", ["convae-eval", "ckpt=no/such/run"]),
    ("convae-report --help", ["convae-report", "--help"]),
]


def _script(name: str) -> str:
    """The console script beside this interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def _seconds(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def startup_times(repeats: int = 3) -> dict[str, float]:
    """Median seconds per command (the baseline first), interleaved so drift hits all."""
    runs: dict[str, list[float]] = {BASELINE: [], **{label: [] for label, _ in COMMANDS}}
    with tempfile.TemporaryDirectory(prefix="convae-startup-") as tmp:
        for _ in range(repeats):
            runs[BASELINE].append(_seconds([sys.executable, "-c", "import pytorch_lightning"],
                                           Path(tmp)))  # fmt: skip
            for label, (script, *args) in COMMANDS:
                runs[label].append(_seconds([_script(script), *args], Path(tmp)))
    return {label: statistics.median(times) for label, times in runs.items()}


def startup_report(times: dict[str, float]) -> str:
    base = times[BASELINE]
    lines = [f"{'':40s} {'seconds':>8s}  of the Lightning import"]
    for label, seconds in times.items():
        lines.append(f"{label:40s} {seconds:8.2f}  {seconds / base:5.2f}x")
    return "\n".join(lines)
