"""convae-report on a real sweep: a 2x2 convae-train sweep (upsample x seed, 5 steps each),
plus a sweep whose only job fails validation, run once for the module."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers import events, run_script, scalars
from matplotlib.image import imread

from convae.report.figures import ZOOM
from convae.report.labels import dimensions, short_labels
from convae.report.panels import COLUMN_IN, figure_axes
from convae.report.sweeps import Job
from convae.report.tables import best_mask, clear_best_mask, metric_names

OUTPUTS = (
    "report.md",
    "report.csv",
    "report.tex",
    "report.png",
    "reconstructions.png",
    "curves.csv",
    "curves.png",
)
COMMON = [
    "data.source=bundled",
    "trainer.max_steps=5",
    "trainer.val_check_interval=2",  # validations at steps 0, 2 and 4: a curve
    "threads=1",
    "trainer.enable_progress_bar=false",
]


def run(name: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(name, *map(str, args), cwd=cwd, check=False, OMP_NUM_THREADS="1")


def sweep(cwd: Path, *overrides: str, ok: bool = True) -> Path:
    proc = run("convae-train", "-m", *COMMON, *overrides, cwd=cwd)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


def report(*args: str | Path, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = run("convae-report", *args, cwd=cwd)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def job_results(folder: Path) -> dict[str, dict]:
    """Each job folder's name and its results.json."""
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/results.json")}


def md_table(text: str) -> pd.DataFrame:
    """The first markdown table of report.md, cells as text."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    assert set(lines[1]) <= {"|", "-"}, lines[1]
    end = next((i for i, ln in enumerate(lines[2:], 2) if not ln.startswith("| ")), len(lines))
    return pd.DataFrame(rows[2:end], columns=rows[0])


def parse_cell(cell: str) -> tuple[float, float, bool]:
    """(mean, std, bold) of a cell: 'mean ± std' or, for one seed, the mean alone."""
    bold = cell.startswith("**")
    mean, _, std = cell.strip("*").partition(" ± ")
    return float(mean), (float(std) if std else math.nan), bold


def metric_header(header: str) -> tuple[str, float]:
    """'test/cb2_incoh (×10⁻⁴)' -> ('test/cb2_incoh', 1e-4): the metric and the column's unit."""
    name, _, unit = header.partition(" (×10")
    power = unit.rstrip(")").translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
    return name, 10.0 ** int(power or 0)


def rounding(cell: str) -> float:
    """Half the last printed digit of a cell's std: how far its numbers may be from exact."""
    std = cell.strip("*").partition(" ± ")[2]
    return (
        0.5 * 10.0 ** -len(std.partition(".")[2])
        if "." in std
        else 0.5 * 10.0 ** (len(std) - len(std.rstrip("0")))
    )


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Path]:
    """A completed 2x2 sweep, and a sweep whose job fails (invalid data.noise_std)."""
    good = sweep(tmp_path_factory.mktemp("good"), "model.upsample=nearest,transposed", "seed=0,1")
    # a failed job: the up-front check (convae/sweeps/preflight.py) would refuse the sweep
    bad = sweep(tmp_path_factory.mktemp("bad"), "data.noise_std=-1",
                "~hydra.callbacks.sweep_preflight", ok=False)  # fmt: skip
    return {"good": good, "bad": bad}


@pytest.fixture(scope="module")
def good_report(sweeps) -> Path:
    """convae-report with its defaults: the outputs land in the sweep folder."""
    proc = report(sweeps["good"], cwd=sweeps["good"].parent)
    assert "report.md" in proc.stdout
    return sweeps["good"]


@pytest.mark.slow
def test_the_report_writes_its_files_atomically(good_report: Path) -> None:
    for name in OUTPUTS:
        assert (good_report / name).stat().st_size > 0, name
    assert not list(good_report.glob(".*.tmp")), "temporary files left behind"
    assert imread(good_report / "report.png").ndim == 3
    text = (good_report / "report.md").read_text()
    assert "- jobs: 4 (4 completed)" in text
    assert "Failed or unfinished" not in text


@pytest.mark.slow
def test_the_csv_has_one_row_of_raw_values_per_job(good_report: Path) -> None:
    rows = list(csv.DictReader((good_report / "report.csv").open()))
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"completed"}
    assert sorted((r["model.upsample"], r["seed"]) for r in rows) == [
        ("nearest", "0"),
        ("nearest", "1"),
        ("transposed", "0"),
        ("transposed", "1"),
    ]
    by_job = job_results(good_report)
    for r in rows:
        assert float(r["test/loss"]) == by_job[r["job"]]["metrics"]["test/loss"]


@pytest.mark.slow
def test_the_table_is_mean_and_sample_std_over_seeds_best_in_bold(good_report: Path) -> None:
    table = md_table((good_report / "report.md").read_text())
    assert list(table["model.upsample"]) == ["nearest", "transposed"]
    assert list(table["n"]) == ["2", "2"]
    per_config: dict[str, list[dict]] = {}
    for r in job_results(good_report).values():
        per_config.setdefault(r["config"]["model"]["upsample"], []).append(r["metrics"])
    headers = [c for c in table.columns if "/" in c]
    defaults = ("loss", "psnr", "ssim", "grid", "cb2_incoh", "hf_tail_db")
    assert [metric_header(h)[0] for h in headers] == [f"test/{m}" for m in defaults]
    for header in headers:
        metric, unit = metric_header(header)
        means, stds = {}, {}
        for _, row in table.iterrows():
            values = [r[metric] for r in per_config[row["model.upsample"]]]
            mean, std, _ = parse_cell(row[header])
            # the mean rounded to the std's first significant digit, in the column's unit
            tolerance = rounding(row[header]) * (1 + 1e-9)
            assert abs(mean * unit - statistics.mean(values)) <= tolerance * unit, header
            assert abs(std * unit - statistics.stdev(values)) <= tolerance * unit, header
            means[row["model.upsample"]] = statistics.mean(values)
            stds[row["model.upsample"]] = statistics.stdev(values)
        clear = clear_best_mask(pd.Series(means), pd.Series(stds), metric)
        bold = {row["model.upsample"]: parse_cell(row[header])[2] for _, row in table.iterrows()}
        assert bold == clear.to_dict(), metric


@pytest.mark.slow
def test_curves_are_mean_and_std_over_seeds_at_every_validation_step(good_report: Path) -> None:
    curves = pd.read_csv(good_report / "curves.csv")
    per_config: dict[str, list[dict[int, float]]] = {}
    for job in good_report.glob("*/results.json"):
        upsample = json.loads(job.read_text())["config"]["model"]["upsample"]
        per_config.setdefault(upsample, []).append(dict(scalars(events(job.parent), "val/loss")))
    loss = curves[curves["tag"] == "val/loss"]
    assert sorted(loss["configuration"].unique()) == [
        "model.upsample=nearest",
        "model.upsample=transposed",
    ]
    for (label, step), row in loss.set_index(["configuration", "step"]).iterrows():
        values = [job[step] for job in per_config[label.split("=")[1]]]
        assert row["n"] == 2
        assert row["mean"] == pytest.approx(statistics.mean(values), rel=1e-6)
        assert row["std"] == pytest.approx(statistics.stdev(values), rel=1e-6, abs=1e-12)
    steps = sorted(loss[loss["configuration"] == "model.upsample=nearest"]["step"])
    # The untrained model, then after 2 and 4 batches (logged at the last trained batch's
    # step, as Lightning logs validation scalars).
    assert steps[:3] == [0, 1, 3]
    assert set(curves["tag"]) == {"val/loss", "val/grid"}
    assert imread(good_report / "curves.png").ndim == 3
    assert "![learning curves](curves.png)" in (good_report / "report.md").read_text()


@pytest.mark.slow
def test_curves_come_from_metrics_csv_or_else_the_event_files(good_report, tmp_path) -> None:
    """The sweep ran with logger=tensorboard_csv: each source alone gives the same curves."""
    expected = pd.read_csv(good_report / "curves.csv")
    for left_out in ("events.out.tfevents.*", "metrics.csv"):
        copy = tmp_path / left_out.split(".")[0]
        shutil.copytree(good_report, copy)
        for path in copy.glob(f"*/{left_out}"):
            path.unlink()
        report(copy, "--metrics", "test/loss", cwd=tmp_path)
        got = pd.read_csv(copy / "curves.csv")
        pd.testing.assert_frame_equal(got, expected, rtol=1e-6)


@pytest.mark.slow
def test_metrics_all_shows_every_val_and_test_metric(sweeps, tmp_path: Path) -> None:
    report(sweeps["good"], "--metrics", "all", "--out", tmp_path, cwd=tmp_path)
    table = md_table((tmp_path / "report.md").read_text())
    logged = {m for r in job_results(sweeps["good"]).values() for m in r["metrics"]}
    assert {metric_header(c)[0] for c in table.columns if "/" in c} == logged
    assert len(logged) > 10  # val/ and test/ of loss, psnr, ssim and the scores


@pytest.mark.slow
def test_the_metric_figure_fits_one_paper_column(good_report: Path) -> None:
    image = imread(good_report / "report.png")
    assert image.shape[1] == round(COLUMN_IN * 200)  # 200 dpi
    assert image.shape[0] > image.shape[1]  # a row of panels per default metric


@pytest.mark.slow
def test_the_latex_table_is_booktabs_with_a_row_per_configuration(good_report: Path) -> None:
    tex = (good_report / "report.tex").read_text()
    assert "\\usepackage{booktabs}" in tex.splitlines()[0]  # named in its header comment
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "$\\pm$"):
        assert rule in tex
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0]
    assert [ln.split(" & ")[0].strip() for ln in body.strip().splitlines()] == [
        "nearest",
        "transposed",
    ]


@pytest.mark.slow
def test_reconstructions_show_every_configuration_zoomed(good_report: Path) -> None:
    image = imread(good_report / "reconstructions.png")
    rows = 3  # targets, nearest, transposed (clean data: no noisy-input rows)
    assert image.shape[0] >= rows * 28 * ZOOM
    assert image.shape[1] >= 10 * 28 * ZOOM


@pytest.mark.slow
def test_failed_job_is_listed_under_the_table(sweeps, tmp_path: Path) -> None:
    (failed,) = job_results(sweeps["bad"]).items()
    assert failed[1]["status"] == "failed"
    report(sweeps["good"], sweeps["bad"], "--out", tmp_path, cwd=tmp_path)
    text = (tmp_path / "report.md").read_text()
    table_end = text.index("## Failed or unfinished jobs")
    assert len(md_table(text)) == 2
    listed = text[table_end:]
    assert failed[0] in listed and failed[1]["error"] in listed
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert len(rows) == 5
    assert [r["data.noise_std"] for r in rows if r["status"] == "failed"] == ["-1.0"]


@pytest.mark.slow
def test_unfinished_job_is_listed_and_left_out_of_the_means(sweeps, tmp_path: Path) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweeps["good"], copy)
    killed = next(p for p in sorted(copy.iterdir()) if "transposed,seed=1" in p.name)
    (killed / "results.json").unlink()  # as a job killed mid-training leaves it
    report(copy, "--metrics", "test/loss", cwd=tmp_path)
    text = (copy / "report.md").read_text()
    table = md_table(text)
    assert [c for c in table.columns if "/" in c] == ["test/loss"]
    assert list(table["n"]) == ["2", "1"]
    assert math.isnan(parse_cell(table["test/loss"][1])[1])  # one seed: no std
    assert f"**unfinished** `{killed.name}`" in text.split("## Failed or unfinished jobs")[1]


@pytest.mark.slow
def test_a_job_resumed_with_more_overrides_is_still_the_job_the_sweep_asked_for(
    sweeps, tmp_path: Path
) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweeps["good"], copy)
    job = next(p for p in sorted(copy.iterdir()) if "transposed,seed=1" in p.name)
    steps = job_results(copy)[job.name]["global_step"] + 2
    proc = run("convae-train", f"resume='{job}'", f"trainer.max_steps={steps}", "threads=1",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"trainer.max_steps={steps}" in job_results(copy)[job.name]["overrides"]
    report(copy, "--metrics", "test/loss", cwd=tmp_path)
    text = (copy / "report.md").read_text()
    assert "jobs: 4 (4 completed)" in text and "not started" not in text


@pytest.mark.slow
def test_a_folder_without_results_is_refused_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = report(empty, cwd=tmp_path, ok=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("convae-report: error:") and "results.json" in proc.stderr
    assert not list(empty.iterdir())


def test_the_best_cell_follows_each_metrics_direction_and_metrics_keep_their_order() -> None:
    means = pd.Series([-3.0, -1.0, 2.0])
    assert list(best_mask(means, "val/loss")) == [True, False, False]
    assert list(best_mask(means, "test/psnr")) == [False, False, True]
    assert list(best_mask(means, "test/hf_tail_db")) == [False, True, False]
    assert list(best_mask(means, "test/cb2_ratio")) == [True, False, False]
    assert not best_mask(means, "test/unknown").any()
    present = ["epoch", "test/ssim", "val/psnr", "test/loss", "test/cb4_incoh"]
    assert metric_names(present, None) == ["test/loss", "test/ssim"]
    assert metric_names(present, ["all"]) == [
        "val/psnr",
        "test/loss",
        "test/ssim",
        "test/cb4_incoh",
    ]
    assert metric_names(["val/cb2_incoh", "val/loss", "val/other"], None) == [
        "val/loss",
        "val/cb2_incoh",
    ]


def test_configurations_are_named_by_their_override_values_in_sweep_order() -> None:
    grid = [
        (upsample, model, data)
        for data in ("clean", "noisy")
        for model in ("depth_16_8_8", "depth_32_32_16")
        for upsample in ("nearest", "transposed_k4")
    ]
    jobs = {
        f"job{i}": Job(Path("s"), Path(f"job{i}"), "completed", overrides=[
            f"upsample={u}", f"model={m}", f"data={d}", "seed=0", "data.noise_std=0.5"
        ])
        for i, (u, m, d) in enumerate(grid)
    }  # fmt: skip
    summary = pd.DataFrame({"_recon_path": list(jobs)})
    dims = dimensions(summary, jobs, ["model.upsample"])
    assert [d.key for d in dims] == ["upsample", "model", "data"]  # seed and the constant out
    labels = short_labels(dims, len(summary))
    assert labels[3] == "transposed_k4 · depth_32_32_16 · clean"
    x, colour, panel = figure_axes(dims, len(summary))
    assert (x[3], colour[3], panel[3]) == ("transposed_k4", "depth_32_32_16", "clean")
    # a plain key is named by its last part
    jobs["job1"].overrides.append("optim.lr=0.01")
    assert short_labels(dimensions(summary, jobs, []), 8)[1].endswith(" · lr=0.01")
