"""The logger group on real runs: tensorboard_csv (the default) writes a metrics.csv that
holds the same numbers as the event files; csv alone trains without TensorBoard;
tensorboard alone writes no CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import events, results, scalars, train

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
