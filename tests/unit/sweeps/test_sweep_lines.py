"""The console's line per sweep job and the closing table (convae/sweeps/lines.py)."""

from __future__ import annotations

import json
from pathlib import Path

from convae.sweeps.lines import JobOutcome, job_line, read_outcome, summary_table

METRICS = {"val/loss": 0.2, "test/loss": 0.1321, "test/psnr": 17.14, "test/grid": 0.0041,
           "test/ssim": 0.8}  # fmt: skip


def job(root: Path, name: str, results: dict | None) -> Path:
    folder = root / name
    folder.mkdir()
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_a_completed_job_line_names_it_its_state_key_test_metrics_and_time(tmp_path):
    done = job(tmp_path, "upsample=transposed",
               {"status": "completed", "metrics": METRICS, "wall_time_s": 31.2})  # fmt: skip
    assert job_line(read_outcome(done), 2, 2) == (
        "[2/2] upsample=transposed  completed  test/loss 0.132  test/psnr 17.1  "
        "test/grid 4.10e-03  31 s"
    )


def test_an_untested_job_shows_its_validation_metrics(tmp_path):
    done = job(tmp_path, "seed=0", {"status": "completed", "metrics": {"val/loss": 0.25}})
    assert read_outcome(done).metrics == {"val/loss": 0.25}


def test_failed_and_interrupted_jobs_show_their_state_and_one_line_error(tmp_path):
    failed = job(tmp_path, "data.noise_std=-1",
                 {"status": "failed", "error": "data.noise_std=-1.0 is invalid: ..."})  # fmt: skip
    stopped = job(tmp_path, "seed=1", {"status": "interrupted", "global_step": 20,
                                       "train_time_s": 130.0})  # fmt: skip
    assert job_line(read_outcome(failed, seconds=0.4), 1) == (
        "[1] data.noise_std=-1  failed  0 s  data.noise_std=-1.0 is invalid: ..."
    )
    assert job_line(read_outcome(stopped)) == "seed=1  interrupted at step 20  2.2 min"


def test_the_table_has_a_row_per_job_with_aligned_columns_and_a_count(tmp_path):
    outcomes = [
        read_outcome(job(tmp_path, "upsample=nearest", {"status": "completed",
                                                        "metrics": METRICS, "wall_time_s": 5})),
        read_outcome(job(tmp_path, "upsample=transposed", {"status": "failed", "error": "x"})),
        JobOutcome("upsample=bilinear", "not started"),
    ]  # fmt: skip
    assert summary_table(outcomes) == [
        "3 jobs: 1 completed, 2 did not",
        "job                  state        test/loss  test/psnr  test/grid  time",
        "upsample=nearest     completed    0.132      17.1       4.10e-03   5 s",
        "upsample=transposed  failed       -          -          -          -",
        "upsample=bilinear    not started  -          -          -          -",
    ]
    assert summary_table([]) == []


def test_a_failed_sweep_prints_its_table_once_before_its_error_line(tmp_path, monkeypatch, capsys):
    from convae.sweeps import console, summary

    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    job(sweep_dir, "seed=0", {"status": "completed", "metrics": METRICS, "wall_time_s": 5})
    job(sweep_dir, "seed=1", {"status": "failed", "error": "boom"})
    monkeypatch.setattr(summary, "_sweep_folders", [sweep_dir])
    monkeypatch.setattr(summary, "_not_started", ["seed=2"])
    monkeypatch.setattr(console, "_tabled", set())
    # run_cli adds what closing_lines returns to the error line, printed after the table
    assert console.closing_lines() == (
        " [2 of 3 jobs did not complete: seed=1 (failed), seed=2 (not started)]"
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3 jobs: 1 completed, 2 did not"
    assert [row.split()[:2] for row in out[2:5]] == [
        ["seed=0", "completed"], ["seed=1", "failed"], ["seed=2", "not"]]  # fmt: skip
    assert out[-1] == f"Sweep folder: {sweep_dir}"
    console.closing_lines()
    assert capsys.readouterr().out == ""  # once per sweep
