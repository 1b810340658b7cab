"""Grouping and formatting: jobs grouped into configurations with mean ± std per metric, and
that table as markdown or LaTeX text (numbers rounded by convae.report.numbers) with the
clear best value per column in bold."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from convae.metrics.catalogue import better
from convae.report.numbers import column, power_of_ten
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


def _score(means: pd.Series, metric: str) -> pd.Series | None:
    """Lower is better: the means turned by ``metric``'s catalogued direction
    (convae/metrics/catalogue.py); None for a metric with no direction."""
    direction = better(metric)
    if direction == "lower":
        return means
    if direction == "higher":
        return -means
    if direction == "zero":
        return means.abs()
    return None


def best_mask(means: pd.Series, metric: str) -> pd.Series:
    """True where the configuration has the best mean of ``metric`` (ties all win)."""
    score = _score(means, metric)  # metrics not catalogued get no best
    if score is None:
        return pd.Series(False, index=means.index)
    return (score == score.min()) & score.notna()


def clear_best_mask(means: pd.Series, stds: pd.Series, metric: str) -> pd.Series:
    """True for the one configuration whose mean is best and better than every other's by
    more than the two stds added together (their mean ± std intervals apart): a best within
    the seeds' spread is not claimed. A configuration of one seed (no std) is never the clear
    best; against another it counts with std 0. Ties and a lone configuration: none."""
    clear = pd.Series(False, index=means.index)
    score = _score(means, metric)
    if score is None or score.notna().sum() < 2:
        return clear
    best = best_mask(means, metric)
    if best.sum() != 1:
        return clear
    i = best.idxmax()
    if pd.isna(stds[i]):
        return clear
    others = score.notna() & ~best
    gaps = score[others] - score[i]
    clear[i] = bool((gaps > stds[i] + stds[others].fillna(0.0)).all())
    return clear


@dataclass(frozen=True)
class Markup:
    """How a table's text is written: markdown or LaTeX."""

    bold: Callable[[str], str]
    pm: str
    dash: str  # no value
    minus: str
    power: Callable[[int | str], str]  # 10^e
    units: Callable[[int | str], str]  # the header suffix of a column in units of 10^e
    escape: Callable[[str], str]  # text cells and headers


LATEX_SPECIALS = {c: f"\\{c}" for c in "&%$#_{}"} | {
    "\\": r"\textbackslash{}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(c, c) for c in text)


MARKDOWN = Markup(
    bold=lambda c: f"**{c}**",
    pm=" ± ",
    dash="–",
    minus="-",
    power=power_of_ten,
    units=lambda e: f" (×{power_of_ten(e)})",
    escape=str,
)
LATEX = Markup(
    bold=lambda c: f"\\textbf{{{c}}}",
    pm=" $\\pm$ ",
    dash="--",
    minus="$-$",
    power=lambda e: f"$10^{{{e}}}$",
    units=lambda e: f" ($\\times 10^{{{e}}}$)",
    escape=latex_escape,
)


def rules(markup: Markup) -> str:
    """What a cell means and what bold means: report.md's words, report.tex's caption."""
    e = markup.escape
    return (
        e("Each cell is the mean")
        + markup.pm
        + e(
            "sample std (ddof=1) over the n completed seeds, the mean rounded to the std's "
            "first significant digit; the mean alone when n = 1"
        )
        + e("; in a column headed")
        + markup.units("n")
        + e(", multiply the values by ")
        + markup.power("n")
        + e(
            ". Bold: the best mean of a column (lowest loss and checkerboard scores, highest "
            "PSNR/SSIM, hf_tail_db closest to 0), only where it beats every other "
            "configuration's by more than their two stds added together (one seed: never "
            "bold)."
        )
    )


def display_table(
    summary: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], markup: Markup
) -> pd.DataFrame:
    """The aggregated table as text cells: keys, n, params, one 'mean ± std' per metric
    (numbers.py's rule), headers and text cells written with ``markup``."""
    columns = list(keys) or ["configuration"]
    table = pd.DataFrame(index=summary.index)
    for key in columns:
        table[markup.escape(key)] = summary[key].astype(str).map(markup.escape)
    table["n"] = summary["n"].astype(str)
    table["params"] = summary["params"].map(lambda p: markup.dash if pd.isna(p) else f"{p:.0f}")
    for m in metrics:
        means, stds = summary[f"mean:{m}"], summary[f"std:{m}"]
        rule = column(means.tolist(), stds.tolist())
        cells = [
            rule.cell(a, b, markup.pm, markup.dash, markup.minus)
            for a, b in zip(means, stds, strict=True)
        ]
        best = clear_best_mask(means, stds, m)
        header = markup.escape(m) + (markup.units(rule.exponent) if rule.exponent else "")
        table[header] = [markup.bold(c) if b else c for c, b in zip(cells, best, strict=True)]
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub markdown from a frame of text cells (pandas' own to_markdown needs tabulate,
    which convae does not depend on); '|' in cells is escaped."""
    cells = table.astype(str).map(lambda s: s.replace("|", r"\|"))
    header = "| " + " | ".join(str(c).replace("|", r"\|") for c in cells.columns) + " |"
    rule = "|" + "|".join("---" for _ in cells.columns) + "|"
    body = ("| " + cells.agg(" | ".join, axis=1) + " |").tolist() if len(cells) else []
    return "\n".join([header, rule, *body]) + "\n"


BOOKTABS = "its rules need \\usepackage{booktabs} in the preamble."


def to_latex(table: pd.DataFrame, n_metrics: int, caption: str) -> str:
    """A booktabs table of text cells already written in LaTeX (display_table with
    ``LATEX``): text columns left-aligned, metric columns right-aligned."""
    align = "l" * (len(table.columns) - n_metrics) + "r" * n_metrics
    rows = [" & ".join(map(str, row)) + r" \\" for row in table.itertuples(index=False)]
    return "\n".join([
        f"% convae-report's table: {BOOKTABS}",
        r"\begin{table}",
        r"\centering",
        f"\\caption{{{caption}}}",
        f"\\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(map(str, table.columns)) + r" \\",
        r"\midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ])  # fmt: skip
