"""What keeps a validation cheap: the image callbacks reuse the validation's own forward
pass, and the artifact figures are redrawn (blitted) rather than rebuilt. Real Trainer, real
data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import events

from convae.callbacks.checkerboard import CheckerboardScores
from convae.callbacks.reconstructions import ReconstructionGrid
from convae.metrics.spectrum_plots import ResidualFigure, SpectrumFigure, nice_ceiling
from convae.tracking.loggers import build_loggers
from convae.training.build import build_datamodule, build_module, build_trainer


def validate_counting_forwards(compose, tmp_path, *overrides: str):
    """trainer.validate on the bundled digits; returns the trainer, module, data and the
    number of images the network saw."""
    # 32-true: the comparisons below are exact, against a float32 reconstruct()
    cfg = compose("data.source=bundled", "model.depths=[4,4]", "trainer.precision=32-true",
                  "trainer.enable_progress_bar=false", *overrides)  # fmt: skip
    dm, module = build_datamodule(cfg), build_module(cfg)
    trainer = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path))
    seen: list[int] = []
    module.net.register_forward_hook(lambda net, args, out: seen.append(len(args[0])))
    trainer.validate(module, datamodule=dm, verbose=False)
    return trainer, module, dm, seen


def callback(trainer, kind):
    return next(c for c in trainer.callbacks if isinstance(c, kind))


@pytest.mark.parametrize("data", ["clean", "noisy"])
def test_pictures_and_scores_reuse_the_validation_forward_pass(compose, tmp_path, data):
    trainer, module, dm, seen = validate_counting_forwards(compose, tmp_path, f"data={data}")
    assert seen == [500]  # the one validation batch; nothing for the grid or the scores
    for kind, n in ((CheckerboardScores, 500), (ReconstructionGrid, 16)):
        inputs, x_hat, targets = callback(trainer, kind).fixed_digits(trainer, module, "val")
        expected_inputs, expected_targets = dm.fixed_digits(n, "val")
        torch.testing.assert_close(inputs, expected_inputs, rtol=0, atol=0)
        torch.testing.assert_close(targets, expected_targets, rtol=0, atol=0)
        torch.testing.assert_close(x_hat, module.reconstruct(inputs), rtol=0, atol=0)


def test_a_validation_with_pictures_computes_the_spectra_once(compose, tmp_path, monkeypatch):
    shapes = []
    for name in ("fft2", "rfft2"):
        monkeypatch.setattr(torch.fft, name, counting(getattr(torch.fft, name), name, shapes))
    validate_counting_forwards(compose, tmp_path)  # the step-0 kind: scores and pictures
    assert [e.step for e in events(tmp_path).Images("artifacts/spectrum")] == [0]
    # Outputs and targets, once each, as half spectra.
    assert shapes == [("rfft2", (500, 28, 28)), ("rfft2", (500, 28, 28))]


def counting(fn, name, calls):
    """``fn``, noting its name and input shape in ``calls`` at every call."""

    def counted(t, *args, **kwargs):
        calls.append((name, tuple(t.shape)))
        return fn(t, *args, **kwargs)

    return counted


def test_digits_the_validation_did_not_reach_are_reconstructed_for_the_scores(compose, tmp_path):
    trainer, module, _, seen = validate_counting_forwards(
        compose, tmp_path, "data.eval_batch_size=100", "trainer.limit_val_batches=2"
    )
    # Two validation batches of 100; the grid's 16 digits were among them, the 500 scored
    # digits were not, so the scores ran one forward pass of their own.
    assert seen == [100, 100, 500]
    inputs, x_hat, _ = callback(trainer, CheckerboardScores).fixed_digits(trainer, module, "val")
    assert len(x_hat) == 500
    torch.testing.assert_close(x_hat, module.reconstruct(inputs), rtol=0, atol=0)


def test_redrawn_figures_match_freshly_drawn_ones(bundled_digits):
    out = (bundled_digits + 0.05 * torch.rand_like(bundled_digits)).clamp(0, 1)
    other = torch.rand_like(bundled_digits)
    spectrum, residual = SpectrumFigure(), ResidualFigure()
    spectrum(other, bundled_digits), residual(other, bundled_digits)  # draw something else first
    np.testing.assert_array_equal(
        spectrum(out, bundled_digits), SpectrumFigure()(out, bundled_digits)
    )
    np.testing.assert_array_equal(
        residual(out, bundled_digits), ResidualFigure()(out, bundled_digits)
    )


@pytest.mark.parametrize("figure", [SpectrumFigure, ResidualFigure])
def test_blitted_redraws_match_a_full_draw_but_for_the_frame_edges(figure, bundled_digits):
    out = (bundled_digits + 0.05 * torch.rand_like(bundled_digits)).clamp(0, 1)
    fig = figure()
    fig(torch.rand_like(bundled_digits), bundled_digits)  # another colour scale first
    blitted = fig(out, bundled_digits)
    fig.canvas.draw()  # everything, the plain matplotlib way
    full = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    differ = (blitted != full).any(-1)
    # The images, titles and colour bars are all there; only the anti-aliased line where
    # an image meets its frame may differ.
    assert differ.mean() < 0.01, differ.mean()


def test_colour_scales_move_in_1_2_5_steps_so_redraws_reuse_the_background():
    assert [nice_ceiling(x) for x in (0.3, 1.0, 1.01, 2.5, 7.0, 0.00123)] == pytest.approx(
        [0.5, 1.0, 2.0, 5.0, 10.0, 0.002]
    )
