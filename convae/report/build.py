"""convae-report's work: reads the sweeps, writes the report files (the command line is
convae/report/cli.py).

A partial sweep still gets a report: of the jobs that completed, with the others listed by
their state (failed, interrupted, unfinished, unreadable, not started), and every file that
could not be read named in one line (a warning on stderr, and in report.md). With no job
completed, report.md and report.csv list the jobs and the command exits 1 with one line;
an output folder that cannot be written is one line and exit 2, and nothing is replaced.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from convae.config.convert import flatten
from convae.config.schema import PLUMBING_KEYS
from convae.metrics.catalogue import DEFAULT_CURVES
from convae.report.curves import curves_figure, curves_frame
from convae.report.evals import shown_eval_metrics
from convae.report.figures import RECON_DIGITS, reconstructions_figure
from convae.report.labels import Dimension, dimensions, short_labels
from convae.report.panels import figure_axes, metric_panels
from convae.report.sweeps import (
    JOB_COLUMNS,
    RUN_COLUMNS,
    SOURCE_USED,
    SWEEP,
    BadFile,
    ReportError,
    jobs_frame,
    one_line,
    read_sweep,
    sweep_labels,
    sweep_overrides,
)
from convae.report.tables import (
    LATEX,
    MARKDOWN,
    SEED,
    display_table,
    metric_names,
    metric_order,
    rules,
    summarise,
    to_latex,
    to_markdown,
    varying_keys,
)
from convae.report.tensorboard import write_report_images
from convae.runs.results import write_atomic


@dataclass
class Report:
    """What build_report did: the files it wrote, the jobs by state and the files it could
    not read."""

    paths: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    bad_files: list[BadFile] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.counts.get("completed", 0)

    def tally(self) -> str:
        return ", ".join(f"{n} {state}" for state, n in self.counts.items())


def _problem_lines(frame: pd.DataFrame) -> list[str]:
    problems = frame[frame["status"] != "completed"]
    lines = []
    for _, row in problems.iterrows():
        job = row["job"] if len(frame["sweep"].unique()) == 1 else f"{row['sweep']}/{row['job']}"
        error = " ".join(str(row["error"]).split()) or "(no error recorded)"
        lines.append(f"- **{row['status']}** `{job}`: {error}")
    return lines


def _shown(path: Path, sweeps: Sequence[Path]) -> str:
    """A file named relative to its sweep (with the sweep when the report has several)."""
    for sweep in sweeps:
        if path.is_relative_to(sweep):
            inside = path.relative_to(sweep)
            return str(inside) if len(sweeps) == 1 else str(sweep / inside)
    return str(path)


def _bad_file_lines(bad_files: Sequence[BadFile], sweeps: Sequence[Path]) -> list[str]:
    if not bad_files:
        return []
    lines = [f"- `{_shown(b.path, sweeps)}`: {' '.join(b.reason.split())}" for b in bad_files]
    return ["## Unreadable files", "", *lines, ""]


def _header(sweeps: Sequence[Path], frame: pd.DataFrame) -> list[str]:
    counts = frame["status"].value_counts()
    parts = ["# convae sweep report", ""]
    labels = sweep_labels(sweeps) if len(sweeps) > 1 else {}
    for sweep in sweeps:
        overrides = " ".join(sweep_overrides(sweep))
        label = f" (column sweep: `{labels[str(sweep)]}`)" if labels else ""
        parts.append(
            f"- sweep `{sweep}`{label}" + (f": `convae-train -m {overrides}`" if overrides else "")
        )
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    return [*parts, f"- jobs: {len(frame)} ({tally})", ""]


def jobs_list_report(
    sweeps: Sequence[Path], frame: pd.DataFrame, bad_files: Sequence[BadFile] = ()
) -> str:
    """report.md of sweeps where no job completed: the jobs by state, the unreadable files."""
    parts = _header(sweeps, frame)
    parts += ["No job completed: there is nothing to tabulate or draw.", ""]
    parts += ["## Failed or unfinished jobs", "", *_problem_lines(frame), ""]
    parts += _bad_file_lines(bad_files, sweeps)
    return "\n".join(parts)


def markdown_report(
    sweeps: Sequence[Path],
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str],
    recon_notes: Sequence[str],
    bad_files: Sequence[BadFile] = (),
) -> str:
    parts = _header(sweeps, frame)
    grouped = ", ".join(f"`{k}`" for k in keys) or "nothing (one configuration)"
    parts += [f"Configurations differ in {grouped}. {rules(MARKDOWN)}", ""]
    table = display_table(summary, keys, metrics, MARKDOWN)
    parts.append(to_markdown(table) if len(summary) else "No completed job.\n")
    parts += _eval_section(summary, keys)
    problems = _problem_lines(frame)
    if problems:
        parts += ["## Failed or unfinished jobs", "", *problems, ""]
    parts += _bad_file_lines(bad_files, sweeps)
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


def _eval_section(summary: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The jobs' convae-eval numbers per input noise level, when they were scored."""
    present = [c.removeprefix("mean:") for c in summary.columns if c.startswith("mean:")]
    shown = shown_eval_metrics(present)
    if not shown:
        return []
    table = display_table(summary, keys, shown, MARKDOWN)
    return [
        "## Input noise (convae-eval)",
        "",
        "The test split with Gaussian noise of each std added to the inputs (targets clean), "
        "from each job's eval/eval.json (cells as above; every metric of every level is in "
        "report.csv).",
        "",
        to_markdown(table),
    ]


def build_report(
    sweeps: Sequence[Path],
    out: Path,
    wanted: Sequence[str] | None,
    curve_tags: Sequence[str] = DEFAULT_CURVES,
    report: Report | None = None,
) -> list[Path]:
    """Read the sweeps, write the report files into ``out``; returns their paths. With no
    job completed, writes only the list of jobs (report.md, report.csv). ``report``, when
    given, is filled in as it goes: the jobs by state and the files that could not be read
    (so the caller can name them even when writing fails)."""
    report = Report() if report is None else report
    sweeps = list(dict.fromkeys(sweeps))  # a folder given twice is read once
    jobs = [job for sweep in sweeps for job in read_sweep(sweep)]
    report.bad_files += [bad for job in jobs for bad in job.bad_files]
    frame = jobs_frame(jobs, sweeps)
    report.counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
    config_keys = sorted(
        ({k for j in jobs for k in flatten(j.config)} - set(PLUMBING_KEYS)) | {SOURCE_USED}
    )
    all_metrics = sorted({m for j in jobs for m in j.metrics}, key=metric_order)
    csv_keys = varying_keys(frame, config_keys)
    if SEED in frame and SEED not in csv_keys:
        csv_keys.append(SEED)
    run_columns = [c for c in RUN_COLUMNS if c in frame]
    csv = frame[[*JOB_COLUMNS, *csv_keys, *run_columns, *all_metrics]]
    completed = frame[frame["status"] == "completed"].copy()
    if report.completed:  # a --metrics that names nothing is refused before any write
        metrics = metric_names([m for m in all_metrics if completed[m].notna().any()], wanted)
    writable_folder(out)  # before the slow part: checkpoints, data, event files
    if not report.completed:
        outputs = {
            "report.md": jobs_list_report(sweeps, frame, report.bad_files),
            "report.csv": csv.to_csv(index=False),
        }
        report.paths = write_all(out, outputs)
        return report.paths

    table_keys = [k for k in varying_keys(completed, config_keys) if k != SEED]
    if len(sweeps) > 1:  # never pooled: a configuration of each sweep is a row of its own
        completed[SWEEP] = completed[SWEEP].map(sweep_labels(sweeps))
        table_keys.insert(0, SWEEP)
    for key in table_keys:  # a key absent from some configs is a value of its own
        completed[key] = completed[key].map(lambda v: "–" if _missing(v) else v)
    evals = shown_eval_metrics([m for m in all_metrics if completed[m].notna().any()])
    summary = summarise(completed, table_keys, [*metrics, *(e for e in evals if e not in metrics)])

    jobs_by_path = {str(j.folder): j for j in jobs}
    # several sweeps: the sweep is a dimension of its own, drawn after the swept keys
    by_sweep = [Dimension(SWEEP, tuple(summary[SWEEP]))] if len(sweeps) > 1 else []
    dims = dimensions(summary, jobs_by_path, table_keys[len(by_sweep) :], by_sweep)
    summary["label"] = short_labels(dims, len(summary))
    recon_png, recon_notes = reconstructions_figure(summary, jobs_by_path)
    tex_table = display_table(summary, table_keys, metrics, LATEX)
    curves = curves_frame(summary, curve_tags, report.bad_files)
    markdown = markdown_report(
        sweeps, frame, summary, table_keys, metrics, recon_notes, report.bad_files
    )
    outputs = {
        "report.md": markdown,
        "report.csv": csv.to_csv(index=False),
        "report.tex": to_latex(tex_table, len(metrics), rules(LATEX)),
        "report.png": metric_panels(summary, completed, metrics, dims),
        "reconstructions.png": recon_png,
        "curves.csv": curves.to_csv(index=False),
        "curves.png": curves_figure(curves, curve_tags, curve_groups(summary, dims)),
    }
    report.paths = write_all(out, outputs)
    # the figures again, as images of a "report" run in each sweep folder: convae-board shows them
    report.paths += write_report_images(sweeps, outputs)
    return report.paths


def _cannot_write(out: Path, err: OSError) -> ReportError:
    err = getattr(err, "os_error", err)  # convae.runs.results.RunFileError: the system's reason
    return ReportError(
        f"cannot write the report in {out}: {one_line(err)}; nothing was written "
        "(--out names another folder)"
    )


def writable_folder(out: Path) -> None:
    """``out`` made if missing, and checked to take new files: one line (ReportError) when
    not, before anything of the report is written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".convae-report.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise _cannot_write(out, err) from None


def write_all(out: Path, outputs: Mapping[str, str | bytes]) -> list[Path]:
    """Every file first written in full under a temporary name (write_atomic), then all
    renamed: a failure (no space, a folder turned read-only) leaves the previous report as
    it was and no temporary file, and is one line (ReportError)."""
    staged: dict[Path, Path] = {}
    try:
        for name, data in outputs.items():
            temp = out / f".{name}.{os.getpid()}.tmp"
            write_atomic(temp, data)
            staged[out / name] = temp
    except OSError as err:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
        raise _cannot_write(out, err) from None
    done: list[Path] = []
    try:
        for path, temp in staged.items():
            os.replace(temp, path)
            done.append(path)
    except OSError as err:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
        written = ", ".join(p.name for p in done) or "none"
        raise ReportError(
            f"cannot write the report in {out}: {one_line(getattr(err, 'os_error', err))}; "
            f"replaced only {written} of the report's files"
        ) from None
    return done


def curve_groups(summary: pd.DataFrame, dims: Sequence[Dimension]) -> dict[str, tuple[str, str]]:
    """Configuration -> (line colour, panel) for curves.png: colour for the first swept key
    (the decoder), a panel per combination of the others."""
    x, colour, panel = figure_axes(dims, len(summary))
    panels = [" · ".join(p for p in parts if p) for parts in zip(colour, panel, strict=True)]
    return dict(zip(summary["configuration"], zip(x, panels, strict=True), strict=True))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
