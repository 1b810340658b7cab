"""FastSSIM gives torchmetrics' SSIM, only faster (convae/metrics/ssim.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim
from torchmetrics.image import StructuralSimilarityIndexMeasure

from convae.metrics.ssim import FastSSIM, gaussian_ssim, reflect_window_matrix


def degraded(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A blurred, noisy, clipped copy: what a half-trained autoencoder returns."""
    g = torch.Generator().manual_seed(seed)
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (blurred + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_per_image_ssim_matches_torchmetrics_on_real_digits(bundled_digits):
    out = degraded(bundled_digits)
    expected = tm_ssim(out, bundled_digits, data_range=1.0, reduction="none")
    got = gaussian_ssim(out, bundled_digits, data_range=1.0)
    assert expected.std() > 0.01  # the images differ enough for the check to mean something
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)


def test_ssim_and_psnr_of_colour_photo_patches_match_torchmetrics():
    """Colour images: SSIM over all channels per image, as torchmetrics computes it."""
    from torchmetrics.image import PeakSignalNoiseRatio

    from convae.data.photos import load_photos
    from convae.training.module import eval_metrics

    patches = load_photos(patch_size=32, counts=(1, 1, 64), grayscale=False, seed=0)
    target = patches.test_images.float() / 255
    out = degraded(target)
    expected = tm_ssim(out, target, data_range=1.0, reduction="none")
    # float64: in float32 the two summation orders differ by up to 1e-5 on these brighter,
    # busier images (2e-6 on digits)
    expected64 = tm_ssim(out.double(), target.double(), data_range=1.0, reduction="none")
    got64 = gaussian_ssim(out.double(), target.double(), data_range=1.0)
    torch.testing.assert_close(got64, expected64, atol=1e-12, rtol=0)
    metrics = eval_metrics("test")
    metrics["test/ssim"].update(out, target)
    metrics["test/psnr"].update(out, target)
    torch.testing.assert_close(metrics["test/ssim"].compute(), expected.mean(), atol=2e-5, rtol=0)
    psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="none")(out, target)
    torch.testing.assert_close(metrics["test/psnr"].compute(), psnr.mean(), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "shape,sigma,data_range",
    [
        ((6, 3, 32, 29), (1.5, 1.5), 1.0),
        ((4, 1, 9, 12), (1.0, 2.0), 2.0),
        ((3, 2, 6, 6), (1.5, 1.5), 1.0),
    ],
)
def test_per_image_ssim_matches_torchmetrics_for_other_shapes_windows_and_ranges(
    shape, sigma, data_range
):
    g = torch.Generator().manual_seed(1)
    target = data_range * torch.rand(shape, generator=g)
    preds = (target + 0.2 * data_range * torch.randn(shape, generator=g)).clamp(0, data_range)
    expected = tm_ssim(preds, target, data_range=data_range, sigma=sigma, reduction="none")
    got = gaussian_ssim(preds, target, data_range=data_range, sigma=sigma)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)


def test_window_matrix_is_the_reflect_padded_gaussian_filter():
    x = torch.rand(5, 17, dtype=torch.float64)
    m = reflect_window_matrix(17, 1.5, torch.float64, torch.device("cpu"))
    taps = torch.arange(-5, 6, dtype=torch.float64)
    g = torch.exp(-0.5 * (taps / 1.5) ** 2)
    expected = F.conv1d(F.pad(x[:, None], (5, 5), mode="reflect"), (g / g.sum()).view(1, 1, -1))
    torch.testing.assert_close(x @ m, expected[:, 0])
    torch.testing.assert_close(m.sum(0), torch.ones(17, dtype=torch.float64))  # weights sum to 1


def test_metric_accumulates_batches_like_torchmetrics(bundled_digits):
    out = degraded(bundled_digits, seed=2)
    fast, reference = FastSSIM(data_range=1.0), StructuralSimilarityIndexMeasure(data_range=1.0)
    for lo in range(0, 500, 180):  # uneven batches: the mean is over images, not batches
        fast.update(out[lo : lo + 180], bundled_digits[lo : lo + 180])
        reference.update(out[lo : lo + 180], bundled_digits[lo : lo + 180])
    assert fast.total == reference.total == 500
    torch.testing.assert_close(fast.compute(), reference.compute(), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data_range": None},
        {"data_range": 1.0, "reduction": "none"},
        {"data_range": 1.0, "gaussian_kernel": False},
    ],
)
def test_settings_without_a_fast_path_fall_back_to_torchmetrics(bundled_digits, kwargs):
    out = degraded(bundled_digits[:64])
    fast, reference = FastSSIM(**kwargs), StructuralSimilarityIndexMeasure(**kwargs)
    fast.update(out, bundled_digits[:64])
    reference.update(out, bundled_digits[:64])
    torch.testing.assert_close(fast.compute(), reference.compute())


def test_mismatched_shapes_get_torchmetrics_error():
    with pytest.raises(RuntimeError, match="same shape"):
        FastSSIM(data_range=1.0).update(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 27, 28))
