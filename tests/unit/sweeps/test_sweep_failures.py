"""Failures travel (issue 27): every convae exception survives pickling, so a joblib sweep
job that fails with one reports it and the other jobs run on; SIGTERM or Ctrl-C to a joblib
sweep stops its jobs (results.json ``interrupted``, locks released), starts no more, and
leaves no worker process behind.

The sweeps run the real console script as a new process (not tests/launcher.py's fork):
signals go to its real pid, and its loky workers end as they do for a user.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath

import pytest
import torch
from helpers import BIN, results

import convae
from convae.runs.stopping import JobNotStarted
from convae.sweeps.signals import portable

SWEEP = ["-m", "data.source=bundled", "trainer.enable_progress_bar=false",
         "callbacks.artifact_digits=100", "callbacks.artifact_images_every=0",
         "callbacks.latent_space=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "threads=1", "seed=0,1,2"]  # fmt: skip

# Arguments for the error classes that define their own __init__ (a subclass without one
# uses its parent's): the pickling test builds each class with these.
REPRESENTATIVE = {
    "convae.runs.checkpoint.CheckpointError": (
        "runs/a/checkpoints/last.ckpt",
        "refused: its pickle asks for the global builtins.exec",
        "refused",
    ),
    "convae.runs.checkpoint_io.CheckpointSaveError": (
        Path("runs/a/checkpoints/best-epoch000-step20.ckpt"),
        PermissionError(13, "Permission denied", "runs/a/checkpoints/.best.tmp"),
    ),
    "convae.runs.results.RunFileError": (
        Path("runs/a/metrics.csv"),
        OSError(28, "No space left on device"),
    ),
    "convae.runs.stopping.Interrupted": ("runs/a interrupted at step 3; resume with convae-train",),
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def convae_errors() -> list[type[BaseException]]:
    """Every exception class defined in a convae module."""
    found = set()
    for info in pkgutil.walk_packages(convae.__path__, "convae."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # runs its command when imported
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__):  # fmt: skip
                found.add(obj)
    return sorted(found, key=_name)


def build(cls: type[BaseException]) -> BaseException:
    """``cls`` with representative arguments: REPRESENTATIVE's for the convae class whose
    __init__ it uses, else a message."""
    own_init = next((k for k in cls.__mro__ if "__init__" in vars(k)
                     and k.__module__.startswith("convae")), None)  # fmt: skip
    if own_init is None:
        return cls(f"{cls.__name__}: runs/a: something is wrong (data.noise_std=-1)")
    if _name(own_init) not in REPRESENTATIVE:
        pytest.fail(f"{_name(own_init)} has its own __init__: add its arguments to REPRESENTATIVE")
    return cls(*REPRESENTATIVE[_name(own_init)])


def comparable(value: object) -> object:
    """Exceptions compare by identity: compare their type and arguments instead."""
    if isinstance(value, BaseException):
        return type(value), value.args, comparable(vars(value))
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value


ERRORS = convae_errors()


def test_the_error_classes_are_found():
    names = {_name(cls) for cls in ERRORS}
    assert {"convae.runs.checkpoint.CheckpointError",
            "convae.runs.checkpoint_io.CheckpointSaveError", "convae.config.errors.ConfigError",
            "convae.runs.stopping.JobInterrupted",
            "convae.runs.stopping.Interrupted"} <= names  # fmt: skip


@pytest.mark.parametrize("cls", ERRORS, ids=_name)
def test_every_convae_error_survives_pickling(cls):
    err = build(cls)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert str(copy) == str(err)
    assert copy.args == err.args
    assert comparable(vars(copy)) == comparable(vars(err))  # path, why, kind, os_error, ...


def test_a_checkpoint_error_keeps_its_path_reason_and_kind():
    from convae.runs.checkpoint import CheckpointError
    from convae.runs.checkpoint_io import CheckpointSaveError

    err = pickle.loads(pickle.dumps(CheckpointError("a/last.ckpt", "empty (0 bytes)", "damaged")))
    assert (err.path, err.why, err.kind) == (Path("a/last.ckpt"), "empty (0 bytes)", "damaged")
    assert str(err) == "checkpoint a/last.ckpt: empty (0 bytes)"
    save = CheckpointSaveError(Path("a/last.ckpt"), OSError(28, "No space left on device"))
    copy = pickle.loads(pickle.dumps(save))
    assert copy.path == Path("a/last.ckpt") and copy.os_error.errno == 28
    assert str(copy) == str(save) and "free space" in str(copy)


class Stubborn(Exception):
    """A third-party error that cannot be unpickled (its __init__ wants two arguments)."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} and {b}")


def test_a_job_failure_that_would_not_unpickle_is_sent_as_a_runtime_error():
    from hydra.core.utils import JobReturn, JobStatus

    failed = JobReturn(status=JobStatus.FAILED, _return_value=Stubborn("x", "y"))
    sent = pickle.loads(pickle.dumps(portable(failed)))._return_value
    assert type(sent) is RuntimeError and str(sent) == "Stubborn: x and y"
    kept = JobReturn(status=JobStatus.FAILED, _return_value=JobNotStarted("seed=2"))
    sent = pickle.loads(pickle.dumps(portable(kept)))._return_value
    assert type(sent) is JobNotStarted and str(sent) == "seed=2: not started, the sweep was stopped"


def test_a_stopped_sweeps_last_line_counts_the_jobs_not_started(tmp_path, monkeypatch):
    from convae.sweeps import summary as sweep_summary

    sweep_dir = tmp_path / "sweep"
    for job, record in {"seed=0": {"status": "completed"},
                        "seed=1": {"status": "interrupted", "global_step": 4}}.items():  # fmt: skip
        (sweep_dir / job).mkdir(parents=True)
        (sweep_dir / job / "results.json").write_text(json.dumps(record))
    monkeypatch.setattr(sweep_summary, "_sweep_folders", [sweep_dir])
    monkeypatch.setattr(sweep_summary, "_not_started", [])
    assert sweep_summary.unfinished_jobs() == ""  # one: the error line names it
    assert sweep_summary.unfinished_jobs(at_least=1) == (
        " [1 of 2 jobs did not complete: seed=1 (interrupted at step 4)]"
    )
    sweep_summary.remember_not_started(["seed=1", "seed=2"])  # seed=1: an older folder
    assert sweep_summary.unfinished_jobs() == (
        " [2 of 3 jobs did not complete: seed=1 (interrupted at step 4), seed=2 (not started)]"
    )


def convae_train(*args: str, cwd: Path, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "convae-train"), *args], cwd=cwd, text=True, **popen)


@pytest.mark.slow
def test_a_job_failing_on_a_checkpoint_error_leaves_the_other_jobs_to_complete(tmp_path):
    """sweep_existing=continue into a job folder whose interrupted run's last.ckpt was
    replaced by a pickle convae refuses: that job fails with CheckpointError (which used to
    break the pool: BrokenProcessPool, the other running job killed, the rest not run)."""
    sweep_dir = tmp_path / "sweep"
    failing = sweep_dir / "seed=1"
    (failing / "checkpoints").mkdir(parents=True)
    (failing / "results.json").write_text(json.dumps({
        "status": "interrupted", "checkpoint": "checkpoints/last.ckpt",
        "resume": f"convae-train resume={failing}", "global_step": 2, "train_time_s": 1.0,
        "config": {"seed": 1}, "overrides": ["seed=1"]}))  # fmt: skip
    last = failing / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {}, "note": PurePosixPath("x")}, last)  # refused: a global

    proc = convae_train(*SWEEP, "trainer.max_steps=3", f"hydra.sweep.dir={sweep_dir}",
                        "sweep_existing=continue", cwd=tmp_path, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)  # fmt: skip
    _, stderr = proc.communicate(timeout=600)

    assert proc.returncode == 1, stderr
    assert "BrokenProcessPool" not in stderr and "Traceback" not in stderr
    assert results(sweep_dir / "seed=0")["status"] == "completed"
    assert results(sweep_dir / "seed=2")["status"] == "completed"
    failure = json.loads((failing / "failed_resume.json").read_text())  # beside its record
    assert failure["status"] == "failed"
    assert failure["error"].startswith(f"checkpoint {last}: refused")
    line = stderr.strip().splitlines()[-1]
    assert line == f"convae-train: error: {failure['error']}"  # names the job's folder
    assert not list(sweep_dir.rglob(".convae.lock"))


def process_tree(pid: int) -> list[int]:
    """The processes descended from ``pid``, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        tree += children
        todo += children
    return tree


def running(pid: int) -> bool:
    """Alive and not a zombie (one left for a reaper that never comes counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM to the main process", "Ctrl-C to the process group"],
)
def test_a_signal_stops_a_joblib_sweep_its_jobs_and_its_workers(tmp_path, signum, to_group):
    """Three jobs on two workers: once both running jobs have trained an epoch (their
    last.ckpt is there) the sweep is signalled. Each running job saves and records
    "interrupted" and releases its lock, the third is never started, and the sweep exits
    128 + the signal, its last line naming every job; no worker outlives it. (Before, a
    SIGTERM left the workers training on, and Ctrl-C had joblib kill them mid-save.)"""
    sweep_dir = tmp_path / "sweep"
    stderr_file = tmp_path / "stderr.txt"
    with open(stderr_file, "w") as err:  # its own process group, as a terminal's job
        proc = convae_train(*SWEEP, "trainer.max_steps=100000", "trainer.max_epochs=10000",
                            f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=err,
                            start_new_session=True)  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 400
        while len(list(sweep_dir.glob("*/checkpoints/last.ckpt"))) < 2:
            assert proc.poll() is None, stderr_file.read_text()
            assert time.monotonic() < deadline, "the jobs never finished an epoch"
            time.sleep(0.1)
        workers = process_tree(proc.pid)
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        code = proc.wait(timeout=300)
        deadline = time.monotonic() + 30  # workers end as the main process exits
        while [pid for pid in workers if running(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in workers if running(pid)]
    finally:  # whatever happened, nothing of the sweep goes on training
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    stderr = stderr_file.read_text()

    assert code == 128 + signum, stderr
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == ["seed=0", "seed=1"]  # seed=2 was not started: no folder
    steps = {}
    for job in jobs:
        res = results(sweep_dir / job)
        assert res["status"] == "interrupted", res
        assert res["global_step"] >= 20  # stopped in training, after its first epoch
        assert (sweep_dir / job / res["checkpoint"]).is_file()
        steps[job] = res["global_step"]
    assert not list(sweep_dir.rglob(".convae.lock"))  # job locks and the sweep's
    assert stderr.strip().splitlines()[-1] == (
        f"convae-train: error: the sweep was stopped by {signal.Signals(signum).name}; "
        f"continue it with the same command and hydra.sweep.dir={sweep_dir} "
        "sweep_existing=continue [3 of 3 jobs did not complete: "
        f"seed=0 (interrupted at step {steps['seed=0']}), "
        f"seed=1 (interrupted at step {steps['seed=1']}), seed=2 (not started)]"
    )
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    assert len(workers) >= 2  # two loky workers (and loky's resource trackers)
    assert survivors == []
