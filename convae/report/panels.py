"""The report's metric figure as small multiples, sized for one paper column: the first
swept key along x (the decoder, in the ablation), colour for the second, a column of panels
per value of the third, a row per metric (its panels on one y scale). Keys beyond the third
join the colour. Titles and legend are wrapped to fit, whatever the labels' length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from convae.report.figures import fit_texts, new_figure, png
from convae.report.labels import Dimension
from convae.report.tables import clear_best_mask

COLUMN_IN = 3.4  # one column of a two-column paper
PAGE_IN = 7.0  # both columns
FONT = 7


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def figure_axes(dims: Sequence[Dimension], n: int) -> tuple[list[str], list[str], list[str]]:
    """Per configuration: its x value, colour value and panel value."""
    x = list(dims[0].values) if dims else ["all jobs"] * n
    rest = [d.values for d in dims[2:]]
    panel = [" · ".join(p) for p in zip(*rest, strict=True)] if rest else [""] * n
    colour_dims = [dims[1].values] if len(dims) > 1 else []
    if len(rest) > 1:  # a fourth key and beyond join the colour, keeping panels one row
        colour_dims += rest[1:]
        panel = list(rest[0])
    colour = [" · ".join(c) for c in zip(*colour_dims, strict=True)] if colour_dims else [""] * n
    return x, colour, panel


def metric_panels(
    summary: pd.DataFrame,
    completed: pd.DataFrame,
    metrics: Sequence[str],
    dims: Sequence[Dimension],
) -> bytes:
    """report.png: metric_figure at 200 dpi."""
    return png(metric_figure(summary, completed, metrics, dims), dpi=200)


def metric_figure(
    summary: pd.DataFrame,
    completed: pd.DataFrame,
    metrics: Sequence[str],
    dims: Sequence[Dimension],
) -> Figure:
    """A point per configuration at its mean, the sample std as error bar and each seed a
    grey dot (a mean of three seeds hides their spread); the clear best per metric (as the
    table bolds it) outlined in black. Points, not bars: the axes do not start at zero, so
    differences of 1e-3 in a loss of 0.1 can be seen. The panels of a row (one metric)
    share their y axis, so a 10x gap between panels looks like one."""
    n = len(summary)
    x, colour, panel = figure_axes(dims, n)
    xs, colours, panels = _unique(x), _unique(colour), _unique(panel)
    rows = max(1, len(metrics))
    panel_in = max(1.4, 0.25 + 0.2 * len(xs))  # points side by side need little width
    width = min(PAGE_IN, max(COLUMN_IN, 0.5 + panel_in * len(panels)))
    fig = new_figure(width, 0.9 + 1.35 * rows)
    axes = fig.subplots(rows, len(panels), squeeze=False, sharex=True, sharey="row")
    palette = [f"C{i}" for i in range(10)]
    step = 0.7 / max(1, len(colours))  # colours side by side within an x position
    for r, metric in enumerate(metrics or ["(no metrics)"]):
        means, stds = (summary[f"{s}:{metric}"] for s in ("mean", "std")) if metrics else ((), ())
        best = clear_best_mask(means, stds, metric).to_numpy() if metrics else []
        for c, value in enumerate(panels):
            ax = axes[r, c]
            for i in range(n):
                if panel[i] != value or not metrics:
                    continue
                k = colours.index(colour[i])
                pos = xs.index(x[i]) - 0.35 + step * (k + 0.5)
                mean = summary[f"mean:{metric}"].iloc[i]
                std = summary[f"std:{metric}"].iloc[i]
                paths = summary["_paths"].iloc[i]
                seeds = pd.to_numeric(completed.loc[completed["_path"].isin(paths), metric])
                ax.plot(np.full(len(seeds), pos), seeds, ".", color="0.55", markersize=2)
                ax.errorbar(pos, mean, yerr=None if pd.isna(std) else std, fmt="o",
                            color=palette[k % 10], markersize=3.5 if best[i] else 2.5,
                            markeredgecolor="black" if best[i] else palette[k % 10],
                            markeredgewidth=0.8, elinewidth=0.8, capsize=1.5)  # fmt: skip
            _scale(ax, summary, metric if metrics else None)
            ax.tick_params(which="both", labelsize=FONT - 1, length=2, pad=1)
            ax.grid(axis="y", alpha=0.3, linewidth=0.5)
            if c == 0:
                ax.set_ylabel(metric, fontsize=FONT)
    for ax in axes[-1]:
        ax.set_xticks(range(len(xs)), xs, rotation=40, ha="right", fontsize=FONT - 0.5)
    legend, ncols = None, 1
    if any(colours):
        handles = [
            Line2D([], [], color=palette[k % 10], marker="o", linestyle="", label=v)
            for k, v in enumerate(colours)
        ]
        ncols = min(4, len(colours))
        legend = fig.legend(handles=handles, loc="outside upper center", ncols=ncols,
                            fontsize=FONT, frameon=False)  # fmt: skip
    fit_texts(fig, list(zip(axes[0], panels, strict=True)), FONT, legend, ncols)
    return fig


def _scale(ax: Axes, summary: pd.DataFrame, metric: str | None) -> None:
    """A log axis for scores spanning more than 20x (the checkerboard scores across
    decoders)."""
    if metric is None:
        return
    means = summary[f"mean:{metric}"].dropna()
    if len(means) and (means > 0).all() and means.max() / means.min() > 20:
        ax.set_yscale("log")
