"""Checkerboard scores: how much of a reconstruction's energy sits at stride periods.

A 2x upsampling stage that treats its output phases differently (transposed conv with uneven
overlap, pixel shuffle without ICNR) leaves a pattern of period 2 (and, one stage earlier,
period 4) in the image. In the 2-D DFT such a pattern is a spike at the bins

* ``K2 = {(0, H/2), (H/2, 0), (H/2, W/2)}`` (period 2), and
* ``K4`` = the multiples of ``(H/4, W/4)`` other than DC and ``K2`` (period 4; 12 bins at 28).

Three numbers, read together:

``cb2_incoh`` / ``cb4_incoh`` (primary, need the target)
    Output energy near the stride bins that no shift-invariant filter of the target can
    produce, as a share of the target energy. Per bin, over the batch,
    ``I(k) = Sxx(k) - |Sxy(k)|^2 / Syy(k)`` with ``Sxx = sum_b |X_hat_b|^2``,
    ``Syy = sum_b |X_b|^2``, ``Sxy = sum_b X_hat_b conj(X_b)``: the residual energy of the
    best per-frequency gain ``g(k)`` fitted to ``X_hat_b(k) ~ g(k) X_b(k)``. Blur, contrast
    and sharpening are such gains, so they score 0; an added pattern does not. Score =
    ``sum_{band(K)} I / sum_k Syy``, in ``[0, inf)`` (usually << 1); it grows with the square
    of the artifact amplitude (a +-0.01 period-2 pattern on MNIST digits gives ~1e-3).
``cb2_ratio`` (target-free)
    ``sum_{K2} Sxx / sum_{k != 0} Sxx`` in ``[0, 1]``: the share of the output's non-constant
    energy exactly on the stride-2 bins. A nearest/bilinear resize-conv stage puts (near) zero
    there; a transposed conv or pixel shuffle need not.
``hf_tail_db``
    ``10 log10`` of the output's over the target's radial power summed over radii
    ``>= 0.75 * H/2``: ``< 0`` too smooth (blur), ``> 0`` excess high frequency (checkerboard
    or noise).

How to read them: high ``cb2_incoh`` with ``cb2_ratio`` near 0 means artifacts tied to the
content (blockiness, ringing at edges) rather than a pattern over flat regions; high
``cb2_ratio`` means a flat-field checkerboard; ``hf_tail_db`` tells blur (negative) from
artifacts or noise (positive) when the incoherent scores are small.

Everything is a handful of batched float64 FFTs and reductions, no per-image loop, so the
scores can run after every validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = [
    "BandMasks",
    "BatchSpectra",
    "band_masks",
    "batch_spectra",
    "checkerboard_scores",
    "hf_tail_db",
    "incoherent_energy",
    "radial_index",
    "radial_power",
    "spectra_scores",
]

# Relative floor below which a target bin counts as empty (FFT round-off is ~1e-32 relative).
_EMPTY_BIN = 1e-20
# Radial power from this fraction of the Nyquist radius up counts as the high-frequency tail.
TAIL_FROM = 0.75


@dataclass(frozen=True)
class BatchSpectra:
    """Batch-summed spectra, each (H, W), unshifted (DC at [0, 0]), float64/complex128."""

    sxx: torch.Tensor  # sum_b |X_hat_b|^2
    syy: torch.Tensor  # sum_b |X_b|^2
    sxy: torch.Tensor  # sum_b X_hat_b conj(X_b)
    n: int  # number of images summed


@dataclass(frozen=True)
class BandMasks:
    """Boolean (H, W) masks on the unshifted DFT grid."""

    k2: torch.Tensor  # the three stride-2 bins
    k4: torch.Tensor  # the period-4 bins (not DC, not K2)
    band2: torch.Tensor  # K2 dilated by 1 bin (Chebyshev, circular), DC excluded
    band4: torch.Tensor  # K4 dilated by 1 bin, minus band2, DC excluded


def _as_images(t: torch.Tensor, name: str) -> torch.Tensor:
    """(B, C, H, W) or (B, H, W) -> detached float64 (N, H, W); channels count as images."""
    if t.ndim not in (3, 4):
        raise ValueError(f"{name} must be (B, C, H, W) or (B, H, W), got shape {tuple(t.shape)}")
    t = t.detach()
    if t.device.type == "mps":  # no float64 there
        t = t.cpu()
    return t.reshape(-1, *t.shape[-2:]).to(torch.float64)


def _check_size(h: int, w: int) -> None:
    if h < 4 or w < 4 or h % 2 or w % 2:
        raise ValueError(f"image size must be even and >= 4 on both axes, got {h}x{w}")


def batch_spectra(x_hat: torch.Tensor, x: torch.Tensor) -> BatchSpectra:
    """Auto- and cross-spectra summed over the batch, from one batched FFT per input."""
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat and x differ in shape: {tuple(x_hat.shape)} vs {tuple(x.shape)}")
    a, b = _as_images(x_hat, "x_hat"), _as_images(x, "x")
    _check_size(*a.shape[-2:])
    # Real images: the half spectrum (rfft2) holds everything, at half the FFT and sum cost.
    fa = torch.fft.rfft2(a)
    fb = torch.fft.rfft2(b)
    w = a.shape[-1]
    sxx = _full_from_half((fa.real.square() + fa.imag.square()).sum(0), w)
    syy = _full_from_half((fb.real.square() + fb.imag.square()).sum(0), w)
    sxy = _full_from_half((fa * fb.conj()).sum(0), w)
    return BatchSpectra(sxx=sxx, syy=syy, sxy=sxy, n=a.shape[0])


def _full_from_half(half: torch.Tensor, w: int) -> torch.Tensor:
    """The (H, W) spectrum of real signals from its rfft2 half (H, W // 2 + 1), by Hermitian
    symmetry: ``S[ky, kx] = conj(S[-ky, -kx])`` (W even, as _check_size ensures)."""
    mirrored = torch.roll(torch.flip(half[:, 1 : w // 2], dims=(0, 1)), shifts=1, dims=0)
    return torch.cat([half, mirrored.conj() if mirrored.is_complex() else mirrored], dim=1)


def incoherent_energy(s: BatchSpectra) -> torch.Tensor:
    """``I(k) = Sxx - |Sxy|^2 / Syy``, in ``[0, Sxx]``: output energy at k left over after the
    best per-frequency gain applied to the target (so 0 for any blur, contrast or sharpening).

    Bins where the target batch has (numerically) no energy give ``I = Sxx``: no filter of
    the target reaches them. Round-off negatives are clamped to 0.
    """
    empty = s.syy <= _EMPTY_BIN * s.syy.sum()
    coherent = (s.sxy.real.square() + s.sxy.imag.square()) / torch.where(empty, 1.0, s.syy)
    coherent = torch.where(empty, 0.0, coherent)
    return torch.minimum((s.sxx - coherent).clamp_min(0.0), s.sxx)


def _period4_freqs(n: int) -> set[int]:
    """Frequencies on one axis of length n (even) that carry a period-2 or period-4 pattern.

    For n divisible by 4 these are 0, n/4, n/2, 3n/4. Otherwise n/4 falls between two bins
    and a period-4 pattern (not periodic on the image) leaks mostly into both neighbours,
    so both floor(n/4) and ceil(n/4) (and their mirrors) count.
    """
    lo, hi = n // 4, -(-n // 4)
    return {0, n // 2, lo, hi, (n - lo) % n, (n - hi) % n}


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """Every bin within Chebyshev distance 1 of a set bin, wrapping around (the DFT is circular)."""
    out = mask.clone()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= torch.roll(mask, shifts=(dy, dx), dims=(0, 1))
    return out


@lru_cache(maxsize=32)
def band_masks(h: int, w: int) -> BandMasks:
    """Masks of ``K2``, ``K4`` and their 1-bin bands for an (h, w) image, cached per size.

    ``K4 = F4(h) x F4(w)`` minus DC and ``K2``, with ``F4`` from :func:`_period4_freqs`
    (12 bins for 28x28; for sizes not divisible by 4 both neighbours of n/4 are used).
    The tensors are shared between calls: do not modify them.
    """
    _check_size(h, w)
    dc = torch.zeros(h, w, dtype=torch.bool)
    dc[0, 0] = True
    k2 = torch.zeros(h, w, dtype=torch.bool)
    for ky, kx in ((0, w // 2), (h // 2, 0), (h // 2, w // 2)):
        k2[ky, kx] = True
    k4 = torch.zeros(h, w, dtype=torch.bool)
    for ky in _period4_freqs(h):
        for kx in _period4_freqs(w):
            k4[ky, kx] = True
    k4 &= ~(k2 | dc)
    band2 = _dilate(k2) & ~dc
    band4 = _dilate(k4) & ~band2 & ~dc
    return BandMasks(k2=k2, k4=k4, band2=band2, band4=band4)


@lru_cache(maxsize=32)
def radial_index(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Integer ring of each unshifted bin, the bin count per ring, and the tail's first ring.

    The radius is measured from DC on the centred (fftshift-ed) grid, i.e. from the signed
    frequencies, in bins of the shorter axis (so Nyquist is at min(h, w) / 2 on both axes),
    and rounded to the nearest integer. The tail starts at ``ceil(0.75 * min(h, w) / 2)``.
    """
    m = min(h, w)
    fy = torch.fft.fftfreq(h, dtype=torch.float64) * m
    fx = torch.fft.fftfreq(w, dtype=torch.float64) * m
    ring = torch.sqrt(fy[:, None].square() + fx[None, :].square()).round().long()
    counts = torch.bincount(ring.flatten())
    return ring, counts, math.ceil(TAIL_FROM * m / 2)


def radial_power(power: torch.Tensor) -> torch.Tensor:
    """Mean of an unshifted (H, W) power spectrum over integer-radius rings, index = radius."""
    h, w = power.shape[-2:]
    ring, counts, _ = radial_index(h, w)
    ring, counts = ring.to(power.device), counts.to(power.device)
    sums = torch.zeros(counts.numel(), dtype=power.dtype, device=power.device)
    sums.index_add_(0, ring.flatten(), power.reshape(-1))
    return sums / counts.clamp_min(1)


def hf_tail_db(s: BatchSpectra) -> float:
    """``10 log10(sum_{r >= 0.75 H/2} Pout(r) / sum_{r >= 0.75 H/2} Ptgt(r))`` from batch-summed
    ring means; < 0 too smooth, > 0 excess high frequency (+-inf for an all-zero tail)."""
    _, _, first = radial_index(*s.sxx.shape)
    out = radial_power(s.sxx)[first:].sum().item()
    tgt = radial_power(s.syy)[first:].sum().item()
    if out == tgt:
        return 0.0
    if out == 0.0 or tgt == 0.0:
        return -math.inf if out == 0.0 else math.inf
    return 10.0 * math.log10(out / tgt)


def checkerboard_scores(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """``cb2_incoh``, ``cb4_incoh``, ``cb2_ratio`` and ``hf_tail_db`` of a batch (see module doc).

    ``x_hat`` (outputs) and ``x`` (targets): (B, C, H, W) in [0, 1], H and W even; the
    channels of colour images are summed into the spectra like more images of the batch. Scores are
    batch statistics (spectra summed over the batch before dividing), so use a few hundred
    images. ``cb*_incoh`` is inf (nan if the output is zero too) when all targets are zero;
    ``cb2_ratio`` is 0 for a constant output.
    """
    return spectra_scores(batch_spectra(x_hat, x))


def spectra_scores(s: BatchSpectra) -> dict[str, float]:
    """The scores of :func:`checkerboard_scores` from already computed batch spectra (the
    callback shares them with the spectrum picture)."""
    masks = band_masks(*s.sxx.shape)
    dev = s.sxx.device
    incoh = incoherent_energy(s)
    total_target = s.syy.sum()
    nonconstant = (s.sxx.sum() - s.sxx[0, 0]).item()
    flat = _EMPTY_BIN * s.sxx.sum().item()  # below this the output is constant up to round-off
    on_k2 = s.sxx[masks.k2.to(dev)].sum()
    return {
        "cb2_incoh": (incoh[masks.band2.to(dev)].sum() / total_target).item(),
        "cb4_incoh": (incoh[masks.band4.to(dev)].sum() / total_target).item(),
        "cb2_ratio": (on_k2 / nonconstant).item() if nonconstant > flat else 0.0,
        "hf_tail_db": hf_tail_db(s),
    }
