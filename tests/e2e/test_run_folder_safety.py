"""Nothing in a run folder can make convae write outside it, and a refused command changes
nothing (issue #27, parts 2, 4 and 5): a symlinked lock, metrics.csv, train.log or eval/
is refused in one line and its target left as it was; a recorded checkpoint path that
leads out of the run is refused; a command refused for a busy or completed folder leaves
it byte for byte as it was (.hydra/ included); a folder holding files with convae's names
but no convae run is refused unless replace_unknown_files=true."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from helpers import results, run_script, train

from convae.runs.lock import LOCK_NAME, FolderRefused, acquire, read_holder

QUICK = ("callbacks.artifact_images_every=0", "callbacks.latent_space=false", "test=false")
VICTIM_TEXT = "precious\n"


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's sha256, a link's target, a folder's mark."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                seen[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                seen[rel] = "dir"
            else:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def victim(tmp_path: Path, name: str = "victim.txt") -> Path:
    path = tmp_path / name
    path.write_text(VICTIM_TEXT)
    old = time.time() - 3600  # older than a lock being written: a "stale" one
    os.utime(path, (old, old))
    return path


def error_line(proc, prog: str = "convae-train") -> str:
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: "), proc.stderr
    return line


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A completed 6-step run, never written to by the tests (they copy it)."""
    cwd = tmp_path_factory.mktemp("finished")
    _, run_dir = train(cwd, "trainer.max_steps=6", *QUICK)
    return run_dir


def copy_run(run_dir: Path, dst: Path) -> Path:
    return Path(shutil.copytree(run_dir, dst, symlinks=True))


# --- the lock ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "directory"])
def test_a_lock_that_is_not_a_regular_file_is_refused_and_never_written(tmp_path, kind):
    folder = tmp_path / "run"
    folder.mkdir()
    target = victim(tmp_path)
    if kind == "symlink":
        (folder / LOCK_NAME).symlink_to(target)
    elif kind == "dangling symlink":
        (folder / LOCK_NAME).symlink_to(tmp_path / "created_through_the_link")
    else:
        (folder / LOCK_NAME).mkdir()
    with pytest.raises(FolderRefused, match="not a convae lock"):
        acquire(folder)
    assert target.read_text() == VICTIM_TEXT
    assert not (tmp_path / "created_through_the_link").exists()
    assert read_holder(folder) is None


@pytest.mark.slow
def test_resume_refuses_a_symlinked_lock_and_leaves_its_target(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    target = victim(tmp_path)
    (run_dir / LOCK_NAME).symlink_to(target)
    proc, _ = train(tmp_path, f"resume={run_dir}", "trainer.max_steps=8", check=False)
    line = error_line(proc)
    assert LOCK_NAME in line and "symbolic link" in line
    assert target.read_text() == VICTIM_TEXT


@pytest.mark.slow
def test_a_continued_sweep_refuses_symlinked_sweep_and_job_locks(tmp_path):
    sweep = tmp_path / "sweep"
    common = ["data.source=bundled", "threads=1", "trainer.enable_progress_bar=false", *QUICK,
              "trainer.max_steps=2", f"hydra.sweep.dir={sweep}", "seed=0,1"]  # fmt: skip
    run_script("convae-train", "-m", *common, cwd=tmp_path)
    (sweep / "seed=1" / "results.json").unlink()  # as if killed: continue would resume it
    for where in (sweep, sweep / "seed=1"):
        target = victim(tmp_path, f"victim_{where.name}.txt")
        (where / LOCK_NAME).symlink_to(target)
        before = snapshot(sweep)
        proc = run_script("convae-train", "-m", *common, "sweep_existing=continue",
                          cwd=tmp_path, check=False)  # fmt: skip
        line = error_line(proc)
        assert "symbolic link" in line and str(where / LOCK_NAME) in line, line
        assert target.read_text() == VICTIM_TEXT and snapshot(sweep) == before
        (where / LOCK_NAME).unlink()


# --- links to files a run writes -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["metrics.csv", "train.log", "checkpoints"])
def test_a_run_folder_with_a_link_inside_is_refused_and_the_target_kept(finished, tmp_path, name):
    run_dir = copy_run(finished, tmp_path / "run")
    (run_dir / "results.json").unlink()  # unfinished: a run into it would resume and write
    target = victim(tmp_path) if name != "checkpoints" else tmp_path / "elsewhere"
    if name == "checkpoints":
        shutil.move(run_dir / "checkpoints", target)
    else:
        (run_dir / name).unlink()
    (run_dir / name).symlink_to(target)
    before = snapshot(run_dir)
    outside = snapshot(target) if name == "checkpoints" else None
    proc, _ = train(tmp_path, "trainer.max_steps=8", *QUICK, f"hydra.run.dir={run_dir}",
                    check=False)  # fmt: skip
    line = error_line(proc)
    assert "symbolic link" in line and str(run_dir / name) in line
    assert snapshot(run_dir) == before
    if name == "checkpoints":
        assert snapshot(target) == outside
    else:
        assert target.read_text() == VICTIM_TEXT


@pytest.mark.slow
def test_convae_eval_refuses_a_symlinked_eval_folder(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run_dir / "eval").symlink_to(elsewhere)
    proc = run_script("convae-eval", f"ckpt={run_dir}", "threads=1", "eval.noise_stds=[0]",
                      cwd=tmp_path, check=False)  # fmt: skip
    line = error_line(proc, "convae-eval")
    assert "symbolic link" in line and str(run_dir / "eval") in line
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_a_recorded_checkpoint_outside_the_run_is_refused(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    outside = tmp_path / "outside.ckpt"
    shutil.copy(run_dir / "checkpoints" / "last.ckpt", outside)
    record = results(run_dir)
    record["best_checkpoint"] = "../outside.ckpt"
    (run_dir / "results.json").write_text(json.dumps(record))
    proc = run_script("convae-eval", f"ckpt={run_dir}", "threads=1", "eval.noise_stds=[0]",
                      cwd=tmp_path, check=False)  # fmt: skip
    line = error_line(proc, "convae-eval")
    assert "outside the run folder" in line and "../outside.ckpt" in line
    assert not (run_dir / "eval").exists()


# --- a refused command changes nothing ---------------------------------------------------


@pytest.mark.slow
def test_a_run_refused_for_a_completed_folder_leaves_it_byte_for_byte(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    before = snapshot(run_dir)
    proc, _ = train(tmp_path, "trainer.max_steps=9", "seed=3", f"hydra.run.dir={run_dir}",
                    check=False)  # fmt: skip
    assert "holds a completed run" in error_line(proc)
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_commands_refused_for_a_busy_folder_leave_it_byte_for_byte(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    lock = acquire(run_dir)  # a live writer: this test process
    try:
        before = snapshot(run_dir)
        for args in ([f"hydra.run.dir={run_dir}", "seed=3"], [f"resume={run_dir}"]):
            proc, _ = train(tmp_path, "trainer.max_steps=9", *args, check=False)
            assert "in use by" in error_line(proc)
            assert snapshot(run_dir) == before  # no .hydra/ rewritten, no resume-* folder
    finally:
        lock.release()


@pytest.mark.slow
def test_a_resume_keeps_the_first_record_and_adds_its_own(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    first = (run_dir / ".hydra" / "overrides.yaml").read_bytes()
    train(tmp_path, f"resume={run_dir}", "trainer.max_steps=8")
    assert (run_dir / ".hydra" / "overrides.yaml").read_bytes() == first
    (resumed,) = (run_dir / ".hydra").glob("resume-*")
    assert "trainer.max_steps=8" in (resumed / "overrides.yaml").read_text()
    assert {p.name for p in resumed.iterdir()} == {"config.yaml", "hydra.yaml", "overrides.yaml"}


# --- only convae's own files are replaced ------------------------------------------------


def users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "model.pt").write_text("my weights")
    (folder / "eval").mkdir()
    (folder / "eval" / "notes.txt").write_text("my notes")
    (folder / "metrics.csv").write_text("a,b\n1,2\n")
    (folder / "results.json").write_text('{"accuracy": 0.9}')
    return folder


@pytest.mark.slow
def test_a_folder_with_no_convae_run_is_refused_and_kept(tmp_path):
    folder = users_folder(tmp_path)
    before = snapshot(folder)
    proc, _ = train(tmp_path, "trainer.max_steps=2", *QUICK, f"hydra.run.dir={folder}",
                    check=False)  # fmt: skip
    line = error_line(proc)
    assert "no convae run" in line and "replace_unknown_files=true" in line
    assert snapshot(folder) == before


@pytest.mark.slow
def test_replace_unknown_files_lets_a_run_take_such_a_folder(tmp_path):
    folder = users_folder(tmp_path)
    train(tmp_path, "trainer.max_steps=2", *QUICK, f"hydra.run.dir={folder}",
          "replace_unknown_files=true")  # fmt: skip
    assert results(folder)["status"] == "completed"
    assert not (folder / "eval").exists() and not (folder / "checkpoints" / "model.pt").exists()
