"""convae-report: one sweep (or several) summarised as tables, charts and reconstructions.

Every job folder of a sweep is read: its results.json when finished, else it is listed as
unfinished, so a table never silently hides a crashed or still-running job. Jobs are grouped
by the config keys that vary across them, ``seed`` excepted, and each final metric is shown
as mean ± sample std over the seeds of a configuration.

Outputs (in ``--out``, default the first sweep folder), each written atomically:
``report.md``, ``report.csv`` (one row per job, raw values), ``report.tex`` (booktabs),
``report.png`` (bar charts with error bars) and ``reconstructions.png`` (the same test digits
reconstructed by every configuration).
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import io
import json
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convae.config import PLUMBING_KEYS, flatten
from convae.results import RESULTS, tested_checkpoint, write_atomic

PROG = "convae-report"
METRIC_PREFIXES = ("val/", "test/", "test_clean/")
SEED = "seed"
SOURCE_USED = "data.source_used"  # the source a job really read ("auto" may mean either)
JOB_COLUMNS = ["sweep", "job", "status", "error"]
RUN_COLUMNS = ["params", "wall_time_s", "global_step"]
RECON_DIGITS = 10
ZOOM = 4  # screen pixels per image pixel: enough to see period-2 checkerboards

# Which way is better, by the metric's last name part; metrics not listed get no bold.
LOWER_IS_BETTER = {"loss", "cb2_incoh", "cb4_incoh", "cb2_ratio"}
HIGHER_IS_BETTER = {"psnr", "ssim"}
CLOSEST_TO_ZERO = {"hf_tail_db"}
METRIC_ORDER = ("loss", "psnr", "ssim")


class ReportError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


# --------------------------------------------------------------------------- reading jobs


@dataclass
class Job:
    sweep: Path
    folder: Path
    status: str  # completed | failed | unfinished | not started
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _resolved(config: Any) -> dict[str, Any]:
    """Failed and unfinished jobs keep interpolations (``${...}``); resolving them where
    possible stops a key from looking as if it varied only because it was not resolved."""
    if not isinstance(config, dict):
        return {}
    from omegaconf import OmegaConf

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
    except Exception:
        return config
    return resolved if isinstance(resolved, dict) else config


def _is_job_folder(path: Path) -> bool:
    return path.is_dir() and ((path / RESULTS).is_file() or (path / ".hydra").is_dir())


def read_job(sweep: Path, folder: Path) -> Job:
    """One job folder: results.json when there, else what Hydra wrote when it started it."""
    hydra_overrides = _read_yaml(folder / ".hydra" / "overrides.yaml")
    overrides = [str(o) for o in hydra_overrides] if isinstance(hydra_overrides, list) else []
    results_path = folder / RESULTS
    if not results_path.is_file():
        config = _resolved(_read_yaml(folder / ".hydra" / "config.yaml"))
        return Job(sweep, folder, "unfinished", "no results.json", config, overrides=overrides)
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return Job(sweep, folder, "failed", f"unreadable {RESULTS}: {err}", overrides=overrides)
    status = str(results.get("status", "unknown"))
    metrics = {k: float(v) for k, v in (results.get("metrics") or {}).items()}
    return Job(
        sweep=sweep,
        folder=folder,
        status=status,
        error="" if status == "completed" else _problem(results),
        config=_resolved(results.get("config")),
        metrics=metrics,
        results=results,
        overrides=[str(o) for o in results.get("overrides") or overrides],
    )


def _problem(results: dict[str, Any]) -> str:
    """Why a job did not complete: its error, or for an interrupted one how to resume it."""
    if results.get("error"):
        return str(results["error"])
    parts = []
    if results.get("global_step") is not None:
        parts.append(f"stopped at step {results['global_step']}")
    if results.get("resume"):
        parts.append(f"resume with `{results['resume']}`")
    return "; ".join(parts)


def expected_overrides(sweep: Path) -> list[list[str]] | None:
    """The jobs a basic-sweeper sweep was asked for (from multirun.yaml), to list those that
    never got a folder; None when unknown (no multirun.yaml, or another sweeper)."""
    multirun = _read_yaml(sweep / "multirun.yaml")
    try:
        hydra_cfg = multirun["hydra"]
        sweeper = hydra_cfg.get("sweeper") or {}
        if "BasicSweeper" not in str(sweeper.get("_target_", "")):
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        task = [str(o) for o in hydra_cfg["overrides"]["task"]]
        parsed = OverridesParser.create().parse_overrides([*params, *task])
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:
        return None
    return [job for batch in batches for job in batch]


def sweep_overrides(sweep: Path) -> list[str]:
    """The command-line overrides of the sweep, to show how to run it again."""
    multirun = _read_yaml(sweep / "multirun.yaml")
    try:
        return [str(o) for o in multirun["hydra"]["overrides"]["task"]]
    except (KeyError, TypeError):
        return []


def read_sweep(sweep: Path) -> list[Job]:
    """Every job of a sweep folder (or the folder itself when it is a single run)."""
    if not sweep.is_dir():
        raise ReportError(
            f"{sweep}: no such folder" if not sweep.exists() else f"{sweep}: not a folder"
        )
    folders = sorted(p for p in sweep.iterdir() if not p.name.startswith(".") and _is_job_folder(p))
    if not folders and (sweep / RESULTS).is_file():
        folders = [sweep]
    jobs = [read_job(sweep, f) for f in folders]
    if not any((j.folder / RESULTS).is_file() for j in jobs):
        raise ReportError(
            f"{sweep}: no {RESULTS} in it or in its job folders; "
            "pass a sweep folder (outputs/multirun/<date>/<time>) with finished jobs"
        )
    expected = expected_overrides(sweep)
    if expected:
        seen = {frozenset(j.overrides) for j in jobs}
        for overrides in expected:
            if frozenset(overrides) not in seen:
                name = ",".join(sorted(overrides))
                error = "no job folder (the sweep stopped before it)"
                jobs.append(Job(sweep, sweep / name, "not started", error, overrides=overrides))
    return jobs


# --------------------------------------------------------------------------- tables


def _job_name(job: Job, sweeps: Sequence[Path]) -> tuple[str, str]:
    sweep = str(job.sweep) if len(sweeps) > 1 else job.sweep.name
    return sweep, (job.folder.name if job.folder != job.sweep else ".")


def jobs_frame(jobs: Sequence[Job], sweeps: Sequence[Path]) -> pd.DataFrame:
    """One row per job: identity, status, the flattened config, run facts, metrics."""
    rows = []
    for job in jobs:
        sweep, name = _job_name(job, sweeps)
        config = flatten(job.config) if job.config else overrides_as_values(job.overrides)
        if job.results.get("data_source") is not None:
            config[SOURCE_USED] = job.results["data_source"]
        facts = {k: job.results.get(k) for k in RUN_COLUMNS}
        row = {"sweep": sweep, "job": name, "status": job.status, "error": job.error}
        extra = {"_path": str(job.folder), "_has_config": bool(job.config)}
        rows.append({**row, **config, **facts, **job.metrics, **extra})
    return pd.DataFrame(rows, dtype=object)  # object: ints stay ints where others are missing


def overrides_as_values(overrides: Sequence[str]) -> dict[str, Any]:
    """``key=value`` overrides as typed values: what is known of a job that never started."""
    values = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key and key[0] not in "+~":
            try:
                values[key] = yaml.safe_load(value)
            except yaml.YAMLError:
                values[key] = value
    return values


def varying_keys(frame: pd.DataFrame, config_keys: Sequence[str]) -> list[str]:
    """Config keys with more than one value among the jobs whose config is known (a key
    missing from some of them counts as a value of its own)."""
    known = frame[frame["_has_config"]]
    keys = []
    for key in config_keys:
        # A job without data.source_used simply never loaded data: not a value of its own.
        values = known[key].map(_hashable) if key in known else pd.Series([])
        if values.nunique(dropna=key != SOURCE_USED) > 1:
            keys.append(key)
    return keys


def _hashable(value: Any) -> Any:
    return json.dumps(value, default=str, sort_keys=True) if isinstance(value, dict) else value


def _metric_order(name: str) -> tuple[int, int, str]:
    """val, test, test_clean (then others); loss, psnr, ssim first, then by name."""
    split, _, metric = name.partition("/")
    split_rank = next((i for i, p in enumerate(METRIC_PREFIXES) if p == f"{split}/"), 9)
    rank = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
    return split_rank, rank, name


def metric_names(present: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The metric columns to show. Default: every val/, test/ and test_clean/ metric present;
    ``wanted`` names them in the order given, globs allowed (``test/*``)."""
    present = sorted(present, key=_metric_order)
    if not wanted:
        return [m for m in present if m.startswith(METRIC_PREFIXES)]
    chosen: list[str] = []
    for pattern in wanted:
        hits = [m for m in present if fnmatch.fnmatchcase(m, pattern)]
        if not hits:
            available = ", ".join(present) or "none"
            raise ReportError(f"--metrics {pattern}: no such metric; available: {available}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _sort_key(series: pd.Series) -> pd.Series:
    """Numbers in numeric order, everything else as text (missing values last)."""
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().sum() == series.notna().sum():
        return numbers
    return series.astype(str)


def config_label(values: dict[str, Any]) -> str:
    """``key=value, ...``: how a configuration is named in figures."""
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all jobs"


def summarise(completed: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per configuration: its key values, label, n, params, and per metric the mean
    and the sample std (ddof=1; NaN for one seed); ``_paths`` lists its job folders and
    ``_recon_path`` the one with the lowest seed."""
    if keys:
        frame = completed.sort_values(list(keys), key=_sort_key, kind="stable")
        groups = frame.groupby(list(keys), sort=False, dropna=False)
    else:
        groups = completed.groupby(lambda _: 0)
    rows = []
    for _, group in groups:
        first = group.iloc[0]
        values = {k: first[k] for k in keys}
        row: dict[str, Any] = {**values, "configuration": config_label(values)}
        row["n"] = len(group)
        row["params"] = first.get("params")
        seeds = group[SEED] if SEED in group else pd.Series(range(len(group)), index=group.index)
        row["_paths"] = group["_path"].tolist()
        row["_recon_path"] = group.loc[_sort_key(seeds).idxmin(), "_path"]
        for m in metrics:
            column = pd.to_numeric(group[m], errors="coerce")
            row[f"mean:{m}"] = column.mean()
            row[f"std:{m}"] = column.std(ddof=1)
        rows.append(row)
    stats = [f"{s}:{m}" for m in metrics for s in ("mean", "std")]
    columns = [*keys, "configuration", "n", "params", "_paths", "_recon_path", *stats]
    return pd.DataFrame(rows, columns=columns)


def best_mask(means: pd.Series, metric: str) -> pd.Series:
    """True where the configuration has the best mean of ``metric`` (ties all win)."""
    name = metric.rsplit("/", 1)[-1]
    if name in LOWER_IS_BETTER:
        score = means
    elif name in HIGHER_IS_BETTER:
        score = -means
    elif name in CLOSEST_TO_ZERO:
        score = means.abs()
    else:
        return pd.Series(False, index=means.index)
    return (score == score.min()) & score.notna()


def format_cell(mean: float, std: float, pm: str = " ± ", dash: str = "–") -> str:
    """``mean ± std`` to 4 and 2 significant digits; ``dash`` for a std of one seed."""
    if pd.isna(mean):  # no job of the configuration has the metric
        return dash
    return f"{mean:.4g}{pm}{dash if pd.isna(std) else f'{std:.2g}'}"


def display_table(
    summary: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str],
    bold: Callable[[str], str],
    pm: str = " ± ",
    dash: str = "–",
) -> pd.DataFrame:
    """The aggregated table as text cells: keys, n, params, one 'mean ± std' per metric."""
    columns = list(keys) or ["configuration"]
    table = summary[columns].astype(str)
    table["n"] = summary["n"].astype(str)
    table["params"] = summary["params"].map(lambda p: dash if pd.isna(p) else f"{p:.0f}")
    for m in metrics:
        means, stds = summary[f"mean:{m}"], summary[f"std:{m}"]
        cells = [format_cell(a, b, pm, dash) for a, b in zip(means, stds, strict=True)]
        best = best_mask(means, m)
        table[m] = [bold(c) if b else c for c, b in zip(cells, best, strict=True)]
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub markdown from a frame of text cells (pandas' own to_markdown needs tabulate,
    which convae does not depend on); '|' in cells is escaped."""
    cells = table.astype(str).map(lambda s: s.replace("|", r"\|"))
    header = "| " + " | ".join(str(c).replace("|", r"\|") for c in cells.columns) + " |"
    rule = "|" + "|".join("---" for _ in cells.columns) + "|"
    body = ("| " + cells.agg(" | ".join, axis=1) + " |").tolist() if len(cells) else []
    return "\n".join([header, rule, *body]) + "\n"


def to_latex(table: pd.DataFrame, metrics: Sequence[str], caption: str) -> str:
    """A booktabs table: metric cells already hold LaTeX (\\textbf, $\\pm$); the headers and
    the configuration cells are escaped by pandas."""
    text_columns = [c for c in table.columns if c not in metrics]
    styler = (
        table.style.hide(axis="index")
        .format(escape="latex", subset=text_columns)
        .format_index(escape="latex", axis=1)
    )
    align = "l" * len(text_columns) + "r" * len(metrics)
    return styler.to_latex(
        hrules=True, column_format=align, caption=caption, position_float="centering"
    )


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def bar_charts(summary: pd.DataFrame, completed: pd.DataFrame, metrics: Sequence[str]) -> bytes:
    """One panel per metric: a bar per configuration (mean, error bar = sample std) with
    each seed's value as a dot, since a mean of two or three seeds hides their spread."""
    labels = summary["configuration"].tolist()
    cols = min(3, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / cols))
    width = max(4.0, 0.6 * len(labels) + 1.5)
    fig = _new_figure(cols * width, rows * 3.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    x = np.arange(len(labels))
    for ax, m in zip(axes, metrics, strict=False):
        means = summary[f"mean:{m}"].to_numpy(float)
        stds = np.nan_to_num(summary[f"std:{m}"].to_numpy(float))
        best = best_mask(summary[f"mean:{m}"], m).to_numpy()
        colors = ["tab:orange" if b else "tab:blue" for b in best]
        ax.bar(x, np.nan_to_num(means), yerr=stds, capsize=4, color=colors, alpha=0.8)
        for i, paths in enumerate(summary["_paths"]):
            values = pd.to_numeric(completed.loc[completed["_path"].isin(paths), m])
            ax.plot(np.full(len(values), i), values, "k.", markersize=5)
        ax.set_title(m)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if not metrics:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no metrics", ha="center", va="center")
    fig.suptitle("mean ± sample std over seeds (dots: seeds; orange: best)")
    return _png(fig)


def _data_kwargs(job: Job) -> dict[str, Any]:
    """The job's data section as MnistDataModule arguments: the source it really used (no
    new download attempt), a relative root taken from the folder convae-train ran in."""
    from convae.data.datamodule import MnistDataModule

    accepted = inspect.signature(MnistDataModule).parameters
    data = {k: v for k, v in (job.config.get("data") or {}).items() if k in accepted}
    if job.results.get("data_source"):
        data["source"] = job.results["data_source"]
    root = data.get("root")
    if root is not None and not Path(root).is_absolute():
        hydra_cfg = _read_yaml(job.folder / ".hydra" / "hydra.yaml") or {}
        cwd = (hydra_cfg.get("hydra", {}).get("runtime", {}) or {}).get("cwd")
        if cwd:
            data["root"] = str(Path(cwd) / root)
    data["seed"] = job.config.get(SEED, 0)
    return data


def reconstruction_rows(job: Job, n: int, cache: dict) -> tuple[Any, Any, Any]:
    """(targets, noisy inputs or None, reconstructions) for the first ``n`` test digits."""
    import torch

    from convae.data.datamodule import MnistDataModule
    from convae.data.noise import to_unit
    from convae.module import AutoencoderModule

    ckpt = tested_checkpoint(job.folder, job.results)
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint in {job.folder / 'checkpoints'}")
    kwargs = _data_kwargs(job)
    key = json.dumps(kwargs, sort_keys=True, default=str)
    if key not in cache:
        dm = MnistDataModule(**kwargs)
        dm.setup()
        noisy = dm.test_set.noisy
        cache[key] = (to_unit(dm.test_set.images[:n]), None if noisy is None else noisy[:n])
    targets, noisy = cache[key]
    module = AutoencoderModule.load_from_checkpoint(ckpt, map_location="cpu")
    module.eval()
    with torch.no_grad():
        recon = module.reconstruct(targets if noisy is None else noisy)
    return targets, noisy, recon


def _strip(images: Any, pad: int = 2) -> np.ndarray:
    """(n, 1, H, W) in [0, 1] -> one grey row image with ``pad`` mid-grey pixels between."""
    array = np.asarray(images, dtype=float)[:, 0]
    n, h, w = array.shape
    out = np.full((h, n * (w + pad) - pad), 0.5)
    for i in range(n):
        out[:, i * (w + pad) : i * (w + pad) + w] = array[i]
    return out


def reconstructions_figure(
    summary: pd.DataFrame, jobs_by_path: dict[str, Job], n: int = RECON_DIGITS
) -> tuple[bytes, list[str]]:
    """Target row on top, then per configuration (its lowest seed) its noisy inputs when
    noisy, and its reconstructions; rows at ``ZOOM``x with nearest-neighbour pixels so
    upsampling artifacts show. Returns the PNG and a note per configuration left out."""
    rows: list[tuple[str, np.ndarray]] = []
    notes: list[str] = []
    cache: dict = {}
    top_targets = None
    for label, path in zip(summary["configuration"], summary["_recon_path"], strict=True):
        job = jobs_by_path[path]
        seed = job.config.get(SEED)
        try:
            targets, noisy, recon = reconstruction_rows(job, n, cache)
        except Exception as err:
            notes.append(f"{label}: {type(err).__name__}: {' '.join(str(err).split())}")
            continue
        if top_targets is None:
            top_targets = targets
            rows.append(("targets (test digits)", _strip(targets)))
        elif targets.shape != top_targets.shape or not bool((targets == top_targets).all()):
            rows.append((f"{label}\ntargets", _strip(targets)))
        if noisy is not None:
            rows.append((f"{label}\nnoisy input", _strip(noisy)))
        rows.append((f"{label}\nreconstruction (seed {seed})", _strip(recon.clamp(0, 1))))
    if not rows:
        rows.append(("no reconstructions", np.full((28, 28), 0.5)))
    dpi = 100
    h, w = max(r[1].shape[0] for r in rows), max(r[1].shape[1] for r in rows)
    label_in = 3.2
    fig = _new_figure(label_in + w * ZOOM / dpi, len(rows) * (h * ZOOM + 8) / dpi)
    fig.set_layout_engine(None)
    fig.subplots_adjust(left=label_in / fig.get_figwidth(), right=1, top=1, bottom=0, hspace=0)
    for ax, (label, image) in zip(
        fig.subplots(len(rows), 1, squeeze=False)[:, 0], rows, strict=True
    ):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        # wrapped, so long configuration names stay inside the label column
        wrapped = "\n".join(textwrap.fill(part, 44) for part in label.split("\n"))
        ax.set_ylabel(wrapped, rotation=0, ha="right", va="center", fontsize=8)
    return _png(fig, dpi=dpi), notes


# --------------------------------------------------------------------------- writing


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
        f"![reconstructions](reconstructions.png)\n\nReconstructions of the first {RECON_DIGITS} "
        "test digits by the lowest seed of each configuration.",
        "",
    ]
    if recon_notes:
        parts += ["Left out of reconstructions.png:", "", *[f"- {n}" for n in recon_notes], ""]
    return "\n".join(parts)


def build_report(sweeps: Sequence[Path], out: Path, wanted: Sequence[str] | None) -> list[Path]:
    """Read the sweeps, write the five outputs into ``out``; returns their paths."""
    jobs = [job for sweep in sweeps for job in read_sweep(sweep)]
    frame = jobs_frame(jobs, sweeps)
    config_keys = sorted(
        ({k for j in jobs for k in flatten(j.config)} - set(PLUMBING_KEYS)) | {SOURCE_USED}
    )
    completed = frame[frame["status"] == "completed"].copy()
    all_metrics = sorted({m for j in jobs for m in j.metrics}, key=_metric_order)
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
    recon_png, recon_notes = reconstructions_figure(summary, jobs_by_path)
    run_columns = [c for c in RUN_COLUMNS if c in frame]
    csv = frame[[*JOB_COLUMNS, *csv_keys, *run_columns, *all_metrics]]
    tex_table = display_table(
        summary, table_keys, metrics, bold=lambda c: f"\\textbf{{{c}}}", pm=" $\\pm$ ", dash="--"
    )
    caption = "Mean $\\pm$ sample std over seeds; best per column in bold."
    outputs = {
        "report.md": markdown_report(sweeps, frame, summary, table_keys, metrics, recon_notes),
        "report.csv": csv.to_csv(index=False),
        "report.tex": to_latex(tex_table, metrics, caption),
        "report.png": bar_charts(summary, completed, metrics),
        "reconstructions.png": recon_png,
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in outputs.items():
        write_atomic(out / name, data)
        paths.append(out / name)
    return paths


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
        help="metric columns to show, in this order; globs allowed, e.g. 'test/*,val/loss' "
        "(default: every val/*, test/* and test_clean/* metric present)",
    )
    args = parser.parse_args(argv)
    try:
        paths = build_report(args.sweeps, args.out or args.sweeps[0], args.metrics)
    except ReportError as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(f"{PROG}: wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
