"""convae-report's figures for a paper (issue #31, item 3): panels of one metric share their
y axis, and titles and legends neither overlap nor run past the figure, however many panels
and however long their labels. Built from frames made by hand, measured with matplotlib's
renderer."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from convae.report.curves import CURVE_COLUMNS, curves_plot
from convae.report.labels import Dimension
from convae.report.panels import COLUMN_IN, metric_figure
from convae.report.tables import summarise

METRICS = ["test/loss", "test/cb2_incoh"]
LONG = "a_rather_long_configuration_name_that_would_never_fit"


def grid(panels: list[str], colours: list[str], xs=("nearest", "transposed")):
    """The completed jobs (two seeds each), their summary and dimensions: x, colour, panel.
    ``test/cb2_incoh`` is ten times larger in the second panel than in the first."""
    rows = []
    for (p, panel), colour, x, seed in product(enumerate(panels), colours, xs, (0, 1)):
        rows.append({
            "x": x, "colour": colour, "panel": panel, "seed": seed, "params": 10,
            "_path": f"{x}/{colour}/{panel}/{seed}",
            "test/loss": 0.1 + 0.01 * seed + 0.02 * p,
            "test/cb2_incoh": (1e-5 if p == 0 else 1.5e-4) * (1 + 0.3 * seed),
        })  # fmt: skip
    completed = pd.DataFrame(rows)
    summary = summarise(completed, ["x", "colour", "panel"], METRICS)
    dims = [Dimension(k, tuple(summary[k])) for k in ("x", "colour", "panel")]
    return summary, completed, dims


def text_boxes(fig: Figure) -> dict[str, list[Bbox]]:
    """Window extents of the panel titles and of the legends' texts, after layout."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    legend = [t.get_window_extent(renderer) for lg in fig.legends for t in lg.get_texts()]
    return {"titles": titles, "legend": legend}


def assert_fits(fig: Figure) -> None:
    boxes = text_boxes(fig)
    inside = fig.bbox.padded(0.5)
    for box in boxes["titles"] + boxes["legend"]:
        assert inside.containsx(box.x0) and inside.containsx(box.x1), (box, fig.bbox)
        assert inside.containsy(box.y0) and inside.containsy(box.y1), (box, fig.bbox)
    for a, b in combinations(boxes["titles"], 2):
        assert not a.overlaps(b), (a, b)
    for title, text in product(boxes["titles"], boxes["legend"]):
        assert not title.overlaps(text), (title, text)


def axes_grid(fig: Figure, rows: int) -> np.ndarray:
    return np.array(fig.axes).reshape(rows, -1)


@pytest.mark.parametrize("n_panels", [2, 9])
def test_long_panel_titles_neither_overlap_nor_leave_the_figure(n_panels: int) -> None:
    panels = [f"{LONG}_{i} · depth_32_32_16 · noise_std=0.5" for i in range(n_panels)]
    summary, completed, dims = grid(panels, [f"{LONG} · colour {i}" for i in range(3)])
    fig = metric_figure(summary, completed, METRICS, dims)
    assert len(text_boxes(fig)["titles"]) == n_panels
    assert_fits(fig)


def test_panels_of_one_metric_share_their_y_axis() -> None:
    summary, completed, dims = grid(["clean", "noisy"], ["k3", "k4"])
    fig = metric_figure(summary, completed, METRICS, dims)
    axes = axes_grid(fig, len(METRICS))
    for row in axes:
        assert all(row[0].get_shared_y_axes().joined(row[0], ax) for ax in row[1:])
        assert {ax.get_ylim() for ax in row} == {row[0].get_ylim()}
    assert not axes[0, 0].get_shared_y_axes().joined(axes[0, 0], axes[1, 0])  # a metric each
    # the 10x gap between the panels' cb2_incoh shows: one axis holds both
    low, high = axes[1, 0].get_ylim()
    assert low <= 1e-5 and high >= 1.5e-4 * 1.3


def test_a_single_panel_figure_is_one_column_wide() -> None:
    summary, completed, dims = grid(["only"], ["k3"])
    fig = metric_figure(summary, completed, METRICS, dims[:1])
    assert fig.get_figwidth() == pytest.approx(COLUMN_IN)
    assert_fits(fig)


@pytest.mark.parametrize("n_panels", [8])
def test_curve_panels_share_y_and_long_titles_fit(n_panels: int) -> None:
    groups = {
        f"config {c} {p}": (f"{LONG} colour {c}", f"{LONG} panel {p} · depth_32_32_16")
        for c, p in product(range(3), range(n_panels))
    }
    rows = [
        [config, tag, step, (1 + p) * (1 + step) * (1e-4 if "grid" in tag else 0.1), 0.0, 2]
        for p, config in enumerate(groups)
        for tag in ("val/loss", "val/grid")
        for step in (0, 10, 20)
    ]
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    fig = curves_plot(curves, ["val/loss", "val/grid"], groups)
    axes = axes_grid(fig, 2)
    for row in axes:
        assert all(row[0].get_shared_y_axes().joined(row[0], ax) for ax in row[1:])
    assert len(text_boxes(fig)["titles"]) == n_panels
    assert_fits(fig)
