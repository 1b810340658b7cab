"""convae-report's tables for a paper (issue #31, item 4): significant figures set by the std,
one notation per column, no spread for one seed, bold only for a best beyond the seeds'
spread, booktabs named in the .tex, and several sweeps never pooled. Sweep folders are
written by hand (results.json only): the table logic is all these tests exercise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from convae.report import cli
from convae.report.numbers import column, std_decimals
from convae.report.tables import LATEX, MARKDOWN, clear_best_mask, display_table, to_latex

METRICS = ("test/loss", "test/psnr", "test/cb2_incoh", "test/hf_tail_db")


def write_sweep(folder: Path, values: dict[str, list[dict[str, float]]]) -> Path:
    """A sweep folder of completed jobs: per model.upsample value, one job per seed with
    the metrics given."""
    for upsample, seeds in values.items():
        for seed, metrics in enumerate(seeds):
            job = folder / f"model.upsample={upsample},seed={seed}"
            job.mkdir(parents=True)
            results = {
                "status": "completed",
                "params": 4385,
                "config": {"model": {"upsample": upsample}, "seed": seed},
                "metrics": metrics,
                "overrides": [f"model.upsample={upsample}", f"seed={seed}"],
            }
            (job / "results.json").write_text(json.dumps(results))
    return folder


def jobs(loss: float, psnr: float, incoh: float, tail: float, seeds: int, jitter: float = 1.0):
    """``seeds`` jobs around the values given (a spread of ~1% times ``jitter``)."""
    spread = [0.0, 1.0, -1.0, 0.5][:seeds]
    return [
        {
            "test/loss": loss * (1 + 0.01 * jitter * d),
            "test/psnr": psnr + 0.3 * jitter * d,
            "test/cb2_incoh": incoh * (1 + 0.1 * jitter * d),
            "test/hf_tail_db": tail + 0.4 * jitter * d,
        }
        for d in spread
    ]


def md_rows(report_md: Path) -> list[dict[str, str]]:
    lines = [ln for ln in report_md.read_text().splitlines() if ln.startswith("| ")]
    header, *rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [dict(zip(header, row, strict=True)) for row in rows]


def report(tmp_path: Path, *sweeps: Path) -> Path:
    out = tmp_path / "report"
    assert cli.main([*map(str, sweeps), "--out", str(out), "--metrics", ",".join(METRICS)]) == 0
    return out


def test_cells_are_rounded_to_the_first_significant_digit_of_their_std() -> None:
    rule = column([10.8, 12.345], [0.038, 0.0096])
    assert rule.cell(10.8, 0.038, " ± ", "–") == "10.80 ± 0.04"
    assert rule.cell(12.345, 0.0096, " ± ", "–") == "12.35 ± 0.01"  # 0.0096 rounds to 0.01
    assert rule.cell(0.5, math.nan, " ± ", "–") == "0.50"  # n = 1: the column's std decimals
    assert std_decimals(0.096) == 1 and std_decimals(23.0) == -1 and std_decimals(0.0) is None
    assert column([1234.5], [23.0]).cell(1234.5, 23.0, " ± ", "–") == "1230 ± 20"
    # one notation per column: small values in units of one power of ten, named in the header
    small = column([0.0001896, 7.108e-05], [2.3e-05, 1.1e-05])
    assert small.exponent == -4
    assert small.cell(0.0001896, 2.3e-05, " ± ", "–") == "1.9 ± 0.2"
    assert small.cell(7.108e-05, 1.1e-05, " ± ", "–") == "0.7 ± 0.1"
    # no spread anywhere in the column: three significant digits of its largest value
    alone = column([17.16, 15.31], [math.nan, math.nan])
    assert [alone.cell(m, math.nan, " ± ", "–") for m in (17.16, 15.31)] == ["17.2", "15.3"]
    assert alone.cell(math.nan, math.nan, " ± ", "–") == "–"
    assert column([-0.001], [0.1]).cell(-0.001, 0.1, " ± ", "–") == "0.0 ± 0.1"  # no "-0.0"


def test_bold_goes_to_the_catalogued_best_only_beyond_the_seeds_spread() -> None:
    means = pd.Series([0.10, 0.12, 0.30])
    assert list(clear_best_mask(means, pd.Series([0.005, 0.005, 0.01]), "test/loss")) == [
        True, False, False,
    ]  # fmt: skip
    # 0.10 ± 0.015 and 0.12 ± 0.01 overlap: nothing is claimed
    assert not clear_best_mask(means, pd.Series([0.015, 0.01, 0.01]), "test/loss").any()
    # the direction is the catalogue's: highest PSNR, hf_tail_db closest to 0
    assert list(clear_best_mask(means, pd.Series([0.001] * 3), "test/psnr")) == [
        False, False, True,
    ]  # fmt: skip
    tails = pd.Series([-9.0, -0.5, 3.0])
    assert list(clear_best_mask(tails, pd.Series([0.1] * 3), "test/hf_tail_db")) == [
        False, True, False,
    ]  # fmt: skip
    # one seed: no spread, never the clear best; a metric without a direction: never
    assert not clear_best_mask(means, pd.Series([math.nan] * 3), "test/loss").any()
    assert not clear_best_mask(means, pd.Series([0.001] * 3), "test/unknown").any()


def test_a_one_seed_sweep_prints_means_without_a_spread(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "one", {
        "nearest": jobs(0.1184, 17.16, 3.596e-05, -4.156, seeds=1),
        "transposed": jobs(0.3584, 15.31, 0.000273, -1.819, seeds=1),
    })  # fmt: skip
    out = report(tmp_path, sweep)
    text = (out / "report.md").read_text() + (out / "report.tex").read_text()
    assert "± –" not in text and "$\\pm$ --" not in text
    rows = md_rows(out / "report.md")
    assert [r["test/loss"] for r in rows] == ["0.118", "0.358"]
    assert [r["test/cb2_incoh (×10⁻⁴)"] for r in rows] == ["0.36", "2.73"]
    assert not any("**" in cell for r in rows for cell in r.values())  # no spread: no bold


def test_the_table_rounds_by_the_std_bolds_clear_bests_and_writes_booktabs(tmp_path) -> None:
    sweep = write_sweep(tmp_path / "three", {
        "nearest": jobs(0.12, 17.3, 4e-05, -3.9, seeds=3),
        # hf_tail_db nearest 0, but within its spread of nearest's: not bold
        "transposed": jobs(0.36, 14.9, 0.00027, -3.5, seeds=3, jitter=2),
    })  # fmt: skip
    out = report(tmp_path, sweep)
    nearest, transposed = md_rows(out / "report.md")
    assert nearest["test/loss"] == "**0.120 ± 0.001**"
    assert transposed["test/psnr"] == "14.9 ± 0.6"
    assert nearest["test/cb2_incoh (×10⁻⁴)"] == "**0.40 ± 0.04**"
    assert transposed["test/hf_tail_db"] == "-3.5 ± 0.8" and "**" not in nearest["test/hf_tail_db"]
    tex = (out / "report.tex").read_text()
    assert tex.startswith("% ") and "\\usepackage{booktabs}" in tex.splitlines()[0]
    for rule in ("\\toprule", "\\midrule", "\\bottomrule", "\\textbf{0.120 $\\pm$ 0.001}"):
        assert rule in tex
    assert "test/cb2\\_incoh ($\\times 10^{-4}$)" in tex
    assert "$-$3.5 $\\pm$ 0.8" in tex
    assert "beats every other configuration" in tex  # the bold rule is in the caption
    text = (out / "report.md").read_text()
    assert "the mean rounded to the std's first significant digit" in text


def test_two_sweeps_keep_a_label_column_and_are_never_pooled(tmp_path: Path) -> None:
    a = write_sweep(tmp_path / "2026-01-01" / "10-00-00", {
        "nearest": jobs(0.12, 17.3, 4e-05, -3.9, seeds=3),
        "transposed": jobs(0.36, 14.9, 0.00027, -1.7, seeds=3),
    })  # fmt: skip
    b = write_sweep(tmp_path / "2026-01-02" / "10-00-00", {
        "nearest": jobs(0.15, 16.5, 6e-05, -3.6, seeds=2),
    })  # fmt: skip
    out = report(tmp_path, a, b)
    rows = md_rows(out / "report.md")
    labels = ["2026-01-01/10-00-00", "2026-01-01/10-00-00", "2026-01-02/10-00-00"]
    assert [r["sweep"] for r in rows] == labels
    assert [(r["model.upsample"], r["n"]) for r in rows] == [
        ("nearest", "3"), ("transposed", "3"), ("nearest", "2"),
    ]  # fmt: skip
    text = (out / "report.md").read_text()
    assert f"- sweep `{a}` (column sweep: `{labels[0]}`)" in text
    assert "sweep & model.upsample & n" in (out / "report.tex").read_text()
    # a sweep given twice is one sweep
    rows = md_rows(report(tmp_path / "again", a, a) / "report.md")
    assert [r["n"] for r in rows] == ["3", "3"] and "sweep" not in rows[0]


def test_text_cells_and_headers_are_escaped_for_latex() -> None:
    summary = pd.DataFrame({
        "model.up_sample": ["a_b", "50%"], "n": [2, 2], "params": [1.0, math.nan],
        "mean:test/loss": [0.1, 0.2], "std:test/loss": [0.01, 0.01],
    })  # fmt: skip
    table = display_table(summary, ["model.up_sample"], ["test/loss"], LATEX)
    tex = to_latex(table, 1, "caption")
    assert "model.up\\_sample & n & params & test/loss \\\\" in tex
    assert "a\\_b & 2 & 1 &" in tex and "50\\% & 2 & -- &" in tex
    assert "\\begin{tabular}{lllr}" in tex
    markdown = display_table(summary, ["model.up_sample"], ["test/loss"], MARKDOWN)
    assert list(markdown["test/loss"]) == ["**0.10 ± 0.01**", "0.20 ± 0.01"]
