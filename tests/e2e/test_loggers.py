"""The logger group on real runs: tensorboard_csv (the default) writes a metrics.csv that
holds the same numbers as the event files; csv alone trains without TensorBoard;
tensorboard alone writes no CSV; mlflow records the same numbers in a local MLflow store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import events, results, run_script, scalars, train

pytestmark = pytest.mark.slow  # convae-train in a subprocess

SHORT = ["trainer.max_steps=4", "trainer.val_check_interval=2", "test=false"]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def column(rows: list[dict[str, str]], tag: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[tag])) for r in rows if r.get(tag)]


def test_tensorboard_csv_writes_the_event_files_numbers_to_metrics_csv(tmp_path: Path) -> None:
    _, run_dir = train(tmp_path, *SHORT)
    rows = csv_rows(run_dir)
    acc = events(run_dir)
    for tag in ("train/loss", "val/loss", "val/psnr", "val/cb2_incoh"):
        got = column(rows, tag)
        assert [s for s, _ in got] == [s for s, _ in scalars(acc, tag)], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in scalars(acc, tag)], rel=1e-6)
    assert column(rows, "val/loss")[0][0] == 0  # the untrained model's validation too


def test_logger_csv_trains_without_tensorboard(tmp_path: Path) -> None:
    _, run_dir = train(tmp_path, *SHORT, "logger=csv")
    assert results(run_dir)["status"] == "completed"
    assert not list(run_dir.glob("events.out.tfevents.*"))
    assert len(column(csv_rows(run_dir), "val/loss")) == 3  # step 0, then 2 validations


def test_logger_tensorboard_writes_no_csv(tmp_path: Path) -> None:
    _, run_dir = train(tmp_path, *SHORT, "logger=tensorboard")
    assert results(run_dir)["status"] == "completed"
    assert not (run_dir / "metrics.csv").exists()
    assert scalars(events(run_dir), "val/loss")


def test_logger_mlflow_records_params_curves_and_results_of_parallel_jobs_in_one_store(
    tmp_path: Path,
) -> None:
    """Two joblib jobs at once open the new store together (one creates it, under a lock)."""
    pytest.importorskip("mlflow", reason="the optional extra convae[mlflow]")
    from mlflow.tracking import MlflowClient

    run_script("convae-train", "-m", "hydra/launcher=joblib", "logger=mlflow", "seed=0,1",
               "model.upsample=transposed", "data.source=bundled", "threads=1",
               "trainer.enable_progress_bar=false", *SHORT, cwd=tmp_path)  # fmt: skip
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")  # the default
    experiment = client.get_experiment_by_name("convae")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    jobs = sorted((tmp_path / "outputs" / "multirun").glob("*/*/seed=*"))
    assert sorted(runs) == [j.name for j in jobs] == ["seed=0", "seed=1"]
    for job in jobs:
        run = runs[job.name]
        assert run.info.run_id == (job / "mlflow_run_id").read_text().strip()
        assert run.info.status == "FINISHED"
        assert run.data.tags["convae.run_dir"] == str(job.resolve())
        assert run.data.params["model.upsample"] == "transposed"
        assert run.data.params["seed"] == job.name.removeprefix("seed=")
        assert "callbacks.checkpoint_mode" not in run.data.params  # plumbing, as in HPARAMS
        for tag in ("train/loss", "val/loss", "val/cb2_incoh"):
            history = client.get_metric_history(run.info.run_id, tag)
            got = sorted((m.step, m.value) for m in history)
            want = column(csv_rows(job), tag)
            assert [s for s, _ in got] == [s for s, _ in want], tag
            assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), tag
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["results.json"]
        assert results(job)["status"] == "completed"
