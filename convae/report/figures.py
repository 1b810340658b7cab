"""The reconstructions picture of a report: the same test digits reconstructed by each
configuration (loading its checkpoint); and the figure helpers the other pictures share
(titles and legends fitted to the figure)."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from convae.report.sweeps import Job
from convae.report.tables import SEED
from convae.runs.finished_run import FinishedRun

RECON_DIGITS = 10
ZOOM = 4  # screen pixels per image pixel: enough to see period-2 checkerboards


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fit_texts(
    fig: Figure,
    titled: Sequence[tuple[Axes, str]],
    fontsize: float,
    legend: Legend | None = None,
    ncols: int = 1,
) -> None:
    """Each axes given its title, wrapped (at spaces where it can) so that no line is wider
    than the axes under it, and the legend given fewer columns, then wrapped labels, until
    it is no wider than the figure: titles of side-by-side panels neither overlap nor run
    past the figure's edge, whatever their number or length. Measured with the figure's
    renderer after layout, narrowed in proportion until everything fits."""
    titles = {ax: title for ax, title in titled if title}
    chars = {ax: max(map(len, title.split("\n"))) for ax, title in titles.items()}
    for ax, title in titles.items():
        ax.set_title(title, fontsize=fontsize)
    labels = [t.get_text() for t in legend.get_texts()] if legend is not None else []
    label_chars = max(map(len, labels), default=0)
    for _ in range(8):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        narrowed = False
        for ax, title in titles.items():
            wide = ax.title.get_window_extent(renderer).width
            room = ax.get_window_extent(renderer).width
            if wide > room and chars[ax] > 1:
                chars[ax] = _narrower(chars[ax], room / wide)
                ax.set_title(_wrap(title, chars[ax]), fontsize=fontsize)
                narrowed = True
        if legend is not None and label_chars > 4:
            share = fig.bbox.width * 0.98 / legend.get_window_extent(renderer).width
            if share < 1 and ncols > 1:
                ncols = max(1, min(ncols - 1, int(ncols * share)))
                legend.set_ncols(ncols)
                narrowed = True
            elif share < 1:
                label_chars = max(4, _narrower(label_chars, share))
                for text, label in zip(legend.get_texts(), labels, strict=True):
                    text.set_text(_wrap(label, label_chars))
                narrowed = True
        if not narrowed:
            return


def _narrower(chars: int, share: float) -> int:
    """Fewer characters a line, in proportion to the room there is (at least one fewer)."""
    return max(1, min(chars - 1, int(chars * share * 0.95)))


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _data_kwargs(job: Job) -> dict[str, Any]:
    """The job's data as the run saw it (convae.runs.finished_run)."""
    return FinishedRun(job.folder, job.results).data_arguments(job.config)


def reconstruction_rows(job: Job, n: int, cache: dict) -> tuple[Any, Any, Any]:
    """(targets, noisy inputs or None, reconstructions) for the first ``n`` test digits."""
    import torch

    from convae.data.datamodule import ImageDataModule
    from convae.data.noise import to_unit
    from convae.training.module import load_module

    ckpt = FinishedRun(job.folder, job.results).checkpoint()
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint in {job.folder / 'checkpoints'}")
    kwargs = _data_kwargs(job)
    key = json.dumps(kwargs, sort_keys=True, default=str)
    if key not in cache:
        dm = ImageDataModule(**kwargs)
        dm.setup()
        noisy = dm.test_set.noisy
        cache[key] = (to_unit(dm.test_set.images[:n]), None if noisy is None else noisy[:n])
    targets, noisy = cache[key]
    module = load_module(ckpt)  # weights_only: a crafted checkpoint is refused, not run
    with torch.no_grad():
        recon = module.reconstruct(targets if noisy is None else noisy)
    return targets, noisy, recon


def _strip(images: Any, pad: int = 2) -> np.ndarray:
    """(n, C, H, W) in [0, 1] -> one row image with ``pad`` mid-grey pixels between: (H, W')
    for grey images, (H, W', 3) for colour ones."""
    array = np.asarray(images, dtype=float).transpose(0, 2, 3, 1)  # (n, H, W, C)
    if array.shape[-1] == 1:
        array = array[..., 0]
    n, h, w = array.shape[:3]
    out = np.full((h, n * (w + pad) - pad, *array.shape[3:]), 0.5)
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
    for label, path in zip(summary["label"], summary["_recon_path"], strict=True):
        job = jobs_by_path[path]
        seed = job.config.get(SEED)
        try:
            targets, noisy, recon = reconstruction_rows(job, n, cache)
        except Exception as err:
            notes.append(f"{label}: {type(err).__name__}: {' '.join(str(err).split())}")
            continue
        if top_targets is None:
            top_targets = targets
            rows.append(("targets (test images)", _strip(targets)))
        elif targets.shape != top_targets.shape or not bool((targets == top_targets).all()):
            rows.append((f"{label}\ntargets", _strip(targets)))
        if noisy is not None:
            rows.append((f"{label}\nnoisy input", _strip(noisy)))
        rows.append((f"{label}\nreconstruction (seed {seed})", _strip(recon.clamp(0, 1))))
    if not rows:
        rows.append(("no reconstructions", np.full((28, 28), 0.5)))
    dpi = 100
    h, w = max(r[1].shape[0] for r in rows), max(r[1].shape[1] for r in rows)
    # label column as wide as the longest label line (about 0.07 in per character at 8 pt)
    longest = max(len(line) for label, _ in rows for line in label.split("\n"))
    label_in = min(3.2, 0.4 + 0.07 * min(longest, 44))
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
