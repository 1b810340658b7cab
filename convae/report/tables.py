"""Grouping and formatting: jobs grouped into configurations with mean ± std per metric, and
that table as markdown or LaTeX text with the best value per column in bold."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from convae.metrics.catalogue import better
from convae.report.sweeps import SOURCE_USED, ReportError

METRIC_PREFIXES = ("val/", "test/", "test_clean/", "latent/")
SEED = "seed"

METRIC_ORDER = ("loss", "psnr", "ssim")
# The default columns: quality, then artifacts (grid, the primary artifact score, then the
# older spectral ones). All 30-odd metrics are one ``--metrics all`` away; a table that
# wide cannot be read.
DEFAULT_METRICS = ("loss", "psnr", "ssim", "grid", "cb2_incoh", "hf_tail_db")
ALL = "all"


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


def metric_order(name: str) -> tuple[int, int, str]:
    """val, test, test_clean (then others); loss, psnr, ssim first, then by name."""
    split, _, metric = name.partition("/")
    split_rank = next((i for i, p in enumerate(METRIC_PREFIXES) if p == f"{split}/"), 9)
    rank = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
    return split_rank, rank, name


def metric_names(present: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The metric columns to show. Default: ``DEFAULT_METRICS`` of the test split (of val/
    for runs that were not tested); ``all``: every val/, test/ and test_clean/ metric
    present; otherwise ``wanted`` names them in the order given, globs allowed (``test/*``)."""
    present = sorted(present, key=metric_order)
    if not wanted:
        split = "test/" if any(m.startswith("test/") for m in present) else "val/"
        return [f"{split}{m}" for m in DEFAULT_METRICS if f"{split}{m}" in present]
    chosen: list[str] = []
    for pattern in wanted:
        if pattern == ALL:
            hits = [m for m in present if m.startswith(METRIC_PREFIXES)]
        else:
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
    direction = better(metric)  # convae/metrics/catalogue.py; metrics not listed get no bold
    if direction == "lower":
        score = means
    elif direction == "higher":
        score = -means
    elif direction == "zero":
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
