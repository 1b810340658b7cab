"""Checkpoint saves are atomic on the checkpoint's filesystem and a failed one stops the run.

Read-only folders are made with ``chattr +i`` where the tests run as root (root writes
through mode 0o555), or with mode 0o555 otherwise; "no space" and a read-only filesystem
are a real 1 MB tmpfs in a private mount namespace (``unshare -m``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers import BIN, THREADS, events, read_only, results, run_on_small_tmpfs, wait_for
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.callbacks.interrupt import GracefulInterrupt
from convae.config.errors import one_line
from convae.runs.checkpoint_io import AtomicCheckpointIO, CheckpointSaveError, temp_name
from convae.tracking.loggers import build_loggers
from convae.training.build import build_trainer

BASE = ["data.source=bundled", f"threads={THREADS}", "trainer.enable_progress_bar=false"]
TINY = ["trainer.max_steps=40", "callbacks.artifact_images_every=0", "test=true"]


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_a_save_replaces_the_target_and_leaves_no_temporary_file(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"  # the folder is made on the first save
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, target)
    io.save_checkpoint({"step": 2, "w": torch.full((3,), 2.0)}, target)
    assert os.listdir(target.parent) == ["last.ckpt"]
    loaded = torch.load(target, weights_only=True)
    assert loaded["step"] == 2 and torch.equal(loaded["w"], torch.full((3,), 2.0))
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_a_save_whose_pickling_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)
    old = target.read_bytes()
    # the large tensor comes first in the pickle: the failure is part-way through the save
    with pytest.raises(RuntimeError, match="cannot pickle this"):
        io.save_checkpoint({"big": torch.zeros(1_000_000), "bad": _Unpicklable()}, target)
    assert target.read_bytes() == old
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_a_save_into_a_read_only_folder_names_the_path_and_keeps_the_old_file(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)
    old = target.read_bytes()
    with read_only(target.parent), pytest.raises(CheckpointSaveError) as caught:
        io.save_checkpoint({"step": 2}, target)
    line = one_line(caught.value)
    assert line.startswith(f"checkpoint save failed: {target}: [Errno ")
    assert ("Permission denied" in line or "Operation not permitted" in line) and "\n" not in line
    assert "make the folder writable" in line
    assert target.read_bytes() == old and os.listdir(target.parent) == ["last.ckpt"]


NO_SPACE_SCRIPT = """
import json, os, sys, torch
from convae.config.errors import one_line
from convae.config.schema import register_configs
from convae.runs.checkpoint_io import AtomicCheckpointIO, CheckpointSaveError
io, target, seen = AtomicCheckpointIO(), sys.argv[1], {}
io.save_checkpoint({"step": 1}, target)
for case in ("no_space", "read_only_fs"):
    if case == "read_only_fs":
        os.system(f"mount -o remount,ro {os.path.dirname(target)}")
    try:
        io.save_checkpoint({"step": 2, "big": torch.zeros(1_000_000)}, target)  # 4 MB
    except CheckpointSaveError as err:
        seen[case] = {"error": one_line(err), "errno": err.os_error.errno,
                      "files": sorted(os.listdir(os.path.dirname(target))),
                      "step": torch.load(target, weights_only=True)["step"]}
print(json.dumps(seen))
"""


@pytest.mark.slow  # a Python subprocess (torch, Lightning) in a private mount namespace
def test_a_save_on_a_full_or_read_only_filesystem_keeps_the_old_file(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    (tmp_path / "save.py").write_text(NO_SPACE_SCRIPT)
    proc = run_on_small_tmpfs(mnt, tmp_path / "save.py", "last.ckpt")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    target = mnt / "last.ckpt"
    assert seen["no_space"]["errno"] == 28
    assert seen["no_space"]["error"] == (
        f"checkpoint save failed: {target}: [Errno 28] No space left on device; "
        "free space on its filesystem, then run again"
    )
    assert seen["read_only_fs"]["errno"] == 30
    assert "[Errno 30] Read-only file system" in seen["read_only_fs"]["error"]
    for case in seen.values():  # the old checkpoint, whole; no temporary file
        assert case["files"] == ["last.ckpt"] and case["step"] == 1


def test_a_later_save_sweeps_temporaries_of_dead_processes_but_not_of_live_ones(tmp_path):
    target = tmp_path / "last.ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    live = subprocess.Popen(["sleep", "60"])
    try:

        def temp_of(pid: int, name: str) -> Path:
            mine = temp_name(tmp_path / name)
            return mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{pid}.", 1))

        stale = temp_of(int(dead.stdout), "best-epoch001-step20.ckpt")
        busy = temp_of(live.pid, "last.ckpt")
        foreign = tmp_path / ".notes.tmp"  # not one of ours: left alone
        for path in (stale, busy, foreign):
            path.write_bytes(b"partial")
        AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
        assert not stale.exists()
        assert busy.exists() and foreign.exists()
    finally:
        live.kill()
        live.wait()


class _SigtermAt(pl.Callback):
    """Sends this process SIGTERM at a training batch, as a scheduler would."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_failed_interrupt_save_raises_out_of_fit_instead_of_an_interrupt(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=10,
        limit_val_batches=0,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        plugins=[AtomicCheckpointIO()],
        callbacks=[GracefulInterrupt(folder / "last.ckpt"), _SigtermAt(batch=2)],
    )
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with read_only(folder), pytest.raises(CheckpointSaveError) as caught:
            trainer.fit(BoringModel())
    finally:
        signal.signal(signal.SIGTERM, previous)  # Lightning's teardown did not run
    chain, err = [], caught.value
    while err is not None:
        chain, err = [*chain, type(err)], err.__context__
    assert chain == [CheckpointSaveError, PermissionError, SIGTERMException]  # raised on SIGTERM
    assert caught.value.path == folder / "last.ckpt"
    assert os.listdir(folder) == []


@pytest.mark.parametrize("trainer", ["default", "ddp"])
def test_the_built_trainer_saves_through_the_atomic_plugin(tmp_path, compose, trainer):
    cfg = compose(f"trainer={trainer}", "trainer.accelerator=cpu", validate=False)
    built = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path))
    assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)
    assert isinstance(built.strategy, DDPStrategy) == (trainer == "ddp")


def _save_forever(target: Path, big: torch.Tensor) -> None:
    """A forked child: save through the plugin until killed, $TMPDIR on another filesystem."""
    try:
        os.environ["TMPDIR"] = "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp"
        tempfile.tempdir = None
        io = AtomicCheckpointIO()
        for i in range(10**9):
            io.save_checkpoint({"i": i, "big": big}, target)
    finally:
        os._exit(1)


def _state(folder: Path, pid: int) -> tuple[int | None, dict[str, int]]:
    """The inode of ``folder/last.ckpt`` (None: there is none) and the sizes of ``pid``'s
    temporary files, by name."""
    try:
        ino: int | None = (folder / "last.ckpt").stat().st_ino
    except FileNotFoundError:
        ino = None
    mine = {}
    for path in folder.glob(".*.tmp") if folder.exists() else []:
        if f".{pid}." in path.name:
            with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
                mine[path.name] = path.stat().st_size
    return ino, mine


def _kill_in_phase(target: Path, big: torch.Tensor, in_phase, *, freeze: bool, missed=None):
    """Forks a process saving ``big`` to ``target`` over and over and SIGKILLs it in the
    phase of a save where ``in_phase(*_state(...))`` holds, whatever the machine's speed:
    the folder is polled without pause and, with ``freeze``, the saver is stopped (SIGSTOP)
    on sight and killed only if it is still in the phase once stopped, else continued for
    its next save. Without ``freeze`` it is killed on sight (a stopped process finishes
    its write first; only a kill cuts one short) and the caller checks what it left.
    Returns its pid, or None once ``missed(*_state(...))`` says the phase cannot come."""
    pid = os.fork()  # the plugin is imported already: the child saves at once
    if pid == 0:
        _save_forever(target, big)

    def phase_now() -> str:
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the saving process died"
        state = _state(target.parent, pid)
        return "missed" if missed and missed(*state) else "in" if in_phase(*state) else ""

    try:
        while wait_for(phase_now, timeout=60, poll=0) == "in":
            if not freeze:
                return pid
            os.kill(pid, signal.SIGSTOP)
            assert os.WIFSTOPPED(os.waitpid(pid, os.WUNTRACED)[1])  # stopped by now
            if in_phase(*_state(target.parent, pid)):  # frozen inside the phase
                return pid
            os.kill(pid, signal.SIGCONT)
        return None
    finally:
        os.kill(pid, signal.SIGKILL)
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL


def test_a_process_killed_at_each_phase_of_its_saves_leaves_a_whole_checkpoint(tmp_path):
    """Each kill lands at a known phase of a save, seen on disk rather than guessed from a
    delay: before its first file; while the first save's temporary file exists; between a
    rename and the next temporary file; part-way through writing a later save's temporary
    file. last.ckpt is always absent or whole, and the only file left is the killed
    process's own temporary file, which the next save sweeps."""
    folder = tmp_path / "checkpoints"
    target = folder / "last.ckpt"
    big = torch.arange(4_000_000, dtype=torch.float32)  # 16 MB: saves take a while

    def is_whole() -> bool:
        loaded = torch.load(target, weights_only=True)
        return torch.equal(loaded["big"], big) and isinstance(loaded["i"], int)

    def no_file(ino, mine) -> bool:
        return ino is None and not mine

    # Before its first file: stopped at once and checked while stopped.
    pid = _kill_in_phase(target, big, no_file, freeze=True)
    assert pid and not target.exists() and _state(folder, pid)[1] == {}
    # While its first save's temporary file exists, before any last.ckpt. Missed if the
    # save finished unseen (a slow poll, a fast disk): then again in an empty folder.
    for _ in range(10):
        pid = _kill_in_phase(target, big, lambda ino, mine: ino is None and mine, freeze=True,
                             missed=lambda ino, mine: ino is not None)  # fmt: skip
        if pid:
            break
        shutil.rmtree(folder)
    assert pid and not target.exists() and len(_state(folder, pid)[1]) == 1
    # Between a rename and the next temporary file: its own last.ckpt, whole.
    pid = _kill_in_phase(target, big, lambda ino, mine: ino is not None and not mine,
                         freeze=True)  # fmt: skip
    assert pid and is_whole() and temps(folder) == []  # its first save swept the earlier one
    # Part-way through writing a later save's temporary file: killed on sight of a started
    # one; a kill that landed once the write was done is tried again in a new process.
    for _ in range(50):
        old, whole = target.read_bytes(), target.stat().st_size
        pid = _kill_in_phase(target, big, lambda ino, mine: ino is not None and any(mine.values()),
                             freeze=False)  # fmt: skip
        sizes = list(_state(folder, pid)[1].values())
        if sizes and 0 < sizes[0] < whole:
            break
    else:
        pytest.fail("no kill landed while a temporary file was being written")
    assert target.read_bytes() == old and is_whole()  # the earlier save's, untouched
    assert [name for name in temps(folder) if f".{pid}." not in name] == []  # swept

    AtomicCheckpointIO().save_checkpoint({"i": -1, "big": big}, target)
    assert os.listdir(folder) == ["last.ckpt"]  # the next save swept the killed one's file
    assert torch.load(target, weights_only=True)["i"] == -1


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("convae-train: error:")]


def train_into_read_only_checkpoints(tmp_path: Path, *, results_unwritable: bool = False):
    """convae-train whose checkpoints/ folder turns read-only before its first save: the run
    is paused (SIGSTOP) once its TensorBoard file exists, i.e. after the run folder was
    prepared and before any checkpoint, and continued once the folder is read-only.
    Returns (exit code, stderr, run folder)."""
    run_dir = tmp_path / "run"
    args = [*BASE, *TINY, f"hydra.run.dir={run_dir}"]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([str(BIN / "convae-train"), *args], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        while not list(run_dir.glob("events.out.tfevents.*")):
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)
        (run_dir / "checkpoints").mkdir()  # fails if a save had come first
        if results_unwritable:
            (run_dir / "results.json" / "x").mkdir(parents=True)  # a folder in its place
        with read_only(run_dir / "checkpoints"):
            proc.send_signal(signal.SIGCONT)
            proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, (tmp_path / "stderr.txt").read_text(), run_dir


@pytest.mark.slow
def test_a_run_with_a_read_only_checkpoint_folder_fails_at_the_first_save(tmp_path):
    code, stderr, run_dir = train_into_read_only_checkpoints(tmp_path)
    assert code == 1, stderr
    (line,) = _error_lines(stderr)
    assert line == stderr.strip().splitlines()[-1] and "Traceback" not in stderr
    first = run_dir / "checkpoints" / "best-epoch000-step20.ckpt"  # epoch 1 is 20 steps
    assert line.startswith(f"convae-train: error: checkpoint save failed: {first}: [Errno ")
    assert results(run_dir)["status"] == "failed"
    assert results(run_dir)["error"] == line.removeprefix("convae-train: error: ")
    acc = events(run_dir)
    assert max(e.step for e in acc.Scalars("train/loss")) <= 20  # stopped at once, not at 40
    assert not [t for t in acc.Tags()["scalars"] if t.startswith("test/")]  # no test stage
    assert "Checkpoint file not found" not in stderr


@pytest.mark.slow
def test_a_failed_save_is_named_on_stderr_even_when_results_cannot_be_written(tmp_path):
    code, stderr, run_dir = train_into_read_only_checkpoints(tmp_path, results_unwritable=True)
    assert code == 1, stderr
    (line,) = _error_lines(stderr)
    assert line.startswith(f"convae-train: error: checkpoint save failed: {run_dir}/checkpoints/")
    assert "Could not record the failure" in (run_dir / "train.log").read_text()
    assert temps(run_dir) == []  # the results temporary file was removed too


@pytest.mark.slow
def test_a_sigterm_whose_save_fails_records_a_failed_run_not_an_interrupted_one(tmp_path):
    """The first epoch saves; the run is paused, its folder made read-only and SIGTERM sent:
    the interrupt's last.ckpt save fails, and the run says so instead of "interrupted"."""
    run_dir = tmp_path / "run"
    folder = run_dir / "checkpoints"
    args = [*BASE, "trainer.max_steps=400", "callbacks.artifact_images_every=0",
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([str(BIN / "convae-train"), *args], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        while not (folder / "last.ckpt").exists():
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)
        with read_only(folder):
            proc.send_signal(signal.SIGTERM)  # handled at the next batch end
            proc.send_signal(signal.SIGCONT)
            proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 1, stderr
    (line,) = _error_lines(stderr)
    assert line == f"convae-train: error: {results(run_dir)['error']}"
    assert results(run_dir)["status"] == "failed"
    assert line.startswith(f"convae-train: error: checkpoint save failed: {folder / 'last.ckpt'}")
    assert temps(folder) == []
