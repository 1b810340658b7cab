"""convae-report on partial sweeps (issue #27, item 7): a report of whatever completed, the
other jobs listed by state, every bad file (results.json, metrics.csv, event file) named in
one line, exit 1 with one line when nothing completed, exit 2 with one line when the output
folder cannot be written. One real 3-job sweep (a 5-step job and two that fail validation)
and one real sweep whose jobs all fail, made once for the module; each case damages a copy."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers import read_only, run_script

from convae.report import build
from convae.report.sweeps import ReportError

COMMON = [
    "data.source=bundled",
    "trainer.max_steps=5",
    "trainer.val_check_interval=2",
    "threads=1",
    "trainer.enable_progress_bar=false",
    "callbacks.artifact_images_every=0",
]
FIGURES = ("report.tex", "report.png", "reconstructions.png", "curves.csv", "curves.png")
GOOD, FAILED, NOT_STARTED = "noise_std=0", "noise_std=-1", "noise_std=-2"  # job folders


def run(name: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(name, *map(str, args), cwd=cwd, check=False, OMP_NUM_THREADS="1")


def sweep(cwd: Path, *overrides: str) -> Path:
    # ~sweep_preflight: failing jobs, not a sweep refused up front (convae/sweeps/preflight.py)
    proc = run("convae-train", "-m", *COMMON, "~hydra.callbacks.sweep_preflight", *overrides,
               cwd=cwd)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # a job failed, as meant
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


def report(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    proc = run("convae-report", *args, cwd=cwd)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    return proc


def warnings(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("convae-report: warning: ")]


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    """stderr less the warnings: the one-line error, if any."""
    return [ln for ln in proc.stderr.splitlines() if ln and ln not in warnings(proc)]


def copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def listed(text: str) -> list[str]:
    """The '- **state** `job`: ...' lines of report.md."""
    return [ln for ln in text.splitlines() if ln.startswith("- **")]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """data.noise_std=0,-1,-2: the first completes (5 steps), the others fail validation."""
    return sweep(tmp_path_factory.mktemp("mixed"), "data.noise_std=0,-1,-2")


@pytest.fixture(scope="module")
def all_failed(tmp_path_factory) -> Path:
    return sweep(tmp_path_factory.mktemp("all_failed"), "data.noise_std=-1,-2")


@pytest.fixture(scope="module")
def baseline(mixed, tmp_path_factory) -> Path:
    """The report of the undamaged mixed sweep, in a folder of its own."""
    out = tmp_path_factory.mktemp("baseline")
    proc = report(mixed, "--out", out, cwd=out)
    assert proc.returncode == 0 and not warnings(proc), proc.stderr
    return out


def assert_curves_as_baseline(out: Path, baseline: Path) -> None:
    got, expected = pd.read_csv(out / "curves.csv"), pd.read_csv(baseline / "curves.csv")
    assert len(expected) and set(expected["tag"]) == {"val/loss", "val/grid"}
    pd.testing.assert_frame_equal(got, expected, rtol=1e-6)


# --- (a) nothing completed: the list, exit 1, one line ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", ["every job failed", "the completed job's results.json is bad"])
def test_with_no_job_completed_the_jobs_are_listed_and_the_exit_is_1_in_one_line(
    case, mixed, all_failed, tmp_path
):
    folder = all_failed
    if case != "every job failed":
        folder = copy(mixed, tmp_path / "sweep")
        (folder / GOOD / "results.json").write_text("[]")
    out = tmp_path / "report"
    proc = report(folder, "--out", out, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = errors(proc)
    assert line.startswith("convae-report: error: no job completed (") and "report.md" in line
    text = (out / "report.md").read_text()
    states = {ln.split("`")[1]: ln.split("**")[1] for ln in listed(text)}
    rows = list(csv.DictReader((out / "report.csv").open()))
    if case == "every job failed":
        assert states == {FAILED: "failed", NOT_STARTED: "failed"}
        assert "data.noise_std=-1.0 is invalid" in text and "data.noise_std=-2.0 is invalid" in text
        assert not warnings(proc)
    else:
        assert states == {GOOD: "unreadable", FAILED: "failed", NOT_STARTED: "failed"}
        (warned,) = warnings(proc)
        assert warned == (
            f"convae-report: warning: {folder / GOOD / 'results.json'}: holds a list, not an "
            "object; job listed as unreadable"
        )
    assert sorted(r["job"] for r in rows) == sorted(states)
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.md"]


# --- (b) a results.json of the wrong shape: named, its job listed unreadable ---------------


SHAPES = {
    "a list": lambda r: [r],
    "metrics a list": lambda r: {**r, "metrics": list(r["metrics"].items())},
    "config a string": lambda r: {**r, "config": "model: x"},
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_a_results_json_of_the_wrong_shape_is_named_and_the_rest_reported(shape, mixed, tmp_path):
    folder = copy(mixed, tmp_path / "sweep")
    bad = copy(folder / GOOD, folder / "copied")  # the same job again, its results.json bad
    results = json.loads((bad / "results.json").read_text())
    (bad / "results.json").write_text(json.dumps(SHAPES[shape](results)))
    proc = report(folder, "--out", tmp_path / "report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (warned,) = warnings(proc)
    assert warned.startswith(f"convae-report: warning: {bad / 'results.json'}: ")
    text = (tmp_path / "report" / "report.md").read_text()
    tally = text.split("- jobs: 4 (")[1].split(")")[0]
    assert sorted(tally.split(", ")) == ["1 completed", "1 unreadable", "2 failed"]
    assert next(ln for ln in listed(text) if "`copied`" in ln).startswith("- **unreadable**")
    assert "## Unreadable files" in text and "`copied/results.json`" in text
    table = [ln for ln in text.splitlines() if ln.startswith("| all jobs |")]
    assert len(table) == 1 and table[0].startswith("| all jobs | 1 |")  # n = 1: GOOD alone


# --- (c), (d) metrics.csv empty or unparseable: named, curves from the event files ---------


CSVS = {
    "empty": b"",
    "unterminated quote": b'step,val/loss\n0,0.5\n"1,0.4\n',
    "ragged rows": b"step,val/loss\n0,0.5\n1,0.4,9,9\n",
    "not text": bytes(range(256)) * 4,
}


@pytest.mark.slow
@pytest.mark.parametrize("content", CSVS)
def test_a_bad_metrics_csv_is_named_and_the_curves_come_from_the_event_files(
    content, mixed, baseline, tmp_path
):
    folder = copy(mixed, tmp_path / "sweep")
    bad = folder / GOOD / "metrics.csv"
    bad.write_bytes(CSVS[content])
    proc = report(folder, "--out", tmp_path / "report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (warned,) = warnings(proc)
    assert warned.startswith(f"convae-report: warning: {bad}: ")
    assert warned.endswith("curves from its event files instead")
    if content == "empty":
        assert "empty file" in warned
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"`{GOOD}/metrics.csv`" in text.split("## Unreadable files")[1]
    assert_curves_as_baseline(tmp_path / "report", baseline)


# --- (e) an output folder that takes no files: one line, exit 2, nothing written ----------


@pytest.mark.slow
def test_a_read_only_out_folder_is_one_line_and_exit_2(mixed, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    with read_only(out):
        proc = report(mixed, "--out", out, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"convae-report: error: cannot write the report in {out}: ")
    assert not list(out.iterdir())


@pytest.mark.slow
def test_a_read_only_sweep_folder_as_default_out_is_left_as_it_was(mixed, tmp_path):
    folder = copy(mixed, tmp_path / "sweep")
    before = snapshot(folder)
    with read_only(folder):
        proc = report(folder, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = errors(proc)
    assert f"cannot write the report in {folder}: " in line and "--out" in line
    assert snapshot(folder) == before


def test_a_write_that_fails_midway_leaves_the_previous_report_and_no_temporary_file(
    tmp_path, monkeypatch
):
    old = {"report.md": "old md\n", "report.csv": "old,csv\n", "report.png": b"old png"}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    written = []

    def write_atomic(path, data):  # the third file finds the disk full
        if len(written) == 2:
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    monkeypatch.setattr(build, "write_atomic", write_atomic)
    new = {"report.md": "new md\n", "report.csv": "new,csv\n", "report.png": b"new png"}
    with pytest.raises(ReportError, match="No space left on device; nothing was written"):
        build.write_all(tmp_path, new)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        n: d if isinstance(d, bytes) else d.encode() for n, d in old.items()
    }


# --- (f) damaged TensorBoard event files: each named in one line ------------------------


@pytest.mark.slow
def test_damaged_event_files_are_each_named_in_one_line(mixed, tmp_path):
    folder = copy(mixed, tmp_path / "sweep")
    (folder / GOOD / "metrics.csv").unlink()  # the curves come from the event files
    first, *_, last = sorted((folder / GOOD).glob("events.out.tfevents.*"))
    data = bytearray(first.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16  # a record in the middle
    first.write_bytes(bytes(data))
    last.write_bytes(last.read_bytes()[:-7])  # cut short, as a killed writer leaves it
    proc = report(folder, "--out", tmp_path / "report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = warnings(proc)
    assert len(got) == 2, proc.stderr
    assert got[0].startswith(f"convae-report: warning: {first}: ")
    assert got[1].startswith(f"convae-report: warning: {last}: cut short at byte ")
    text = (tmp_path / "report" / "report.md").read_text().split("## Unreadable files")[1]
    assert f"`{GOOD}/{first.name}`" in text and f"`{GOOD}/{last.name}`" in text
    curves = pd.read_csv(tmp_path / "report" / "curves.csv")
    assert (curves["tag"] == "val/loss").any()  # what could be read is still drawn


# --- (g) a mix: a report of what completed, the rest listed by state -------------------


@pytest.mark.slow
def test_a_mixed_sweep_reports_what_completed_and_lists_every_other_job_by_state(
    mixed, baseline, tmp_path
):
    folder = copy(mixed, tmp_path / "sweep")
    shutil.rmtree(folder / NOT_STARTED)  # multirun.yaml still asks for it
    stopped = copy(folder / GOOD, folder / "stopped")
    results = json.loads((stopped / "results.json").read_text())
    resume = f"convae-train resume={stopped}"
    results.update(status="interrupted", global_step=3, resume=resume)
    (stopped / "results.json").write_text(json.dumps(results))
    garbled = copy(folder / GOOD, folder / "garbled")
    (garbled / "results.json").write_bytes(b'{"status": "completed", "metr')
    out = tmp_path / "report"
    proc = report(folder, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (warned,) = warnings(proc)
    assert warned.startswith(f"convae-report: warning: {garbled / 'results.json'}: cannot be read")
    assert errors(proc) == [] and "report.md" in proc.stdout
    text = (out / "report.md").read_text()
    states = {ln.split("`")[1]: ln.split("**")[1] for ln in listed(text)}
    assert states == {
        FAILED: "failed",
        NOT_STARTED: "not started",
        "stopped": "interrupted",
        "garbled": "unreadable",
    }
    assert f"stopped at step 3; resume with `{resume}`" in text
    assert "- jobs: 5 (" in text and "1 completed" in text
    expected_table = [ln for ln in (baseline / "report.md").read_text().splitlines() if "|" in ln]
    assert [ln for ln in text.splitlines() if "|" in ln] == expected_table
    for name in FIGURES:
        assert (out / name).stat().st_size > 0, name
    assert_curves_as_baseline(out, baseline)
    rows = {r["job"]: r["status"] for r in csv.DictReader((out / "report.csv").open())}
    assert rows == {GOOD: "completed", **states}
