"""Figures that make checkerboard artifacts visible in TensorBoard.

A ``SpectrumFigure`` or ``ResidualFigure``, called with outputs and targets, returns an RGB
uint8 array (H, W, 3) for ``SummaryWriter.add_image(tag, arr, step, dataformats="HWC")``;
its owner (one per callback) keeps it and redraws it with new data rather than building a
new one. ``zoomed_pairs`` returns a float (3, H, W) grid for ``add_image`` as is. Figures are
drawn on their own ``Figure`` + Agg canvas, never through pyplot, so they leak nothing and
need no display.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from convae.metrics.checkerboard import BatchSpectra, batch_spectra

__all__ = ["ResidualFigure", "SpectrumFigure", "zoomed_pairs"]

DPI = 80


def _images(t: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) or (B, H, W) -> detached float32 CPU (B, H, W)."""
    t = t.detach().to("cpu", torch.float32)
    return t.reshape(-1, *t.shape[-2:])


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= x (x > 0): colour scales that change in
    steps, not at every redraw, so pictures of one run compare by eye and the colour bars'
    labels (the expensive part of a redraw) stay the same. 1 for a NaN, inf or x <= 0 (the
    outputs of a diverged model): a picture is drawn, never an error raised."""
    if not math.isfinite(x) or x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0**k >= x * (1 - 1e-12):
            return m * 10.0**k
    raise AssertionError("unreachable")


def _finite_range(*arrays: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values of ``arrays``; None when there are none (a diverged
    model's NaN or inf outputs: those pixels are drawn blank, the scale from the rest)."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])
    return (float(values.min()), float(values.max())) if values.size else None


class _ReusedFigure:
    """A figure built once per image size and redrawn with new data by blitting: the static
    parts (axes, titles, colour bars) are drawn once per colour scale and kept as a
    background; a redraw pastes it and draws only the images (and ``_changing`` texts) on
    top. Laying out and rendering text is most of what a full matplotlib draw costs, and the
    pictures are redrawn at every few validations."""

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None
        self._scale: tuple[float, ...] | None = None
        self._background: Any = None

    def _build(self, h: int, w: int) -> None:
        raise NotImplementedError

    def _built_for(self, h: int, w: int) -> None:
        if self._size != (h, w):
            self._build(h, w)
            self._size, self._scale = (h, w), None

    def _changing(self) -> list[Artist]:
        """What changes at every redraw; everything else is background."""
        raise NotImplementedError

    def _render(self, scale: tuple[float, ...]) -> np.ndarray:
        """``scale``: the colour limits, which decide the colour bars' labels."""
        changing = self._changing()
        if scale != self._scale:
            for a in changing:
                a.set_visible(False)
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
            for a in changing:
                a.set_visible(True)
            self._scale = scale
        self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for a in changing:
            a.draw(renderer)
            if isinstance(a, AxesImage):  # the frame goes over the image, as in a full draw
                for spine in a.axes.spines.values():
                    spine.draw(renderer)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


class SpectrumFigure(_ReusedFigure):
    """Log power spectra of outputs and targets and their ratio, centred (DC in the middle).

    Mean |F|^2 over the batch, shown as log10 on a shared colour scale for the two spectra,
    and ``10 log10(out / target)`` on a symmetric diverging scale. Frequencies run from -N/2
    to N/2 - 1, so stride-2 peaks sit on the left/top edges and corners and period-4 peaks
    half-way to the centre.
    """

    TITLES = ("output log10 power", "target log10 power", "output / target [dB]")
    CMAPS = ("viridis", "viridis", "RdBu_r")

    def _build(self, h: int, w: int) -> None:
        extent = (-w / 2 - 0.5, w / 2 - 0.5, h / 2 - 0.5, -h / 2 - 0.5)
        fig = Figure(figsize=(9, 3), dpi=DPI)
        self.canvas = FigureCanvasAgg(fig)
        self.panels = []
        panels = zip(fig.subplots(1, 3), self.TITLES, self.CMAPS, strict=True)
        for k, (ax, title, cmap) in enumerate(panels):
            im = ax.imshow(np.zeros((h, w)), cmap=cmap, extent=extent, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            # Ticks where the artifacts sit (stride 2 at -N/2, period 4 at +-N/4); few
            # labels, since laying out text is most of what a redraw costs.
            ax.set_xticks([-(w // 2), -(w // 4), 0, w // 4])
            ax.set_yticks([-(h // 2), -(h // 4), 0, h // 4])
            ax.tick_params(labelsize=7, labelleft=k == 0)
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            bar.locator = MaxNLocator(nbins=4)
            bar.ax.tick_params(labelsize=7)
            self.panels.append(im)
        fig.subplots_adjust(left=0.04, right=0.96, bottom=0.1, top=0.88, wspace=0.45)

    def __call__(self, x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
        return self.draw(batch_spectra(x_hat, x))

    def draw(self, s: BatchSpectra) -> np.ndarray:
        """The picture from batch spectra computed elsewhere (e.g. for the scores)."""
        h, w = s.sxx.shape
        total = float(s.syy.sum())
        tiny = 1e-12 * (total if math.isfinite(total) else 0.0) / s.n / (h * w) + 1e-30
        p_out = torch.fft.fftshift(s.sxx / s.n).cpu().numpy() + tiny
        p_tgt = torch.fft.fftshift(s.syy / s.n).cpu().numpy() + tiny
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            log_out, log_tgt = np.log10(p_out), np.log10(p_tgt)
            ratio_db = 10.0 * (log_out - log_tgt)
        # Whole decades and 1-2-5 steps of dB (see nice_ceiling), from the finite values.
        lo, hi = _finite_range(log_out, log_tgt) or (0.0, 1.0)
        lo, hi = math.floor(lo), math.ceil(hi)
        ratio = _finite_range(np.abs(ratio_db))
        lim = nice_ceiling(max(ratio[1] if ratio else 1.0, 1.0))
        self._built_for(h, w)
        for im, img, clim in zip(
            self.panels,
            (log_out, log_tgt, ratio_db),
            ((lo, hi), (lo, hi), (-lim, lim)),
            strict=True,
        ):
            im.set_data(img)
            im.set_clim(*clim)
        return self._render((lo, hi, lim))

    def _changing(self) -> list[Artist]:
        return list(self.panels)


class ResidualFigure(_ReusedFigure):
    """Batch mean of |x_hat - x| per pixel: where the model errs (borders, strokes, a grid)."""

    def _build(self, h: int, w: int) -> None:
        fig = Figure(figsize=(4, 3.4), dpi=DPI)
        self.canvas = FigureCanvasAgg(fig)
        ax = fig.subplots()
        self.image = ax.imshow(np.zeros((h, w)), cmap="magma", interpolation="nearest")
        ax.tick_params(labelsize=7)
        fig.colorbar(self.image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
        fig.subplots_adjust(left=0.08, right=0.9, bottom=0.08, top=0.9)
        # A figure text, not the axes title: an axes moves a title it cannot see (hidden
        # while the background is drawn) out of the picture.
        box = ax.get_position()
        self.title = fig.text(
            (box.x0 + box.x1) / 2, box.y1 + 0.02, "", ha="center", va="bottom", fontsize=9
        )

    def __call__(self, x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
        res = (_images(x_hat) - _images(x)).abs().mean(0).numpy()
        self._built_for(*res.shape)
        finite = _finite_range(res)  # NaN pixels (a diverged model's) are drawn blank
        top = nice_ceiling(max(finite[1] if finite else 1.0, 1e-12))  # 1-2-5 steps
        self.image.set_data(res)
        self.image.set_clim(0.0, top)
        self.title.set_text(f"mean |x_hat - x| (overall {res.mean():.4f})")
        return self._render((top,))

    def _changing(self) -> list[Artist]:
        return [self.image, self.title]


def zoomed_pairs(x_hat: torch.Tensor, x: torch.Tensor, n: int = 8, zoom: int = 4) -> torch.Tensor:
    """First ``n`` reconstructions (top row) above their targets (bottom row), each pixel
    blown up to ``zoom x zoom`` with nearest so single-pixel patterns stay visible.

    Returns a float (3, H', W') tensor in [0, 1] (make_grid repeats a grey channel; colour
    images stay in colour).
    """
    n = min(n, x_hat.shape[0])

    def batch(t: torch.Tensor) -> torch.Tensor:  # (n, C, H, W) float32 on the CPU
        t = t[:n].detach().to("cpu", torch.float32)
        return t if t.ndim == 4 else t.unsqueeze(1)

    a, b = batch(x_hat), batch(x)
    both = torch.cat([a, b]).clamp(0.0, 1.0)
    both = F.interpolate(both, scale_factor=zoom, mode="nearest")
    return make_grid(both, nrow=n, padding=zoom, pad_value=0.5)
