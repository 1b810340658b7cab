"""One writer per folder: run and sweep folders are locked while a process writes there,
a sweep into a used folder needs sweep_existing=continue|overwrite, job folder names are
unique. Concurrency is made deterministic with real signals: the first process is frozen
(SIGSTOP) while it holds its lock, the second one runs against it, then SIGCONT."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import BIN, THREADS, results, run_script

from convae.config.errors import ConfigError
from convae.config.resolvers import MAX_NAME, job_dirname, job_overrides_name, safe_name
from convae.report.sweeps import read_sweep
from convae.runs.folder import prepare_run_folder
from convae.runs.lock import LOCK_NAME, FolderLocked, FolderRefused, acquire, read_holder
from convae.sweeps.folder import claim_sweep_folder
from convae.sweeps.job_names import fixed_keys

TINY = ["data.source=bundled", f"threads={THREADS}", "trainer.enable_progress_bar=false",
        "callbacks.artifact_images_every=0", "callbacks.artifact_digits=100",
        "test=false"]  # fmt: skip
SWEEP = [*TINY, "trainer.max_steps=3"]
# 4 steps an epoch: a run resumed at an epoch's end (step 4) continues exactly
RESUME = [*TINY, "data.batch_size=1000"]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_lock(folder: Path, **holder: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": dead_pid(), "host": socket.gethostname(), "since": "2026-01-01T00:00:00",
            "command": "convae-train (killed)", **holder}  # fmt: skip
    (folder / LOCK_NAME).write_text(json.dumps(info))


def frozen_while_holding(command: list[str], cwd: Path, folder: Path) -> subprocess.Popen:
    """Starts ``command``; once it holds ``folder``'s lock, stops it there (SIGSTOP)."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.time() + 300
    while (read_holder(folder) or {}).get("pid") != proc.pid:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGSTOP)
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        time.sleep(0.01)  # the signal is delivered asynchronously: wait until it has stopped
    return proc


def thaw(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but Hydra's own records (.hydra/, train.log)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".hydra" not in p.parts and p.name != "train.log"
    }


# -- in-process: names and the lock ------------------------------------------------------


def test_overrides_that_sanitise_to_one_name_get_distinct_deterministic_folders():
    plain = safe_name("upsample=transposed,seed=2", 0)
    assert plain == "upsample=transposed,seed=2"  # nothing changed: no suffix
    slash, underscore = safe_name("root=x/y", 0), safe_name("root=x_y", 1)
    assert underscore == "root=x_y"
    assert slash.startswith("root=x_y~") and len(slash) == len("root=x_y") + 7
    assert safe_name("root=x/y", 5) == slash  # a requeued job finds its folder again
    long_a, long_b = safe_name("a=" + "x" * 300, 0), safe_name("a=" + "x" * 299 + "y", 0)
    assert long_a != long_b and max(len(long_a), len(long_b)) <= MAX_NAME
    assert safe_name("", 3) == "job3"


def test_job_names_keep_the_sweeps_order_and_cut_keys_only_where_unambiguous():
    task = ["model.upsample=nearest", "data.noise_std=0.5", "seed=1", "threads=1",
            "+optim.momentum=0.9", "model=depth_16_8_8"]  # fmt: skip
    name = job_overrides_name(task, ["threads"])
    assert name == "upsample=nearest,noise_std=0.5,seed=1,+momentum=0.9,model=depth_16_8_8"
    # the upsample group and model.upsample both swept: the key stays whole
    assert job_overrides_name(["upsample=nearest", "model.upsample=x"], []) == (
        "upsample=nearest,model.upsample=x"
    )
    assert job_overrides_name(["a.lr=1", "b.lr=2"], []) == "a.lr=1,b.lr=2"


def test_a_sweep_named_before_keeps_its_job_folders(tmp_path):
    """A sweep made when names were Hydra's sorted override_dirname, continued now."""
    (tmp_path / "model.upsample=nearest,seed=0").mkdir()
    task = ["seed=0", "model.upsample=nearest"]
    earlier = "model.upsample=nearest,seed=0"
    assert job_dirname(task, [], 0, str(tmp_path), earlier) == earlier
    assert job_dirname(task, [], 0, str(tmp_path / "new"), earlier) == "seed=0,upsample=nearest"


def test_only_keys_every_job_shares_are_left_out_of_job_folder_names():
    keys = fixed_keys(["data.source=bundled", "seed=7", "model.upsample=nearest,bilinear",
                       "seed=0,1", "+optim.momentum=0.9"])  # fmt: skip
    # seed is swept (its last value wins), so it names the folders with model.upsample
    assert keys == ["data.source", "optim.momentum", "sweep_existing"]


def test_a_held_folder_is_refused_naming_the_holder_and_free_again_once_released(tmp_path):
    lock = acquire(tmp_path / "run")
    holder = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(FolderLocked, match=rf"in use by pid {os.getpid()} on "):
        acquire(tmp_path / "run")
    lock.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    acquire(tmp_path / "run").release()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    write_lock(tmp_path)
    with caplog.at_level(logging.WARNING, logger="convae"):
        lock = acquire(tmp_path)
    assert "taking over the stale lock of pid" in caplog.text
    assert read_holder(tmp_path)["pid"] == os.getpid()
    lock.release()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    write_lock(tmp_path, host="another-node")
    before = (tmp_path / LOCK_NAME).read_text()
    with pytest.raises(FolderLocked, match=r"on another-node .*never taken over"):
        acquire(tmp_path)
    assert (tmp_path / LOCK_NAME).read_text() == before


def test_sweep_existing_must_be_a_known_choice_and_overwrite_only_empties_sweep_folders(
    tmp_path,
):
    with pytest.raises(ConfigError, match=r"sweep_existing='again' is invalid: expected one of"):
        claim_sweep_folder(tmp_path / "new", "again")
    assert not (tmp_path / "new").exists()
    (tmp_path / "notes.txt").write_text("mine")  # a folder no sweep made
    with pytest.raises(FolderRefused, match=r"no multirun\.yaml"):
        claim_sweep_folder(tmp_path, "overwrite")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_failed_job_restarting_removes_only_the_files_a_run_writes(tmp_path):
    from omegaconf import OmegaConf

    from convae.config.schema import TrainConfig

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "events.out.tfevents.1.host.1.0").write_bytes(b"old")
    (tmp_path / "results.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    (tmp_path / "notes.txt").write_text("mine")
    assert prepare_run_folder(OmegaConf.structured(TrainConfig), tmp_path, in_sweep=True) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# -- real convae-train processes ---------------------------------------------------------


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory) -> dict:
    """Sweep A (``data.root=x/y,x_y``) frozen while it holds its sweep folder; sweep B
    started into the same folder meanwhile; then A let go."""
    cwd = tmp_path_factory.mktemp("sweeps")
    folder = cwd / "sweep"
    a = [str(BIN / "convae-train"), "-m", *SWEEP, "data.root=x/y,x_y", f"hydra.sweep.dir={folder}"]
    first = frozen_while_holding(a, cwd, folder)
    try:
        before = snapshot(folder)  # A may or may not have written multirun.yaml yet
        second = run_script("convae-train", "-m", *SWEEP, "seed=0,1", f"hydra.sweep.dir={folder}",
                            cwd=cwd, check=False)  # fmt: skip
        during = snapshot(folder)
    finally:
        rc, output = thaw(first)
    return {"cwd": cwd, "folder": folder, "first": (first.pid, rc, output), "second": second,
            "before": before, "during": during}  # fmt: skip


@pytest.mark.slow
def test_a_sweep_into_a_running_sweeps_folder_is_refused_and_the_first_completes(two_sweeps):
    pid, rc, output = two_sweeps["first"]
    second, folder = two_sweeps["second"], two_sweeps["folder"]
    assert second.returncode != 0
    (line,) = second.stderr.strip().splitlines()
    assert f"sweep folder in use by pid {pid} on {socket.gethostname()}" in line
    assert LOCK_NAME in two_sweeps["before"] and not any("/" in k for k in two_sweeps["before"])
    assert two_sweeps["during"] == two_sweeps["before"]  # B wrote nothing: no job, no yaml
    assert rc == 0, output
    jobs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert [results(folder / j)["status"] for j in jobs] == ["completed", "completed"]
    assert [results(folder / j)["config"]["seed"] for j in jobs] == [0, 0]  # A's, not B's
    assert not (folder / LOCK_NAME).exists()  # released at the end of the sweep


@pytest.mark.slow
def test_two_override_values_with_one_folder_name_get_two_folders_in_the_report(two_sweeps):
    folder = two_sweeps["folder"]
    jobs = read_sweep(folder)
    assert sorted(j.folder.name for j in jobs)[0] == "root=x_y"
    assert sorted(j.folder.name for j in jobs)[1].startswith("root=x_y~")
    assert sorted(j.results["config"]["data"]["root"] for j in jobs) == ["x/y", "x_y"]
    assert [j.status for j in jobs] == ["completed", "completed"]  # none "not started"


@pytest.mark.slow
def test_a_used_sweep_folder_needs_continue_or_overwrite(two_sweeps, tmp_path):
    import shutil

    folder = tmp_path / "sweep"
    shutil.copytree(two_sweeps["folder"], folder)
    again = ["-m", *SWEEP, "data.root=x/y,x_y", f"hydra.sweep.dir={folder}"]
    before = snapshot(folder)

    refused = run_script("convae-train", *again, cwd=tmp_path, check=False)
    assert refused.returncode != 0
    (line,) = refused.stderr.strip().splitlines()
    assert f"hydra.sweep.dir={folder} is not empty" in line and "sweep_existing=" in line
    assert snapshot(folder) == before

    # One job crashed: continue skips the completed one, starts the crashed one afresh.
    done, crashed = folder / "root=x_y", next(folder.glob("root=x_y~*"))
    old_events = {p.name for p in crashed.glob("events.out.tfevents.*")}
    (crashed / "results.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    run_script("convae-train", *again, "sweep_existing=continue", cwd=tmp_path)
    mine = f"{done.name}/"
    assert {k: v for k, v in snapshot(folder).items() if k.startswith(mine)} == {
        k: v for k, v in before.items() if k.startswith(mine)
    }  # results.json, events and checkpoints of the completed job: byte for byte
    assert results(crashed)["status"] == "completed"
    assert not (crashed / "failed_resume.json").exists()
    new_events = {p.name for p in crashed.glob("events.out.tfevents.*")}
    assert new_events and not new_events & old_events  # started clean, nothing appended
    assert [j.status for j in read_sweep(folder)] == ["completed", "completed"]

    run_script("convae-train", "-m", *SWEEP, "seed=0,1", f"hydra.sweep.dir={folder}",
               "sweep_existing=overwrite", cwd=tmp_path)  # fmt: skip
    names = sorted(p.name for p in folder.iterdir())
    record = [n for n in names if n.endswith(".convae-sweep")]  # the new sweep's HPARAMS record
    assert len(record) == 1 and names == sorted([*record, "multirun.yaml", "seed=0", "seed=1"])


@pytest.mark.slow
def test_two_resumes_of_one_run_at_once_one_is_refused_and_a_stale_lock_is_taken_over(
    tmp_path,
):
    # The straight 8-step run, in a folder whose lock a killed process left behind.
    straight = tmp_path / "straight"
    write_lock(straight)
    proc = run_script("convae-train", *RESUME, "trainer.max_steps=8",
                      f"hydra.run.dir={straight}", cwd=tmp_path)  # fmt: skip
    assert "taking over the stale lock of pid" in proc.stdout + proc.stderr
    assert not (straight / LOCK_NAME).exists()

    run = tmp_path / "run"
    run_script("convae-train", *RESUME, "trainer.max_steps=4", f"hydra.run.dir={run}",
               cwd=tmp_path)  # fmt: skip
    command = [str(BIN / "convae-train"), *RESUME, "trainer.max_steps=8", f"resume={run}"]
    first = frozen_while_holding(command, tmp_path, run)
    try:
        before = snapshot(run)
        second = run_script("convae-train", *RESUME, "trainer.max_steps=8", f"resume={run}",
                            cwd=tmp_path, check=False)  # fmt: skip
        after = snapshot(run)
    finally:
        rc, output = thaw(first)
    assert second.returncode != 0
    (line,) = second.stderr.strip().splitlines()
    assert f"{run}: run folder in use by pid {first.pid} on {socket.gethostname()}" in line
    assert after == before  # no results.json, failed_resume.json or events from it
    assert rc == 0, output
    assert results(run)["global_step"] == results(straight)["global_step"] == 8
    assert results(run)["metrics"] == results(straight)["metrics"]
