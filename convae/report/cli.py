"""The convae-report command: reads the sweeps, writes the five report files."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from convae.config import PLUMBING_KEYS, flatten
from convae.report.curves import DEFAULT_CURVES, curves_figure, curves_frame
from convae.report.figures import RECON_DIGITS, reconstructions_figure
from convae.report.labels import Dimension, dimensions, short_labels
from convae.report.panels import figure_axes, metric_panels
from convae.report.sweeps import (
    JOB_COLUMNS,
    RUN_COLUMNS,
    SOURCE_USED,
    ReportError,
    jobs_frame,
    read_sweep,
    sweep_overrides,
)
from convae.report.tables import (
    SEED,
    display_table,
    metric_names,
    metric_order,
    summarise,
    to_latex,
    to_markdown,
    varying_keys,
)
from convae.results import write_atomic

PROG = "convae-report"


def _problem_lines(frame: pd.DataFrame) -> list[str]:
    problems = frame[frame["status"] != "completed"]
    lines = []
    for _, row in problems.iterrows():
        job = row["job"] if len(frame["sweep"].unique()) == 1 else f"{row['sweep']}/{row['job']}"
        error = " ".join(str(row["error"]).split()) or "(no error recorded)"
        lines.append(f"- **{row['status']}** `{job}`: {error}")
    return lines


def markdown_report(
    sweeps: Sequence[Path],
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str],
    recon_notes: Sequence[str],
) -> str:
    counts = frame["status"].value_counts()
    parts = ["# convae sweep report", ""]
    for sweep in sweeps:
        overrides = " ".join(sweep_overrides(sweep))
        parts.append(
            f"- sweep `{sweep}`" + (f": `convae-train -m {overrides}`" if overrides else "")
        )
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    parts += [f"- jobs: {len(frame)} ({tally})", ""]
    grouped = ", ".join(f"`{k}`" for k in keys) or "nothing (one configuration)"
    parts += [
        f"Configurations differ in {grouped}. Each cell is mean ± sample std (ddof=1) over the "
        "n completed seeds; – when n = 1. Bold: best per column (lowest loss and checkerboard "
        "scores, highest PSNR/SSIM, hf_tail_db closest to 0).",
        "",
    ]
    table = display_table(summary, keys, metrics, bold=lambda c: f"**{c}**")
    parts.append(to_markdown(table) if len(summary) else "No completed job.\n")
    problems = _problem_lines(frame)
    if problems:
        parts += ["## Failed or unfinished jobs", "", *problems, ""]
    parts += ["## Figures", "", "![metrics](report.png)", ""]
    parts += [
        "![learning curves](curves.png)\n\nLearning curves, mean ± std over seeds "
        "(values per step: curves.csv).",
        "",
    ]
    parts += [
        f"![reconstructions](reconstructions.png)\n\nReconstructions of the first {RECON_DIGITS} "
        "test images by the lowest seed of each configuration.",
        "",
    ]
    if recon_notes:
        parts += ["Left out of reconstructions.png:", "", *[f"- {n}" for n in recon_notes], ""]
    return "\n".join(parts)


def build_report(
    sweeps: Sequence[Path],
    out: Path,
    wanted: Sequence[str] | None,
    curve_tags: Sequence[str] = DEFAULT_CURVES,
) -> list[Path]:
    """Read the sweeps, write the report files into ``out``; returns their paths."""
    jobs = [job for sweep in sweeps for job in read_sweep(sweep)]
    frame = jobs_frame(jobs, sweeps)
    config_keys = sorted(
        ({k for j in jobs for k in flatten(j.config)} - set(PLUMBING_KEYS)) | {SOURCE_USED}
    )
    completed = frame[frame["status"] == "completed"].copy()
    all_metrics = sorted({m for j in jobs for m in j.metrics}, key=metric_order)
    metrics = metric_names(
        [m for m in all_metrics if completed[m].notna().any()] if len(completed) else [], wanted
    )
    table_keys = [k for k in varying_keys(completed, config_keys) if k != SEED]
    for key in table_keys:  # a key absent from some configs is a value of its own
        completed[key] = completed[key].map(lambda v: "–" if _missing(v) else v)
    csv_keys = varying_keys(frame, config_keys)
    if SEED in frame and SEED not in csv_keys:
        csv_keys.append(SEED)
    summary = summarise(completed, table_keys, metrics)

    jobs_by_path = {str(j.folder): j for j in jobs}
    dims = dimensions(summary, jobs_by_path, table_keys)
    summary["label"] = short_labels(dims, len(summary))
    recon_png, recon_notes = reconstructions_figure(summary, jobs_by_path)
    run_columns = [c for c in RUN_COLUMNS if c in frame]
    csv = frame[[*JOB_COLUMNS, *csv_keys, *run_columns, *all_metrics]]
    tex_table = display_table(
        summary, table_keys, metrics, bold=lambda c: f"\\textbf{{{c}}}", pm=" $\\pm$ ", dash="--"
    )
    caption = "Mean $\\pm$ sample std over seeds; best per column in bold."
    curves = curves_frame(summary, curve_tags)
    outputs = {
        "report.md": markdown_report(sweeps, frame, summary, table_keys, metrics, recon_notes),
        "report.csv": csv.to_csv(index=False),
        "report.tex": to_latex(tex_table, metrics, caption),
        "report.png": metric_panels(summary, completed, metrics, dims),
        "reconstructions.png": recon_png,
        "curves.csv": curves.to_csv(index=False),
        "curves.png": curves_figure(curves, curve_tags, curve_groups(summary, dims)),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in outputs.items():
        write_atomic(out / name, data)
        paths.append(out / name)
    return paths


def curve_groups(summary: pd.DataFrame, dims: Sequence[Dimension]) -> dict[str, tuple[str, str]]:
    """Configuration -> (line colour, panel) for curves.png: colour for the first swept key
    (the decoder), a panel per combination of the others."""
    x, colour, panel = figure_axes(dims, len(summary))
    panels = [" · ".join(p for p in parts if p) for parts in zip(colour, panel, strict=True)]
    return dict(zip(summary["configuration"], zip(x, panels, strict=True), strict=True))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Summarise convae-train sweeps: mean ± std over seeds per configuration.",
    )
    parser.add_argument(
        "sweeps", nargs="+", type=Path, help="sweep folder(s): outputs/multirun/<date>/<time>"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: the first sweep)")
    parser.add_argument(
        "--metrics",
        action="extend",
        type=lambda text: [m for m in text.split(",") if m],
        metavar="M[,M...]",
        help="metric columns to show, in this order; globs allowed, e.g. 'test/*,val/loss'; "
        "'all': every val/*, test/* and test_clean/* metric (default: test loss, psnr, ssim, "
        "cb2_incoh, hf_tail_db)",
    )
    parser.add_argument(
        "--curves",
        action="extend",
        type=lambda text: [t for t in text.split(",") if t],
        metavar="TAG[,TAG...]",
        help=f"scalar tags drawn against step in curves.png (default: {','.join(DEFAULT_CURVES)})",
    )
    args = parser.parse_args(argv)
    try:
        paths = build_report(
            args.sweeps, args.out or args.sweeps[0], args.metrics, args.curves or DEFAULT_CURVES
        )
    except ReportError as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(f"{PROG}: wrote {', '.join(str(p) for p in paths)}")
    return 0
