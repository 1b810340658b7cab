"""The two pictures of a report: bar charts of the metrics per configuration, and the same
test digits reconstructed by each configuration (loading its checkpoint)."""

from __future__ import annotations

import io
import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convae.finished_run import FinishedRun
from convae.report.sweeps import Job
from convae.report.tables import SEED, best_mask

RECON_DIGITS = 10
ZOOM = 4  # screen pixels per image pixel: enough to see period-2 checkerboards


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure, dpi: int = 100) -> bytes:
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
    fig = new_figure(cols * width, rows * 3.6)
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
    return png(fig)


def _data_kwargs(job: Job) -> dict[str, Any]:
    """The job's data as the run saw it (convae.finished_run)."""
    return FinishedRun(job.folder, job.results).data_arguments(job.config)


def reconstruction_rows(job: Job, n: int, cache: dict) -> tuple[Any, Any, Any]:
    """(targets, noisy inputs or None, reconstructions) for the first ``n`` test digits."""
    import torch

    from convae.checkpoint import load_module
    from convae.data.datamodule import MnistDataModule
    from convae.data.noise import to_unit

    ckpt = FinishedRun(job.folder, job.results).checkpoint()
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
    module = load_module(ckpt)  # weights_only: a crafted checkpoint is refused, not run
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
    fig = new_figure(label_in + w * ZOOM / dpi, len(rows) * (h * ZOOM + 8) / dpi)
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
    return png(fig, dpi=dpi), notes
