"""The latent space on show at the end of a real run: codes for TensorBoard's projector with
labels and thumbnails, decoded interpolations and random codes in the event file, and the
off-manifold checkerboard scores in results.json, metrics.csv and the events."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from google.protobuf import text_format
from helpers import events, results, scalars, train
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from convae.callbacks.latent import IMAGE_TAGS, SCORES
from convae.data.datamodule import ImageDataModule

STEPS = 20  # one epoch of the bundled split: the last validation sees the final weights


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    _, folder = train(tmp_path_factory.mktemp("latent"), f"trainer.max_steps={STEPS}",
                      "trainer.precision=32-true", "test=false")  # fmt: skip
    return folder


@pytest.mark.slow
def test_the_scores_of_off_manifold_decodes_are_recorded(run_dir: Path) -> None:
    metrics = results(run_dir)["metrics"]
    tags = [f"latent/{s}" for s in SCORES]
    assert all(math.isfinite(metrics[t]) and metrics[t] >= 0 for t in tags)
    # decodes of the digits' own codes are the validation's reconstructions
    assert metrics["latent/cb2_ratio_recon"] == pytest.approx(metrics["val/cb2_ratio"], rel=1e-4)
    acc = events(run_dir)
    with (run_dir / "metrics.csv").open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r.get(tags[0])]
    for tag in tags:
        assert scalars(acc, tag) == [(STEPS, pytest.approx(metrics[tag], rel=1e-6))]
        assert float(rows[0][tag]) == pytest.approx(metrics[tag], rel=1e-6)


@pytest.mark.slow
def test_interpolations_and_random_codes_are_pictures_at_the_last_step(run_dir: Path) -> None:
    acc = events(run_dir)
    (interp,) = acc.Images(IMAGE_TAGS[0])
    (random,) = acc.Images(IMAGE_TAGS[1])
    assert interp.step == random.step == STEPS
    assert (interp.height, interp.width) == (1 + 8 * 29, 1 + 10 * 29)  # 8 pairs x 10 steps
    assert (random.height, random.width) == (1 + 8 * 29, 1 + 8 * 29)  # 64 codes


@pytest.mark.slow
def test_the_projector_gets_the_codes_with_labels_and_thumbnails(run_dir: Path) -> None:
    config = text_format.Parse((run_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    assert embedding.sprite.single_image_dim == [28, 28]
    # the paths as the projector plugin reads them, relative to the run folder
    codes = [ln.split("\t") for ln in (run_dir / embedding.tensor_path).read_text().splitlines()]
    assert len(codes) == 500 and len(codes[0]) == 8 * 4 * 4  # depths 16-8-8: 8 x 4 x 4
    dm = ImageDataModule(source="bundled")
    dm.setup()
    labels = (run_dir / embedding.metadata_path).read_text().split()
    assert labels == [str(int(v)) for v in dm.fixed_labels(500, "val")]
    assert (run_dir / embedding.sprite.image_path).stat().st_size > 0


def test_validation_labels_are_kept_and_stratified() -> None:
    dm = ImageDataModule(source="bundled")
    dm.setup()
    labels = dm.fixed_labels(500, "val")
    assert torch.bincount(labels).tolist() == [50] * 10
    assert len(dm.test_set.labels) == len(dm.test_set) == 500
