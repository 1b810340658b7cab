"""Learning curves for a report: metrics against step, one line per configuration, mean ±
sample std over its seeds, read back from each job's metrics.csv or TensorBoard events.

results.json holds final values only; how a metric got there (does a decoder's
``cb2_incoh`` fall as it trains, or grow?) lives in the events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convae.report.figures import new_figure, png
from convae.report.panels import COLUMN_IN, FONT, PAGE_IN

DEFAULT_CURVES = ("val/loss", "val/cb2_incoh")
CSV_NAME = "metrics.csv"  # Lightning's CSVLogger, in the run folder
CURVE_COLUMNS = ["configuration", "tag", "step", "mean", "std", "n"]


def job_scalars(folder: Path, tags: Sequence[str]) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of a job: from its metrics.csv (logger=csv or
    tensorboard_csv) when there, else from its TensorBoard event files. A step logged twice
    (a resumed run replaying steps) keeps its last value, as TensorBoard draws it."""
    if (folder / CSV_NAME).is_file():
        return _csv_scalars(folder / CSV_NAME, tags)
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    present = set(acc.Tags()["scalars"])
    return {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags if t in present}


def _csv_scalars(path: Path, tags: Sequence[str]) -> dict[str, dict[int, float]]:
    """Lightning's CSV: a ``step`` column and one per tag, empty where a row did not log it."""
    frame = pd.read_csv(path)
    out = {}
    for tag in tags:
        if tag in frame:
            rows = frame[["step", tag]].dropna()
            out[tag] = dict(zip(rows["step"].astype(int), rows[tag].astype(float), strict=True))
    return out


def curves_frame(summary: pd.DataFrame, tags: Sequence[str]) -> pd.DataFrame:
    """One row per configuration, tag and step: mean, sample std (ddof=1) and n, the number
    of the configuration's jobs that logged that step."""
    rows = []
    for _, config in summary.iterrows():
        per_job = [job_scalars(Path(p), tags) for p in config["_paths"]]
        for tag in tags:
            series = [job[tag] for job in per_job if tag in job]
            for step in sorted({s for values in series for s in values}):
                values = [v[step] for v in series if step in v]
                std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
                rows.append([config["configuration"], tag, step, float(np.mean(values)), std,
                             len(values)])  # fmt: skip
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def curves_figure(
    curves: pd.DataFrame,
    tags: Sequence[str],
    groups: Mapping[str, tuple[str, str]] | None = None,
) -> bytes:
    """A row of panels per tag and a column per panel value; in each, a line per colour
    value with a ± std band. ``groups`` maps a configuration to its (colour, panel) short
    labels (convae.report.panels); without it every configuration is a line of one panel.
    Scores spanning more than a factor of 5 (the checkerboard scores, a loss from its start)
    get a log axis, where the band is left out below zero."""
    groups = groups or {c: (c, "") for c in curves["configuration"].unique()}
    panels = list(dict.fromkeys(p for _, p in groups.values())) or [""]
    colours = list(dict.fromkeys(c for c, _ in groups.values()))
    rows = max(1, len(tags))
    fig = new_figure(min(PAGE_IN, max(COLUMN_IN, 0.6 + 1.9 * len(panels))), 1.0 + 1.6 * rows)
    axes = fig.subplots(rows, len(panels), squeeze=False, sharex=True)
    for r, tag in enumerate(tags):
        part = curves[curves["tag"] == tag]
        positive = len(part) and (part["mean"] > 0).all()
        log = bool(positive and part["mean"].max() / part["mean"].min() > 5)
        for config, line in part.groupby("configuration", sort=False):
            colour, panel = groups.get(config, (config, ""))
            ax = axes[r, panels.index(panel) if panel in panels else 0]
            mean, std = line["mean"].to_numpy(), np.nan_to_num(line["std"].to_numpy())
            low = np.where(mean - std > 0, mean - std, np.nan) if log else mean - std
            c = f"C{colours.index(colour) % 10}" if colour in colours else None
            ax.plot(line["step"], mean, color=c, linewidth=0.9)
            ax.fill_between(line["step"], low, mean + std, alpha=0.2, linewidth=0, color=c)
        for c, ax in enumerate(axes[r]):
            if log:
                ax.set_yscale("log")
            ax.tick_params(which="both", labelsize=FONT - 1, length=2, pad=1)
            ax.grid(alpha=0.3, linewidth=0.5)
            if r == 0 and panels[c]:
                ax.set_title(panels[c], fontsize=FONT)
        axes[r, 0].set_ylabel(tag if len(part) else f"{tag}\n(not logged)", fontsize=FONT)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=FONT)
    if len(curves) and any(colours):
        handles = [Line2D([], [], color=f"C{k % 10}", label=v) for k, v in enumerate(colours)]
        fig.legend(handles=handles, loc="outside upper center", ncols=min(3, len(colours)),
                   fontsize=FONT, frameon=False, title="mean ± sample std over seeds",
                   title_fontsize=FONT)  # fmt: skip
    return png(fig, dpi=200)
