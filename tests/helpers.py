"""Helpers the test files share: run the real console scripts in a temporary folder, read
what a run wrote (results.json, TensorBoard events), write MNIST-format data files.

Fixtures live in conftest.py; plain functions and constants live here and are imported as
``from helpers import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from launcher import ENTRY_POINTS, Forked
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convae.data.sources import raw_folder

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]  # the checkout: tests/ lies in it


def pin_xdist_worker() -> None:
    """Under pytest-xdist (``make test`` starts one worker per core) each worker keeps its own
    share of the cores: the worker, its torch threads and every console script it starts
    (they inherit the pinning) never compete with the other workers for a core;
    oversubscribing them made training 3-9x slower here."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or workers < 2:
        return
    cores = sorted(os.sched_getaffinity(0))
    shares = min(workers, len(cores))
    os.sched_setaffinity(0, cores[int(worker[2:]) % shares :: shares])


pin_xdist_worker()
# Every core this process may use: conftest.py gives torch this many threads for the whole
# session, and console scripts run by the tests get the same (threads=THREADS).
THREADS = max(1, len(os.sched_getaffinity(0)))


def run_script(
    name: str, *args: str, cwd: Path, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    """The console script ``name`` (or ``python``) of this virtualenv, output captured; with
    ``check`` a non-zero exit fails the test, showing stderr. convae's own scripts are
    forked from a process that has imported them (tests/launcher.py): 3 s for a short run
    instead of 12."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    if name in ENTRY_POINTS and os.environ.get("CONVAE_TEST_EXEC") != "1":
        proc = Forked.run(name, list(args), cwd, env, timeout)
    else:
        proc = subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, env=env)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def wait_for(
    ready: Callable[[], object],
    proc: subprocess.Popen | None = None,
    *,
    timeout: float = 300,
    poll: float = 0.002,
    detail: Callable[[], str] = str,
):
    """Polls ``ready()`` every ``poll`` seconds until it returns something true, and returns
    that: a test waits for an event a run produces (a file it writes) rather than for a
    time that depends on the machine's speed. Fails the test if ``proc`` exits first or
    ``timeout`` seconds pass, with ``detail()`` (e.g. the process's stderr)."""
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before the awaited event: {detail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no awaited event after {timeout} s: {detail()}")
        time.sleep(poll)
    return found


def train(cwd: Path, *overrides: str, check: bool = True, **env: str):
    """convae-train on bundled data, few steps; returns (process, run folder or None)."""
    base = ["data.source=bundled", f"threads={THREADS}", "trainer.enable_progress_bar=false"]
    proc = run_script("convae-train", *base, *overrides, cwd=cwd, check=check, **env)
    runs = sorted((cwd / "outputs" / "runs").glob("*/*"))
    return proc, (runs[-1] if runs else None)


def results(run_dir: Path) -> dict:
    """A run folder's results.json."""
    return json.loads((run_dir / "results.json").read_text())


def events(run_dir: Path) -> EventAccumulator:
    """Everything a run logged to TensorBoard, loaded."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of ``tag``."""
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> None:
    """Writes a uint8 array as an IDX file (gzipped when the name ends in .gz), the format
    convae.data.idx reads: magic 0x0000 0x08 (unsigned bytes) <ndim>, big-endian sizes."""
    a = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, a.ndim])
    data += b"".join(int(s).to_bytes(4, "big") for s in a.shape) + a.tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    Path(path).write_bytes(data)


def fake_mnist(
    root: Path, source: str = "mnist", n_train: int = 240, n_test: int = 60, gz: bool = True
) -> Path:
    """A small random data set in torchvision's layout for ``source`` under ``root``;
    returns its raw folder."""
    folder = raw_folder(source, root)
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}",
                  torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8))  # fmt: skip
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", torch.arange(n) % 10)
    return folder


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` refuses new entries, even to root (chattr +i; mode 0o555 for others);
    skips where no way to do that exists."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        undo = ["chattr", "-i", str(folder)]
        if made.returncode != 0:
            pytest.skip(f"running as root and chattr +i fails here: {made.stderr.strip()}")
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        probe = folder / ".probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{folder} still takes new files after chattr +i / chmod 555")
        yield
    finally:
        subprocess.run(undo, check=True)


def run_on_small_tmpfs(mnt: Path, script: Path, arg: str) -> subprocess.CompletedProcess:
    """``python script <mnt>/<arg>`` (``arg`` relative to the mount) with a private 1 MB
    tmpfs mounted on ``mnt``: a real full disk for that process alone. Skips where
    unshare(1) or the mount is not available."""
    mount = 'mount -t tmpfs -o size=1m tmpfs "$1"'
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) for a private 1 MB tmpfs")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount, "-", str(mnt)],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here: {probe.stderr.strip()[-200:]}")
    target = f'"$1/{arg}"' if arg else '"$1"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{mount} && exec "$2" "$3" {target}', "-",
         str(mnt), sys.executable, str(script)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
