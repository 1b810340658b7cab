"""Figures that make checkerboard artifacts visible in TensorBoard.

``spectrum_image`` and ``residual_image`` return RGB uint8 arrays (H, W, 3) for
``SummaryWriter.add_image(tag, arr, step, dataformats="HWC")``; ``zoomed_pairs`` returns a
float (3, H, W) grid for ``add_image`` as is. Figures are drawn on their own
``Figure`` + Agg canvas, never through pyplot, so they are thread-safe, leak nothing and
need no display.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from convae.metrics.checkerboard import batch_spectra

__all__ = ["figure_to_array", "residual_image", "spectrum_image", "zoomed_pairs"]

DPI = 80


def figure_to_array(fig: Figure) -> np.ndarray:
    """Renders a figure on an Agg canvas to an RGB uint8 array (H, W, 3)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _images(t: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) or (B, H, W) -> detached float32 CPU (B, H, W)."""
    t = t.detach().to("cpu", torch.float32)
    return t.reshape(-1, *t.shape[-2:])


def spectrum_image(x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Log power spectra of outputs and targets and their ratio, centred (DC in the middle).

    Mean |F|^2 over the batch, shown as log10 on a shared colour scale for the two spectra,
    and ``10 log10(out / target)`` on a symmetric diverging scale. Frequencies run from -N/2
    to N/2 - 1, so stride-2 peaks sit on the left/top edges and corners and period-4 peaks
    half-way to the centre.
    """
    s = batch_spectra(x_hat, x)
    h, w = s.sxx.shape
    tiny = 1e-12 * float(s.syy.sum()) / s.n / (h * w) + 1e-30
    p_out = torch.fft.fftshift(s.sxx / s.n).cpu().numpy() + tiny
    p_tgt = torch.fft.fftshift(s.syy / s.n).cpu().numpy() + tiny
    log_out, log_tgt = np.log10(p_out), np.log10(p_tgt)
    ratio_db = 10.0 * (log_out - log_tgt)
    lo = float(min(log_out.min(), log_tgt.min()))
    hi = float(max(log_out.max(), log_tgt.max()))
    lim = max(float(np.abs(ratio_db).max()), 1.0)
    extent = (-w / 2 - 0.5, w / 2 - 0.5, h / 2 - 0.5, -h / 2 - 0.5)

    fig = Figure(figsize=(9, 3), dpi=DPI)
    axes = fig.subplots(1, 3)
    panels = [
        (log_out, "output log10 power", "viridis", lo, hi),
        (log_tgt, "target log10 power", "viridis", lo, hi),
        (ratio_db, "output / target [dB]", "RdBu_r", -lim, lim),
    ]
    for ax, (img, title, cmap, vmin, vmax) in zip(axes, panels, strict=True):
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.04, right=0.96, bottom=0.1, top=0.88, wspace=0.45)
    return figure_to_array(fig)


def residual_image(x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Batch mean of |x_hat - x| per pixel: where the model errs (borders, strokes, a grid)."""
    res = (_images(x_hat) - _images(x)).abs().mean(0).numpy()
    fig = Figure(figsize=(4, 3.4), dpi=DPI)
    ax = fig.subplots()
    im = ax.imshow(res, cmap="magma", vmin=0.0, interpolation="nearest")
    ax.set_title(f"mean |x_hat - x| (overall {res.mean():.4f})", fontsize=9)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.08, right=0.9, bottom=0.08, top=0.9)
    return figure_to_array(fig)


def zoomed_pairs(x_hat: torch.Tensor, x: torch.Tensor, n: int = 8, zoom: int = 4) -> torch.Tensor:
    """First ``n`` reconstructions (top row) above their targets (bottom row), each pixel
    blown up to ``zoom x zoom`` with nearest so single-pixel patterns stay visible.

    Returns a float (3, H', W') tensor in [0, 1] (make_grid repeats the grey channel).
    """
    n = min(n, x_hat.shape[0])
    a = _images(x_hat[:n]).unsqueeze(1)
    b = _images(x[:n]).unsqueeze(1)
    both = torch.cat([a, b]).clamp(0.0, 1.0)
    both = F.interpolate(both, scale_factor=zoom, mode="nearest")
    return make_grid(both, nrow=n, padding=zoom, pad_value=0.5)
