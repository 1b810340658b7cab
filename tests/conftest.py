"""Shared helpers: run the real console scripts in a temporary folder, read real events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

BIN = Path(sys.executable).parent
# One process at a time here, so torch may use every core; subprocess runs get the same.
THREADS = max(1, len(os.sched_getaffinity(0)))
torch.set_num_threads(THREADS)


def run_script(
    name: str, *args: str, cwd: Path, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def train(cwd: Path, *overrides: str, check: bool = True, **env: str):
    """convae-train on bundled data, few steps; returns (process, run folder or None)."""
    base = ["data.source=bundled", f"threads={THREADS}", "trainer.enable_progress_bar=false"]
    proc = run_script("convae-train", *base, *overrides, cwd=cwd, check=check, **env)
    runs = sorted((cwd / "outputs" / "runs").glob("*/*"))
    return proc, (runs[-1] if runs else None)


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="session")
def bundled_digits() -> torch.Tensor:
    """500 real digits (the bundled validation split) as floats in [0, 1]."""
    from convae.data.datamodule import MnistDataModule

    dm = MnistDataModule(source="bundled")
    dm.setup()
    return dm.fixed_digits(500)[1]
