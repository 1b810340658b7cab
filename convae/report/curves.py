"""Learning curves for a report: metrics against step, one line per configuration, mean ±
sample std over its seeds, read back from each job's TensorBoard event files.

results.json holds final values only; how a metric got there (does a decoder's
``cb2_incoh`` fall as it trains, or grow?) lives in the events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convae.report.figures import new_figure, png

DEFAULT_CURVES = ("val/loss", "val/cb2_incoh")
CURVE_COLUMNS = ["configuration", "tag", "step", "mean", "std", "n"]


def job_scalars(folder: Path, tags: Sequence[str]) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` from the event files in a job folder. A step logged twice (a
    resumed run replaying steps) keeps its last value, as TensorBoard draws it."""
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    present = set(acc.Tags()["scalars"])
    return {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags if t in present}


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


def curves_figure(curves: pd.DataFrame, tags: Sequence[str]) -> bytes:
    """One panel per tag; a line per configuration with a ± std band. Scores spanning
    more than a factor of 5 (the checkerboard scores, a loss from its start) get a log axis."""
    fig = new_figure(5.0 * max(1, len(tags)), 3.6)
    axes = fig.subplots(1, max(1, len(tags)), squeeze=False).ravel()
    for ax, tag in zip(axes, tags, strict=False):
        part = curves[curves["tag"] == tag]
        for label, line in part.groupby("configuration", sort=False):
            mean, std = line["mean"].to_numpy(), np.nan_to_num(line["std"].to_numpy())
            (drawn,) = ax.plot(line["step"], mean, label=label, linewidth=1.2)
            ax.fill_between(line["step"], mean - std, mean + std, alpha=0.2, linewidth=0,
                            color=drawn.get_color())  # fmt: skip
        positive = len(part) and (part["mean"] > 0).all()
        if positive and part["mean"].max() / part["mean"].min() > 5:
            ax.set_yscale("log")
        ax.set_title(tag if len(part) else f"{tag} (not logged)")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if len(curves):
        axes[0].legend(fontsize=7)
    fig.suptitle("mean ± sample std over seeds")
    return png(fig)
