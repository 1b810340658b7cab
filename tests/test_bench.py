"""convae-bench runs end to end and writes its numbers; NHWC changes speed, not results.
No timing assertions: the numbers depend on the machine and its load."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_script

from convae.models import UPSAMPLERS, build_autoencoder

# Every decoder, plus the options conf/upsample/ sets (ICNR init, even-overlap kernel).
MODES = [(m, {}) for m in sorted(UPSAMPLERS)] + [
    ("pixel_shuffle", {"icnr": True}),
    ("transposed", {"transposed_kernel_size": 4}),
]


@pytest.mark.slow
def test_bench_writes_every_number(tmp_path):
    run_script(
        "convae-bench",
        *("--repeats", "2", "--steps", "2", "--warmup", "1", "--json", "out.json"),
        *(
            "data.source=bundled",
            "model.depths=[4,4]",
            "callbacks.artifact_digits=100",
            "callbacks.artifact_images_every=3",
        ),
        cwd=tmp_path,
    )
    res = json.loads((tmp_path / "out.json").read_text())
    for path in ("convae", "plain_nchw"):
        t = res["train_images_per_s"][path]
        assert len(t["runs"]) == 2
        assert 0 < t["min"] <= t["median"] <= t["max"]
    assert len(res["ratio_paired"]) == 2
    assert set(res["inference_images_per_s"]) == {"nchw", "channels_last"}
    numbers = [
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
    assert res["config"]["depths"] == [4, 4]
    assert res["config"]["channels_last"] is True
    assert res["machine"]["cores_available"] >= 1


@pytest.mark.parametrize("upsample,options", MODES, ids=[f"{m}{o or ''}" for m, o in MODES])
def test_channels_last_gives_the_nchw_outputs(upsample, options):
    torch.manual_seed(0)
    nchw = build_autoencoder(depths=[4, 3, 2], upsample=upsample, **options)
    nhwc = build_autoencoder(depths=[4, 3, 2], upsample=upsample, **options)
    nhwc.load_state_dict(nchw.state_dict())
    nhwc.to(memory_format=torch.channels_last)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = nchw(x)
        got = nhwc(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == expected.shape == (3, 1, 28, 28)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
