"""torchmetrics' SSIM with the Gaussian window applied as two small matrix products.

torchmetrics filters 5 x B maps with one 11 x 11 single-channel convolution, which was
most of a validation pass on the CPU. The window is separable and the images are small, so
filtering along each axis is a product with an (N, N) banded matrix that also folds in
torchmetrics' reflection padding: many times faster (convae-bench's validation figure), the
same numbers to float rounding (tests/unit/metrics/test_ssim.py checks against torchmetrics).
States, DDP reduction and ``compute`` stay torchmetrics' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor
from torchmetrics.image import StructuralSimilarityIndexMeasure

from convae.compat import ssim_add_scores, ssim_options

__all__ = ["FastSSIM", "gaussian_ssim", "reflect_window_matrix"]


@lru_cache(maxsize=16)
def _window_matrix(n: int, sigma: float, dtype: torch.dtype, device: str) -> Tensor:
    # torchmetrics' window: 2 * int(3.5 sigma + 0.5) + 1 taps, normalised to sum 1.
    pad = int(3.5 * sigma + 0.5)
    taps = torch.arange(-pad, pad + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (taps / sigma) ** 2)
    g /= g.sum()
    m = torch.zeros(n, n, dtype=torch.float64)
    for j in range(n):
        for t in range(2 * pad + 1):
            i = j + t - pad
            i = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)  # "reflect" padding
            m[i, j] += g[t]
    return m.to(dtype=dtype, device=device)


def reflect_window_matrix(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(n, n) matrix M with ``x @ M`` = the reflect-padded Gaussian filter of x along its
    last axis (length n >= the window's half width + 1)."""
    return _window_matrix(n, float(sigma), dtype, str(device))


def gaussian_ssim(
    preds: Tensor,
    target: Tensor,
    *,
    data_range: float,
    sigma: tuple[float, float] = (1.5, 1.5),
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Per-image SSIM of (B, C, H, W) batches, as torchmetrics' ``_ssim_update`` computes
    it (mean over the whole reflect-padded similarity map)."""
    h, w = preds.shape[-2:]
    mh = reflect_window_matrix(h, sigma[0], preds.dtype, preds.device)
    mw = reflect_window_matrix(w, sigma[1], preds.dtype, preds.device)
    maps = torch.stack((preds, target, preds * preds, target * target, preds * target))
    mu_p, mu_t, e_pp, e_tt, e_pt = mh.T @ maps @ mw
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p = (e_pp - mu_pp).clamp(min=0.0)
    var_t = (e_tt - mu_tt).clamp(min=0.0)
    upper = 2 * (e_pt - mu_pt) + c2
    lower = var_p + var_t + c2
    ssim_map = ((2 * mu_pt + c1) * upper) / ((mu_pp + mu_tt + c1) * lower)
    return ssim_map.reshape(len(ssim_map), -1).mean(-1)


class FastSSIM(StructuralSimilarityIndexMeasure):
    """Drop-in for ``StructuralSimilarityIndexMeasure`` that takes the fast path for the
    common case (2-D images, Gaussian window, fixed ``data_range``, mean or sum reduction)
    and otherwise defers to torchmetrics."""

    def _sigma(self) -> tuple[float, float]:
        sigma = ssim_options(self)["sigma"]
        sigma = sigma if isinstance(sigma, Sequence) else (sigma, sigma)
        return float(sigma[0]), float(sigma[1])

    def _fast_path(self, preds: Tensor) -> bool:
        o = ssim_options(self)
        return (
            o["gaussian_kernel"]
            and isinstance(o["data_range"], (int, float))
            and o["reduction"] in ("elementwise_mean", "sum")
            and not o["full_outputs"]
            and preds.ndim == 4
            and min(preds.shape[-2:]) > max(int(3.5 * s + 0.5) for s in self._sigma())
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or not self._fast_path(preds):
            super().update(preds, target)  # torchmetrics' own checks and errors
            return
        o = ssim_options(self)
        dtype = torch.promote_types(preds.dtype, torch.float32)  # bf16 outputs under AMP
        similarity = gaussian_ssim(
            preds.to(dtype),
            target.to(dtype),
            data_range=float(o["data_range"]),
            sigma=self._sigma(),
            k1=o["k1"],
            k2=o["k2"],
        )
        ssim_add_scores(self, similarity)
