"""convae-bench runs end to end and writes its numbers (speed, precision, FLOPs, roof);
NHWC changes speed, not results. No timing assertions: the numbers depend on the machine
and its load."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_script

from convae.bench.cli import compose_config
from convae.bench.roofline import flops_per_image
from convae.config.precision import resolve_precision
from convae.models import UPSAMPLERS, ConvAutoencoder
from convae.training.build import build_module

# Every decoder, plus the options conf/upsample/ sets (ICNR init, even-overlap kernel).
MODES = [(m, {}) for m in sorted(UPSAMPLERS)] + [
    ("pixel_shuffle", {"icnr": True}),
    ("transposed", {"transposed_kernel_size": 4}),
]

TINY_RUN = ("--repeats", "2", "--steps", "2", "--warmup", "1", "--json", "out.json")


def conv_flops(c_in: int, c_out: int, size: int, k: int = 3) -> int:
    """A 'same' k x k convolution's forward FLOPs on one image: 2 per multiply-add."""
    return 2 * c_in * c_out * k * k * size * size


def seed_autoencoder_flops() -> int:
    """By hand, one image through the seed autoencoder (16-8-8, nearest resize + conv):
    the backward pass costs twice the forward (input and weight gradients) except at the
    first conv, whose input (the image) needs no gradient. 8,918,784 FLOPs."""
    convs = [
        *((1, 16, 28), (16, 8, 14), (8, 8, 7)),  # encoder, each conv before a 2x2 pool
        *((8, 8, 7), (8, 8, 14), (8, 16, 28)),  # decoder: resize, then the mirrored depth
        (16, 1, 28),  # logits
    ]
    forward = sum(conv_flops(*c) for c in convs)
    return 3 * forward - conv_flops(*convs[0])


def test_flops_per_image_counts_the_seed_autoencoders_forward_and_backward():
    cfg = compose_config(["experiment=seed_autoencoder"])
    module = build_module(cfg)
    images = torch.randint(0, 256, (cfg.data.batch_size, 1, 28, 28), dtype=torch.uint8)
    assert flops_per_image(cfg, module, images) == pytest.approx(seed_autoencoder_flops(), rel=0.1)


@pytest.mark.slow
def test_bench_writes_every_number(tmp_path):
    proc = run_script(
        "convae-bench",
        *TINY_RUN,
        *(
            "data.source=bundled",
            "experiment=seed_autoencoder",
            "callbacks.artifact_digits=100",
            "callbacks.artifact_images_every=3",
        ),
        cwd=tmp_path,
    )
    res = json.loads((tmp_path / "out.json").read_text())
    # The default precision, auto resolved, timed against 32-true where they differ.
    assert res["precision_used"] == resolve_precision("auto", "cpu").value
    paths = ["convae", "plain_nchw"] + (["convae_fp32"] if res["fp32_timed"] else [])
    assert res["fp32_timed"] == (res["precision_used"] != "32-true")
    assert set(res["train_images_per_s"]) == set(paths)
    for path in paths:
        t = res["train_images_per_s"][path]
        assert len(t["runs"]) == 2
        assert 0 < t["min"] <= t["median"] <= t["max"]
    assert len(res["ratio_paired"]) == 2
    assert len(res["speedup_vs_fp32_paired"]) == (2 if res["fp32_timed"] else 0)
    # How close to the hardware: FLOPs as counted by hand, against the roof of the
    # precision used, measured.
    assert res["flops_per_image"] == pytest.approx(seed_autoencoder_flops(), rel=0.1)
    assert set(res["roof_gflops"]) == {"fp32", "bf16"}
    assert res["achieved_gflops"] == pytest.approx(
        res["flops_per_image"] * res["train_images_per_s"]["convae"]["median"] / 1e9
    )
    roof = "bf16" if res["precision_used"] == "bf16-mixed" else "fp32"
    assert res["roof_fraction"] == pytest.approx(res["achieved_gflops"] / res["roof_gflops"][roof])
    assert f"of the {roof} roof" in proc.stdout and "MFLOP per training image" in proc.stdout
    assert set(res["inference_images_per_s"]) == {"nchw", "channels_last"}
    numbers = [
        res["speedup_vs_fp32"],
        *res["speedup_vs_fp32_paired"],
        *res["roof_gflops"].values(),
        res["achieved_gflops"],
        res["roof_fraction"],
        res["ratio_median"],
        *res["ratio_paired"],
        *res["inference_images_per_s"].values(),
        res["validation_fraction_of_epoch"],
        res["peak_rss_mb"],
        res["seconds_to_first_step"],
    ]
    assert all(isinstance(v, float) and v > 0 for v in numbers), numbers
    # One validation per epoch over a whole picture cycle (callbacks.artifact_images_every).
    assert len(res["validation_seconds_runs"]) == 3
    assert res["config"]["depths"] == [16, 8, 8]
    assert res["config"]["channels_last"] is True
    assert res["machine"]["cores_available"] >= 1


# convae-bench as on a CPU without native bf16: no AMX or AVX512-BF16 flags to find.
NO_BF16_CPU = (
    "import convae.bench.cli, convae.config.precision; "
    "convae.config.precision.cpu_bf16_flags = convae.bench.cli.cpu_bf16_flags = "
    "lambda cpuinfo=None: []; convae.bench.cli.main()"
)


@pytest.mark.slow
def test_bench_without_bf16_hardware_times_fp32_once(tmp_path):
    proc = run_script(
        "python",
        *("-c", NO_BF16_CPU, *TINY_RUN),
        *("data.source=bundled", "model.depths=[4,4]", "callbacks.artifact_images_every=1"),
        cwd=tmp_path,
    )
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["precision_used"] == "32-true" and res["machine"]["cpu_bf16_flags"] == []
    # The default is the reference: 1.0 by construction, not a second timing of the same.
    assert res["speedup_vs_fp32"] == 1.0 and res["speedup_vs_fp32_paired"] == []
    assert res["fp32_timed"] is False
    assert set(res["train_images_per_s"]) == {"convae", "plain_nchw"}
    assert "32-true timing was skipped" in proc.stdout
    # The bf16 roof is still measured (emulated), and shown.
    assert res["roof_gflops"]["bf16"] > 0 and "bf16 emulated" in proc.stdout
    fp32_roof = res["roof_gflops"]["fp32"]
    assert res["roof_fraction"] > 0
    assert res["roof_fraction"] == pytest.approx(res["achieved_gflops"] / fp32_roof)
    assert len(res["validation_seconds_runs"]) == 1


@pytest.mark.parametrize("upsample,options", MODES, ids=[f"{m}{o or ''}" for m, o in MODES])
def test_channels_last_gives_the_nchw_outputs(upsample, options):
    torch.manual_seed(0)
    nchw = ConvAutoencoder(depths=[4, 3, 2], upsample=upsample, **options)
    nhwc = ConvAutoencoder(depths=[4, 3, 2], upsample=upsample, **options)
    nhwc.load_state_dict(nchw.state_dict())
    nhwc.to(memory_format=torch.channels_last)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = nchw(x)
        got = nhwc(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == expected.shape == (3, 1, 28, 28)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
