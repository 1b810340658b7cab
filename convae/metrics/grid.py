"""Phase-locked grid scores: how strongly an image batch depends on its pixels' lattice phase.

A decoder of n 2x stages makes patterns of period P = 2, 4, ..., 2^n, all anchored at
pixel (0, 0): a stage that treats its phases differently (uneven transposed overlap, unequal
pixel-shuffle sub-kernels) makes the output respond differently at each ``(i mod P, j mod P)``.
So the pattern is measured as a per-phase response to the local image, with no target:

1. ``s = h_P * x``, ``h_P`` the (P+1)-tap ``[1, 2, ..., 2, 1] / 2P`` on both axes (``[1, 2, 1]
   / 4`` for P = 2; box_P convolved with [1, 1] / 2). It is zero at every non-zero multiple
   of 1/P, so ``s`` holds nothing of a period-P pattern, and it is the only such filter of
   odd length (centred on the pixel, no half-pixel shift) as short as P + 1 taps: the least
   content smoothed away, so the least content left in the fit's residual, and its reach
   P/2 stays inside the border.
2. Per phase ``phi`` of the P x P lattice, the least-squares line ``x ~ a_phi + b_phi s`` over
   the interior pixels of all images and channels (channels pooled like a batch), from the
   summed statistics ``n, sum s, sum x, sum s^2, sum s x`` per phase: it accumulates over a
   whole split and across processes.
3. ``d_phi(s) = (a_phi - mean a) + (b_phi - mean b) s``, the phase's deviation from the common
   response; for P >= 4 less its period-P/2 part (its mean over ``phi + (0|P/2, 0|P/2)``), so
   ``grid_pP`` counts only what is new at period P: a period-2 grid is not counted again in
   ``grid_p4`` and ``grid_p8``, and the periods are orthogonal parts of one pattern.
4. ``grid_pP^2 = mean_phi E_s[d_phi(s)^2]`` (E_s over the interior's values of s): the mean
   square of the fitted pattern in intensity units of the [0, 1] image. A +-a checker gives
   ``a``; a per-phase gain of RMS g about ``g * RMS(x)``. The fit's sampling noise would add
   a floor that grows with sharpness and shrinks with the number of images, so the images are
   split in two halves (alternate images) and the square is ``mean_phi E_s[d^A d^B]``: the
   product of two independent estimates, unbiased for the pattern's energy (= the combined
   estimate less the halves' disagreement). Reported as ``sqrt(max(0, .))``.

``grid = sum_P grid_pP``: the parts are locked to one origin, so their extremes can meet at
one phase, and what the eye sees is the peak deviation, which the sum bounds; a root sum
square (the RMS of the whole pattern) lets the largest part drown the rest, and that is
often the coarsest period, which every decoder of the architecture makes (on 32 x 32
photos the period-8 cells of the 4 x 4 code). Chosen over the root sum square, the max and
the periods' geometric mean on one photo sweep and its blind visual ranking, and confirmed
on a second sweep with other seeds (experiments/photo_decoders/README.md). Not the max,
which would ignore a second stage's grid, nor a mean, which would dilute a one-stage grid
by the model's depth.

Blur, contrast and sharpening are shift-invariant, so on content that is not locked to the
frame they score about 0 (to sampling noise: ~1e-4 at period 4, ~4e-4 at period 8 on 1,500
32 x 32 photo patches; 0.25% patterns score 1.2-2.5e-3). Known limits, both measured in
experiments/grid_calibration.md, which also tables the scores of known artifacts:

* Content locked to the frame has a floor of its own. Centred 28 x 28 digits score ~3e-3 at
  period 4 and ~5e-2 at period 8 (the mean digit's own structure over a 20-pixel interior),
  whatever their number, so there only ``grid_p2`` sees small artifacts.
* ``h_P`` keeps part of a longer period's pattern, which leaks into ``grid_pP`` through the
  fitted slope: ~1% of its amplitude on real content, its own order on a flat field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric

from convae.metrics.catalogue import grid_border, grid_names, grid_periods

__all__ = [
    "GridScore",
    "grid_border",
    "grid_names",
    "grid_periods",
    "grid_scores",
    "grid_statistics",
    "model_grid_periods",
    "scores_from_statistics",
]

# Per half and phase: count, sum s, sum x, sum s^2, sum s x.
N_STATS = 5
# Phases whose smoothed values do not vary (a constant output) get slope 0, not 0 / 0.
_FLAT = 1e-12


def model_grid_periods(model: dict[str, Any]) -> list[int]:
    return grid_periods(len(model["depths"]), model.get("image_size"))


def _check(periods: Sequence[int], border: int) -> None:
    if not periods or any(p < 2 or p & (p - 1) for p in periods):
        raise ValueError(f"periods must be powers of two >= 2, got {list(periods)}")
    if border < max(periods) // 2:
        raise ValueError(f"border {border} is under half the largest period {max(periods)}")


def _box(x: torch.Tensor, p: int, dim: int) -> torch.Tensor:
    """Valid sums of p neighbours along ``dim``, from one cumulative sum."""
    c = torch.cumsum(x, dim=dim)
    c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
    n = c.shape[dim] - p
    return c.narrow(dim, p, n) - c.narrow(dim, 0, n)


def smooth(x: torch.Tensor, p: int) -> torch.Tensor:
    """``h_p * x`` on the last two axes, valid part: (..., H - p, W - p), [i, j] centred on
    pixel (i + p/2, j + p/2)."""
    for dim in (-2, -1):
        b = _box(x, p, dim)
        n = b.shape[dim] - 1
        x = (b.narrow(dim, 0, n) + b.narrow(dim, 1, n)) / (2 * p)
    return x


def _as_float64(images: torch.Tensor) -> torch.Tensor:
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got {tuple(images.shape)}")
    t = images.detach()
    if t.device.type == "mps":  # no float64 there
        t = t.cpu()
    return t.to(torch.float64)


def grid_statistics(images: torch.Tensor, p: int, border: int, first: int = 0) -> torch.Tensor:
    """Per-phase sums (2, P, P, N_STATS) of a batch (N, C, H, W) at period ``p``: [h] sums
    the images whose index ``first + n`` has parity h (each image's channels together).
    Phase ``(i mod p, j mod p)`` of the absolute pixel; the interior starts at ``border``
    and is cut to a whole number of periods on each axis."""
    x = _as_float64(images)
    h, w = x.shape[-2:]
    ky, kx = (h - 2 * border) // p, (w - 2 * border) // p
    if ky < 1 or kx < 1:
        raise ValueError(f"a {h}x{w} image has no whole period {p} inside a {border}-px border")
    o = border - p // 2
    s = smooth(x, p)[..., o : o + ky * p, o : o + kx * p]
    x = x[..., border : border + ky * p, border : border + kx * p]
    out = torch.zeros(2, p, p, N_STATS, dtype=x.dtype, device=x.device)
    for half in (0, 1):
        xs, ss = x[(half - first) % 2 :: 2], s[(half - first) % 2 :: 2]
        planes = xs[..., 0, 0].numel()  # images x channels
        out[half, ..., 0] = planes * ky * kx
        for k, t in enumerate((ss, xs, ss * ss, ss * xs), start=1):
            # (rows, p, kx, p): summing the leading axis first is many times faster
            out[half, ..., k] = t.reshape(-1, p, kx, p).sum(0).sum(1)
    shift = border % p  # row t of the cut is absolute phase (border + t) mod p
    return torch.roll(out, shifts=(shift, shift), dims=(1, 2))


def _new_at_period(t: torch.Tensor) -> torch.Tensor:
    """(P, P) phase values less their mean (P = 2) or their period-P/2 part (P >= 4)."""
    p = t.shape[0]
    if p == 2:
        return t - t.mean()
    q = p // 2
    return t - t.reshape(2, q, 2, q).mean(dim=(0, 2)).repeat(2, 2)


def _deviations(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-phase (d_a, d_b) of one set of (P, P, N_STATS) sums."""
    n, sum_s, sum_x, sum_ss, sum_sx = stats.unbind(-1)
    ms, mx = sum_s / n, sum_x / n
    var_s = (sum_ss / n - ms * ms).clamp_min(0.0)
    cov = sum_sx / n - ms * mx
    b = torch.where(var_s > _FLAT, cov / var_s.clamp_min(_FLAT), torch.zeros_like(cov))
    a = mx - b * ms
    return _new_at_period(a), _new_at_period(b)


def scores_from_statistics(stats: torch.Tensor, debias: bool = True) -> torch.Tensor:
    """``grid_pP^2`` (0-d float64, may be < 0 from noise) from summed (2, P, P, N_STATS)
    statistics; ``debias=False`` (or one empty half): the plain combined estimate."""
    both = stats.sum(0)
    total = both[..., 0].sum()
    mu1, mu2 = both[..., 1].sum() / total, both[..., 3].sum() / total  # E_s, E_s^2 pooled
    if debias and bool((stats[..., 0] > 0).all()):
        (a1, b1), (a2, b2) = _deviations(stats[0]), _deviations(stats[1])
    else:
        a1, b1 = a2, b2 = _deviations(both)
    return (a1 * a2 + (a1 * b2 + b1 * a2) * mu1 + b1 * b2 * mu2).mean()


def _scores(squares: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    per = {p: q.clamp_min(0.0) for p, q in squares.items()}
    parts = {f"grid_p{p}": q.sqrt() for p, q in per.items()}
    return {"grid": torch.stack(list(parts.values())).sum(), **parts}


def grid_scores(
    images: torch.Tensor, periods: Sequence[int], border: int | None = None
) -> dict[str, float]:
    """``grid`` and ``grid_pP`` of a batch (N, C, H, W) in [0, 1] (see the module doc); the
    same numbers as :class:`GridScore` fed the batch in any number of pieces."""
    border = grid_border(periods) if border is None else border
    _check(periods, border)
    with torch.autocast(images.device.type, enabled=False):
        squares = {p: scores_from_statistics(grid_statistics(images, p, border)) for p in periods}
    return {k: v.item() for k, v in _scores(squares).items()}


class GridScore(Metric):
    """``grid`` and ``grid_pP`` of every image given to ``update`` (N, C, H, W in [0, 1]): the
    per-phase sums are added up (and summed across processes), and fitted once by
    ``compute``, which returns 0-d float64 tensors keyed by :func:`grid_names`."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, periods: Sequence[int], border: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.periods = [int(p) for p in periods]
        self.border = grid_border(self.periods) if border is None else int(border)
        _check(self.periods, self.border)
        for p in self.periods:
            zeros = torch.zeros(2, p, p, N_STATS, dtype=torch.float64)
            self.add_state(f"stats_p{p}", default=zeros, dist_reduce_fx="sum")
        # Images seen so far, so that the halves alternate across batches too.
        self.add_state("images", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x_hat: torch.Tensor) -> None:
        first = int(self.images.item()) % 2
        with torch.autocast(x_hat.device.type, enabled=False):
            for p in self.periods:
                state = getattr(self, f"stats_p{p}")
                state += grid_statistics(x_hat, p, self.border, first).to(state.device)
        self.images += x_hat.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        return _scores(
            {p: scores_from_statistics(getattr(self, f"stats_p{p}")) for p in self.periods}
        )
