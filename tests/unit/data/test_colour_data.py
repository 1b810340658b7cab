"""Beyond MNIST, end to end: photo patches, image folders and CIFAR-10 through the real
console scripts, and the config checks that size the model to the data before loading it.

The loaders' own errors are in tests/unit/data/test_image_sources.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import events, results, run_script
from PIL import Image
from test_image_sources import write_cifar

from convae.config.errors import ConfigError
from convae.config.validate import validate
from convae.data.datamodule import ImageDataModule
from convae.data.photos import PHOTOS, load_photos
from convae.training.build import model_arguments
from convae.training.module import load_module

ENV = {"OMP_NUM_THREADS": "1"}
QUIET = ("threads=1", "trainer.enable_progress_bar=false")
# A few hundred patches and 100 artifact images: seconds per run, every callback exercised.
SMALL_PHOTOS = (
    "data.source=photos", "data.photo_patches=[400,100,100]", "data.batch_size=50",
    "callbacks.artifact_digits=100",
)  # fmt: skip


def colourful(png: bytes | Path) -> bool:
    """True when the picture has pixels whose red and green differ clearly (not grey)."""
    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    return bool((np.abs(rgb[..., 0] - rgb[..., 1]) > 30).any())


@pytest.fixture(scope="module")
def photo_sweep(tmp_path_factory) -> Path:
    """Two seeds of 8 steps on photo patches, validated every 4 steps."""
    cwd = tmp_path_factory.mktemp("photos")
    run_script(
        "convae-train", "-m", *SMALL_PHOTOS, *QUIET, "trainer.max_steps=8",
        "trainer.val_check_interval=4", "seed=0,1", "hydra.sweep.dir=sweep", cwd=cwd, **ENV,
    )  # fmt: skip
    return cwd / "sweep"


@pytest.mark.slow
def test_photo_run_records_its_shape_and_source_and_builds_an_rgb_model(photo_sweep):
    run = photo_sweep / "seed=0"
    r = results(run)
    assert (r["data_source"], r["image_channels"], r["image_size"]) == ("photos", 3, 32)
    assert r["config"]["data"]["source"] == "photos" and r["global_step"] == 8
    module = load_module(run / r["best_checkpoint"])
    assert module.hparams.model["in_channels"] == 3 and module.hparams.model["image_size"] == 32
    assert module.net.encoder[0].in_channels == 3 and module.net.decoder[-1].out_channels == 3


@pytest.mark.slow
def test_photo_run_logs_colour_reconstruction_grids(photo_sweep):
    grids = events(photo_sweep / "seed=0").Images("images/reconstructions")
    assert len(grids) == 3 and grids[0].step == 0  # step 0, then after steps 4 and 8
    assert colourful(grids[-1].encoded_image_string)  # the targets row at least


@pytest.mark.slow
def test_eval_and_report_show_photo_runs_in_colour(photo_sweep):
    run = photo_sweep / "seed=0"
    # quoted: the job folder's name has an "=" that Hydra's override grammar would parse
    run_script("convae-eval", f"ckpt='{run}'", "threads=1", cwd=photo_sweep, **ENV)
    levels = json.loads((run / "eval" / "eval.json").read_text())["levels"]
    assert len(levels) == 4 and all(np.isfinite(v) for lv in levels for v in lv.values())
    assert colourful(run / "eval" / "eval.png")
    run_script("convae-report", str(photo_sweep), "--out", "report", cwd=photo_sweep, **ENV)
    assert colourful(photo_sweep / "report" / "reconstructions.png")
    assert "photos" in (photo_sweep / "report" / "report.md").read_text()


def write_folder(root: Path, n: int, size: tuple[int, int] = (36, 36)) -> None:
    """``n`` colour PNGs: smooth colour gradients with seeded noise, in two subfolders."""
    g = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    for i in range(n):
        base = np.stack([xx * 7 + i, yy * 5, (xx + yy) * 3 + 40 * (i % 3)], -1) % 256
        pixels = np.clip(base + g.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
        (root / f"set{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / f"set{i % 2}" / f"img{i:02d}.png")


@pytest.mark.slow
@pytest.mark.parametrize("grayscale,channels", [(False, 3), (True, 1)])
def test_a_folder_of_40_pngs_trains_in_colour_or_grey(tmp_path, grayscale, channels):
    write_folder(tmp_path / "images", 40)
    run_script(
        "convae-train", "data.source=folder", f"data.root={tmp_path / 'images'}",
        "data.resize=crop", f"data.grayscale={grayscale}", "data.batch_size=8",
        "trainer.max_steps=3", *QUIET, "hydra.run.dir=run", cwd=tmp_path, **ENV,
    )  # fmt: skip
    r = results(tmp_path / "run")
    assert (r["data_source"], r["image_channels"], r["image_size"]) == ("folder", channels, 32)
    assert r["status"] == "completed" and r["global_step"] == 3


@pytest.mark.slow
def test_a_folder_of_mixed_sizes_fails_in_one_line_naming_the_file(tmp_path):
    write_folder(tmp_path / "images", 4, size=(32, 32))
    Image.new("RGB", (40, 30)).save(tmp_path / "images" / "set0" / "odd.png")
    proc = run_script(
        "convae-train", "data.source=folder", f"data.root={tmp_path / 'images'}", *QUIET,
        "hydra.run.dir=run", cwd=tmp_path, check=False, **ENV,
    )  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "odd.png" in last and "data.resize" in last, proc.stderr
    r = results(tmp_path / "run")  # recorded as failed, so a sweep's report lists it
    assert r["status"] == "failed" and "odd.png" in r["error"] and "global_step" not in r


@pytest.mark.slow
def test_cifar10_from_its_python_batches_trains_without_the_network(tmp_path):
    write_cifar(tmp_path / "data", train_n=8, test_n=6)
    run_script(
        "convae-train", "data.source=cifar10", "data.root=data", "data.batch_size=8",
        "trainer.max_steps=2", *QUIET, "hydra.run.dir=run", cwd=tmp_path, **ENV,
    )  # fmt: skip
    r = results(tmp_path / "run")
    assert (r["data_source"], r["image_channels"], r["image_size"]) == ("cifar10", 3, 32)


def test_cifar10_grayscale_is_pils_luma(tmp_path):
    write_cifar(tmp_path, train_n=8, test_n=6)
    colour = ImageDataModule(source="cifar10", root=str(tmp_path))
    grey = ImageDataModule(source="cifar10", root=str(tmp_path), grayscale=True)
    colour.setup(), grey.setup()
    assert grey.shape.channels == 1 and grey.test_set.images.shape == (6, 1, 32, 32)
    rgb = colour.test_set.images[0].permute(1, 2, 0).numpy()
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.array_equal(grey.test_set.images[0, 0].numpy(), luma)


def test_photo_splits_come_from_different_photographs_and_are_seeded():
    by_split = {s: {f for f, split in PHOTOS.items() if split == s} for s in PHOTOS.values()}
    assert set(by_split) == {"train", "val", "test"}
    assert not (by_split["train"] & (by_split["val"] | by_split["test"]))
    a = load_photos(patch_size=32, counts=(60, 20, 20), grayscale=False, seed=0)
    b = load_photos(patch_size=32, counts=(60, 20, 20), grayscale=False, seed=0)
    c = load_photos(patch_size=32, counts=(60, 20, 20), grayscale=False, seed=1)
    assert a.images.shape == (60, 3, 32, 32) and a.val_images.shape == (20, 3, 32, 32)
    assert torch.equal(a.test_images, b.test_images)
    assert not torch.equal(a.test_images, c.test_images)
    grey = load_photos(patch_size=16, counts=(6, 2, 2), grayscale=True, seed=0)
    assert grey.images.shape == (6, 1, 16, 16)


def test_noise_is_drawn_for_each_channel():
    dm = ImageDataModule(source="photos", photo_patches=(10, 10, 10), noise_std=0.5)
    dm.setup()
    noise = dm.val_set.noisy - dm.val_set.images.float() / 255
    assert noise.shape == (10, 3, 32, 32)
    assert not torch.equal(noise[:, 0], noise[:, 1])


def test_photos_build_a_three_channel_model_for_their_size(compose):
    args = model_arguments(compose("data.source=photos", "data.image_size=48"))
    assert (args["in_channels"], args["image_size"]) == (3, 48)
    digits = model_arguments(compose("data.source=bundled"))
    assert (digits["in_channels"], digits["image_size"]) == (1, 28)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["data.image_size=32"], "data.image_size"),  # MNIST has one size
        (["data.source=cifar10", "data.image_size=64"], "data.image_size"),
        (["data.source=photos", "data.image_size=33"], "data.image_size"),  # odd
        (["data.source=photos", "data.image_size=400"], "data.image_size"),  # > photographs
        (["data.source=photos", "data.image_size=4"], "model.depths"),  # 3 stages: 4 -> 1
        (["data.source=folder", "data.resize=stretch"], "data.resize"),
        (["data.source=photos", "data.photo_patches=[10,10]"], "data.photo_patches"),
    ],
)
def test_a_size_the_model_cannot_take_is_refused_before_loading(compose, overrides, key):
    cfg = compose(*overrides, validate=False)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(f"{key}=") and "\n" not in message
