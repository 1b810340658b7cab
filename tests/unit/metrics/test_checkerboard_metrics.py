"""Checkerboard scores on real images: synthetic artifacts, filters, and the seed decoders,
each on MNIST digits (1 x 28 x 28) and on colour photo patches (3 x 32 x 32), with the same
expectations: the channels of colour images are summed into the spectra like a batch.

Patterns are added to the output and never clipped: clipping at 0 multiplies the pattern by
the digit mask on the (zero) background, which spreads its energy over every bin, so the
period-2 and period-4 scores would no longer be independent (and the growth no longer a
clean a^2). Blur uses circular padding, which makes it exactly a Fourier multiplier (a
shift-invariant filter on the DFT's circular domain); torchvision's reflect-padded blur is
checked too, with the looser bound.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from convae.data.photos import load_photos
from convae.data.sources import load_bundled
from convae.metrics import checkerboard
from convae.metrics.checkerboard import band_masks, batch_spectra, checkerboard_scores
from convae.metrics.spectrum_plots import ResidualFigure, SpectrumFigure, zoomed_pairs
from convae.models import ConvAutoencoder

AMPLITUDES = (0.005, 0.01, 0.02, 0.05)
SIGMAS = (0.5, 1.0, 2.0)
SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True)
def _one_thread(torch_threads) -> None:
    """Each test on one torch thread; the session's count comes back after it."""
    torch_threads(1)


@pytest.fixture(scope="module")
def mnist_digits() -> torch.Tensor:
    """500 real digits, 50 per class (the bundled set is sorted by class), (500, 1, 28, 28)."""
    return load_bundled().images[::10].to(torch.float32) / 255.0


@pytest.fixture(scope="module")
def photo_patches() -> torch.Tensor:
    """500 RGB test patches (500, 3, 32, 32) of scikit-image's held-out photographs."""
    arrays = load_photos(patch_size=32, counts=(1, 1, 500), grayscale=False, seed=0)
    return arrays.test_images.to(torch.float32) / 255.0


@pytest.fixture(params=["mnist", "photos"])
def digits(request: pytest.FixtureRequest) -> torch.Tensor:
    """Each test on both kinds of image (the name stays: most tests were written for digits)."""
    return request.getfixturevalue(
        {"mnist": "mnist_digits", "photos": "photo_patches"}[request.param]
    )


def period2(h: int, w: int) -> torch.Tensor:
    """(-1)^(i+j): the one-pixel checkerboard of a stride-2 stage."""
    i, j = torch.arange(h), torch.arange(w)
    return 1.0 - 2.0 * ((i[:, None] + j[None, :]) % 2).to(torch.float32)


def period4(h: int, w: int) -> torch.Tensor:
    """(-1)^(i//2 + j//2): a checkerboard of 2x2 blocks, as a stride-2 stage one level up."""
    i, j = torch.arange(h), torch.arange(w)
    return 1.0 - 2.0 * ((i[:, None] // 2 + j[None, :] // 2) % 2).to(torch.float32)


def expected_incoh(x: torch.Tensor, a: float) -> float:
    """A +-a pattern's energy over the images' (Parseval): what cb*_incoh should be near."""
    return a**2 / x.double().square().mean().item()


def gaussian_blur_circular(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]
    planes = x.reshape(-1, 1, *x.shape[-2:])  # each channel blurred on its own
    return F.conv2d(F.pad(planes, (r, r, r, r), mode="circular"), kernel).view_as(x)


def seed_model_outputs(x: torch.Tensor, seed: int, upsample: str, icnr: bool) -> torch.Tensor:
    torch.manual_seed(seed)
    model = ConvAutoencoder(
        depths=[16, 8, 8], upsample=upsample, icnr=icnr, in_channels=x.shape[1],
        image_size=x.shape[-1],
    ).eval()  # fmt: skip
    with torch.no_grad():
        return torch.sigmoid(model(x))


def test_band_masks_pick_the_stride_bins_for_28() -> None:
    m = band_masks(28, 28)
    assert m.k2.sum() == 3 and m.k4.sum() == 12
    assert m.band2.sum() == 27 and m.band4.sum() == 108  # 3 x 9 and 12 x 9 bins, no overlap
    assert not (m.band2 & m.band4).any() and not m.band2[0, 0] and not m.band4[0, 0]
    k4 = {tuple(k) for k in m.k4.nonzero().tolist()}
    assert all(ky % 7 == 0 and kx % 7 == 0 for ky, kx in k4)
    assert not k4 & {(0, 14), (14, 0), (14, 14), (0, 0)}


def test_a_perfect_reconstruction_scores_zero(digits: torch.Tensor) -> None:
    s = checkerboard_scores(digits, digits)
    assert s["cb2_incoh"] == pytest.approx(0.0, abs=1e-12)
    assert s["cb4_incoh"] == pytest.approx(0.0, abs=1e-12)
    assert s["hf_tail_db"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_contrast_change_is_not_a_checkerboard(digits: torch.Tensor, gain: float) -> None:
    s = checkerboard_scores(gain * digits, digits)
    assert s["cb2_incoh"] == pytest.approx(0.0, abs=1e-12)
    assert s["cb4_incoh"] == pytest.approx(0.0, abs=1e-12)
    assert s["hf_tail_db"] == pytest.approx(20 * math.log10(gain), abs=1e-6)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_circular_blur_has_no_incoherent_energy_and_a_negative_tail(
    digits: torch.Tensor, sigma: float
) -> None:
    s = checkerboard_scores(gaussian_blur_circular(digits, sigma), digits)
    assert s["cb2_incoh"] <= 1e-12  # exact Fourier multiplier: zero up to round-off
    assert s["cb4_incoh"] <= 1e-12
    assert s["hf_tail_db"] < -3.0


@pytest.mark.parametrize("sigma", SIGMAS)
def test_reflect_padded_blur_stays_below_the_artifact_floor(
    digits: torch.Tensor, sigma: float
) -> None:
    blurred = TF.gaussian_blur(digits, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
    s = checkerboard_scores(blurred, digits)
    assert s["cb2_incoh"] <= 5e-5
    # -2.3 dB on photo patches at sigma 0.5: their reflected borders keep some edges sharp
    assert s["hf_tail_db"] < -2.0


def test_period2_pattern_raises_cb2_scores_strictly_with_amplitude(digits: torch.Tensor) -> None:
    scores = [
        checkerboard_scores(digits + a * period2(*digits.shape[-2:]), digits) for a in AMPLITUDES
    ]
    incoh = [s["cb2_incoh"] for s in scores]
    ratio = [s["cb2_ratio"] for s in scores]
    assert all(lo < hi for lo, hi in itertools.pairwise(incoh)), incoh
    assert all(lo < hi for lo, hi in itertools.pairwise(ratio)), ratio
    assert all(s["hf_tail_db"] > 0 for s in scores)
    # Quadratic in the amplitude (to float32 rounding of the inputs), and about a^2 / E[x^2]
    # (Parseval: the pattern's energy over the target's): ~1e-3 at a = 0.01 on MNIST.
    assert incoh[2] / incoh[1] == pytest.approx(4.0, rel=1e-5)
    assert 0.3 < incoh[1] / expected_incoh(digits, AMPLITUDES[1]) < 3


def test_period4_pattern_raises_cb4_incoh_strictly_with_amplitude(digits: torch.Tensor) -> None:
    scores = [
        checkerboard_scores(digits + a * period4(*digits.shape[-2:]), digits) for a in AMPLITUDES
    ]
    incoh = [s["cb4_incoh"] for s in scores]
    assert all(lo < hi for lo, hi in itertools.pairwise(incoh)), incoh
    assert incoh[2] / incoh[1] == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("a", AMPLITUDES)
def test_period2_and_period4_scores_do_not_leak_into_each_other(
    digits: torch.Tensor, a: float
) -> None:
    clean = checkerboard_scores(digits, digits)
    with_p4 = checkerboard_scores(digits + a * period4(*digits.shape[-2:]), digits)
    with_p2 = checkerboard_scores(digits + a * period2(*digits.shape[-2:]), digits)
    assert abs(with_p4["cb2_incoh"] - clean["cb2_incoh"]) <= 1e-9
    assert abs(with_p2["cb4_incoh"] - clean["cb4_incoh"]) <= 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_shuffle_puts_stride2_energy_that_nearest_and_icnr_do_not(
    digits: torch.Tensor, seed: int
) -> None:
    decoders = {
        "nearest": ("nearest", False),
        "pixel_shuffle": ("pixel_shuffle", False),
        "icnr": ("pixel_shuffle", True),
    }
    ratio = {}
    for name, (mode, icnr) in decoders.items():
        outputs = seed_model_outputs(digits, seed, mode, icnr)
        ratio[name] = checkerboard_scores(outputs, digits)["cb2_ratio"]
    assert ratio["pixel_shuffle"] >= 5 * ratio["nearest"], ratio
    assert ratio["icnr"] * 10 <= ratio["pixel_shuffle"], ratio


@pytest.mark.parametrize("extra", [2, 4])
def test_any_even_size_gives_finite_scores_that_see_the_patterns(
    digits: torch.Tensor, extra: int
) -> None:
    size, pad = digits.shape[-1] + extra, extra // 2
    x = F.pad(digits, (pad, extra - pad, pad, extra - pad))
    for scores in (
        checkerboard_scores(x, x),
        checkerboard_scores(gaussian_blur_circular(x, 1.0), x),
        checkerboard_scores(x + 0.01 * period2(size, size), x),
    ):
        assert all(math.isfinite(v) for v in scores.values()), scores
    # 2e-4 on MNIST digits; a period-4 pattern on a side not divisible by 4 (30, 34) leaks
    # part of its energy past its band (0.29 of a^2 / E[x^2] on 34x34 photo patches)
    floor = 0.2 * expected_incoh(x, 0.01)
    assert checkerboard_scores(x + 0.01 * period2(size, size), x)["cb2_incoh"] > floor
    assert checkerboard_scores(x + 0.01 * period4(size, size), x)["cb4_incoh"] > floor


def test_constant_output_has_zero_stride2_share_and_a_very_negative_tail(
    digits: torch.Tensor,
) -> None:
    s = checkerboard_scores(torch.full_like(digits, 0.3), digits)
    assert s["cb2_ratio"] == 0.0
    assert s["cb2_incoh"] == pytest.approx(0.0, abs=1e-12)
    assert s["hf_tail_db"] < -100


def test_odd_sizes_are_refused(digits: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="even"):
        checkerboard_scores(digits[..., :27, :27], digits[..., :27, :27])


def test_scores_use_one_batched_fft_per_input_not_a_loop_per_image(
    digits: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, ...]] = []
    rfft2 = torch.fft.rfft2

    def counting_rfft2(t: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return rfft2(t, *args, **kwargs)

    monkeypatch.setattr(checkerboard.torch.fft, "rfft2", counting_rfft2)
    checkerboard_scores(digits + 0.01 * period2(*digits.shape[-2:]), digits)
    planes = (digits.shape[0] * digits.shape[1], *digits.shape[-2:])  # channels as images
    assert calls == [planes, planes]


@pytest.mark.parametrize("shape", [(500, 1, 28, 28), (6, 3, 32, 16), (4, 4, 6)])
def test_batch_spectra_from_half_spectra_equal_the_full_fft_ones(
    shape: tuple[int, ...],
) -> None:
    g = torch.Generator().manual_seed(0)
    x_hat, x = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
    fa = torch.fft.fft2(x_hat.reshape(-1, *shape[-2:]).double())
    fb = torch.fft.fft2(x.reshape(-1, *shape[-2:]).double())
    s = batch_spectra(x_hat, x)
    for got, want in ((s.sxx, fa.abs().square().sum(0)), (s.syy, fb.abs().square().sum(0)),
                      (s.sxy, (fa * fb.conj()).sum(0))):  # fmt: skip
        assert got.shape == want.shape and got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-9)


def test_scores_do_not_depend_on_batch_order(digits: torch.Tensor) -> None:
    out = gaussian_blur_circular(digits, 1.0) + 0.01 * period2(*digits.shape[-2:])
    perm = torch.randperm(digits.shape[0], generator=torch.Generator().manual_seed(0))
    a = checkerboard_scores(out, digits)
    b = checkerboard_scores(out[perm], digits[perm])
    assert a == pytest.approx(b, rel=1e-9, abs=1e-15)


def test_the_spectrum_figure_is_an_rgb_picture_of_three_panels(digits: torch.Tensor) -> None:
    arr = SpectrumFigure()(digits + 0.02 * period2(*digits.shape[-2:]), digits)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.shape[1] > 2 * arr.shape[0]  # three panels side by side
    assert np.unique(arr.reshape(-1, 3), axis=0).shape[0] > 50  # colour maps, not blank


def test_the_residual_figure_is_an_rgb_picture_with_content(digits: torch.Tensor) -> None:
    arr = ResidualFigure()(gaussian_blur_circular(digits, 1.0), digits)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.std() > 0 and np.unique(arr.reshape(-1, 3), axis=0).shape[0] > 20


def test_zoomed_pairs_keep_single_pixel_patterns_as_blocks(digits: torch.Tensor) -> None:
    out = digits + 0.05 * period2(*digits.shape[-2:])
    grid = zoomed_pairs(out, digits, n=8, zoom=4)
    assert grid.dtype == torch.float32 and grid.shape[0] in (1, 3)
    # Two rows and eight columns of 4x tiles, 4-pixel padding.
    t = 4 * digits.shape[-1]
    assert grid.shape[1:] == (2 * t + 3 * 4, 8 * t + 9 * 4)
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    tile = grid[0, 4 : 4 + t, 4 : 4 + t]  # first reconstruction, its first channel
    expected = F.interpolate(out[:1].clamp(0, 1), scale_factor=4, mode="nearest")[0, 0]
    torch.testing.assert_close(tile, expected)
