"""convae-eval's eval.json read into the report's metrics."""

from __future__ import annotations

import json
import os

from convae.report.evals import eval_metrics, shown_eval_metrics


def _job(tmp_path, levels):
    (tmp_path / "eval").mkdir()
    (tmp_path / "results.json").write_text(json.dumps({"status": "completed"}))
    (tmp_path / "eval" / "eval.json").write_text(json.dumps({"levels": levels}))
    return tmp_path


def test_every_level_becomes_a_metric_named_by_its_noise_std(tmp_path):
    job = _job(tmp_path, [{"noise_std": 0.0, "psnr": 20.0, "grid": 1e-3},
                          {"noise_std": 0.5, "psnr": 15.0, "grid": 2e-3}])  # fmt: skip
    metrics, problem = eval_metrics(job)
    assert problem is None
    assert metrics == {"eval@0/psnr": 20.0, "eval@0/grid": 1e-3,
                       "eval@0.5/psnr": 15.0, "eval@0.5/grid": 2e-3}  # fmt: skip
    assert shown_eval_metrics(list(metrics)) == [
        "eval@0/psnr", "eval@0.5/psnr", "eval@0/grid", "eval@0.5/grid"]  # fmt: skip


def test_an_eval_older_than_the_runs_results_is_left_out_and_named(tmp_path):
    job = _job(tmp_path, [{"noise_std": 0.0, "psnr": 20.0}])
    stamp = (job / "eval" / "eval.json").stat().st_mtime
    os.utime(job / "results.json", (stamp + 10, stamp + 10))  # the run went on training
    metrics, problem = eval_metrics(job)
    assert metrics == {} and "older than results.json" in problem


def test_no_eval_is_no_metric_and_no_problem(tmp_path):
    assert eval_metrics(tmp_path) == ({}, None)
