"""convae-eval end to end: a real tiny training run, then the real console script."""

import json
import math
from pathlib import Path

import pytest
from helpers import results, run_script
from PIL import Image

from convae.training.evaluation import LABEL_PX, PAD, ZOOM

pytestmark = pytest.mark.slow

# 60 steps (3 epochs of the bundled digits) at a higher lr: after 25 steps (lr 1e-3 to 2e-2)
# the default model still outputs a near-constant image, whose loss does not grow with noise.
TRAIN = ("data.source=bundled", "trainer.max_steps=60", "optim.lr=0.005", "threads=1")
METRICS = {"loss", "psnr", "ssim", "cb2_incoh", "cb4_incoh", "cb2_ratio", "hf_tail_db",
           "grid", "grid_p2", "grid_p4", "grid_p8"}  # fmt: skip
ENV = {"OMP_NUM_THREADS": "1"}


def evaluate(cwd: Path, *args: str, check: bool = True):
    return run_script("convae-eval", *args, "threads=1", cwd=cwd, check=check, **ENV)


def grid_size(digits: int, rows: int) -> tuple[int, int]:
    """(width, height) of the figure: a label column, then tiles with PAD-pixel gaps."""
    tile = 28 + PAD
    return LABEL_PX + ZOOM * (digits * tile + PAD), ZOOM * (rows * tile + PAD)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("train")
    run_script("convae-train", *TRAIN, "trainer.enable_progress_bar=false", cwd=cwd, **ENV)
    (run,) = (cwd / "outputs" / "runs").glob("*/*")
    return run


@pytest.fixture(scope="module")
def folder_eval(run_dir, tmp_path_factory) -> tuple[dict, tuple[int, int], list[str]]:
    """eval.json, the PNG's size and the launch folder's contents after ckpt=<run folder>."""
    cwd = tmp_path_factory.mktemp("eval")
    evaluate(cwd, f"ckpt={run_dir}")
    out = run_dir / "eval"
    with Image.open(out / "eval.png") as png:
        size = png.size
    return json.loads((out / "eval.json").read_text()), size, sorted(p.name for p in cwd.iterdir())


def test_run_folder_gives_every_metric_at_every_noise_level(folder_eval, run_dir):
    report, _, launch_dir = folder_eval
    assert [lv["noise_std"] for lv in report["levels"]] == [0, 0.25, 0.5, 0.75]
    for level in report["levels"]:
        assert set(level) == METRICS | {"noise_std"}
        assert all(math.isfinite(v) for v in level.values()), level
    assert Path(report["checkpoint"]).parent == Path("checkpoints")  # relative to the run
    assert Path(report["checkpoint"]).name.startswith("best-")  # a folder picks the best
    assert report["data_source"] == "bundled" and report["train_noise_std"] == 0.0
    assert report["test_images"] == 500
    assert launch_dir == []  # nothing written where convae-eval was started


def test_loss_grows_and_psnr_falls_with_noise(folder_eval):
    levels = folder_eval[0]["levels"]
    losses = [lv["loss"] for lv in levels]
    assert losses == sorted(losses) and len(set(losses)) == len(losses), losses
    assert levels[0]["psnr"] > levels[-1]["psnr"] and levels[0]["ssim"] > levels[-1]["ssim"]


def test_clean_level_reproduces_the_training_runs_test_metrics(folder_eval, run_dir):
    """Same best checkpoint, same clean test split: convae-train's test/* numbers."""
    clean = folder_eval[0]["levels"][0]
    assert results(run_dir)["best_checkpoint"] == folder_eval[0]["checkpoint"]
    for name in METRICS:
        assert clean[name] == pytest.approx(results(run_dir)["metrics"][f"test/{name}"], rel=1e-4)


def test_figure_is_ten_digits_wide_with_two_rows_per_level(folder_eval):
    assert folder_eval[1] == grid_size(digits=10, rows=2 * 4)


def test_checkpoint_file_works_and_noise_is_the_same_in_every_call(folder_eval, run_dir, tmp_path):
    """Noise is keyed by its level alone: one level and another batch size give the same
    numbers as the default call; eval.json keeps the earlier call's other levels."""
    best = run_dir / folder_eval[0]["checkpoint"]
    evaluate(
        tmp_path, f"ckpt={best}", "eval.noise_stds=[0.5]", "eval.digits=4", "eval.batch_size=64"
    )
    out = run_dir / "eval"
    report = json.loads((out / "eval.json").read_text())
    assert report["checkpoint"] == folder_eval[0]["checkpoint"]
    earlier = folder_eval[0]["levels"]
    assert [lv["noise_std"] for lv in report["levels"]] == [lv["noise_std"] for lv in earlier]
    (level,) = [lv for lv in report["levels"] if lv["noise_std"] == 0.5]  # scored again
    assert level == pytest.approx(earlier[2], rel=1e-5)
    with Image.open(out / "eval.png") as png:
        assert png.size == grid_size(digits=4, rows=2)
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())  # atomic writes cleaned up


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ckpt=no/such/run",), "ckpt='no/such/run' is invalid: no such checkpoint"),
        ((), "ckpt is missing"),
    ],
)
def test_missing_checkpoint_fails_in_one_line(tmp_path, args, expected):
    proc = evaluate(tmp_path, *args, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.splitlines()
    assert line.startswith("convae-eval: error: ") and expected in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_folder_scores_every_completed_job_and_the_report_shows_it(run_dir, tmp_path):
    import shutil

    sweep = tmp_path / "sweep"
    good, broken, failed = (sweep / f"upsample=nearest,seed={s}" for s in (0, 1, 2))
    for job in (good, broken, failed):
        shutil.copytree(run_dir, job, ignore=shutil.ignore_patterns("eval"))
    shutil.rmtree(broken / "checkpoints")  # completed, but nothing left to score
    (failed / "results.json").write_text(json.dumps({"status": "failed", "error": "boom"}))

    proc = evaluate(tmp_path, f"ckpt={sweep}", "eval.noise_stds=[0,0.5]", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("convae-eval: error: 1 of 3 jobs failed: upsample=nearest,seed=1")
    assert "not completed, left out: upsample=nearest,seed=2 (failed)" in proc.stdout
    levels = json.loads((good / "eval" / "eval.json").read_text())["levels"]
    assert [lv["noise_std"] for lv in levels] == [0, 0.5]
    assert not (broken / "eval").exists() and not (failed / "eval").exists()

    run_script("convae-report", str(sweep), "--out", str(tmp_path / "report"), cwd=tmp_path)
    text = (tmp_path / "report" / "report.md").read_text()
    section = text.split("## Input noise (convae-eval)")[1].split("##")[0]
    assert "eval@0/psnr" in section and "eval@0.5/psnr" in section and "eval@0.5/grid" in section
    header = (tmp_path / "report" / "report.csv").read_text().splitlines()[0].split(",")
    assert {"eval@0/loss", "eval@0.5/ssim", "eval@0.5/grid_p2"} <= set(header)
