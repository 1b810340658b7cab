"""The debug/ group: Lightning's debugging runs through the real convae-train, and the
samplers that keep overfit_batches on the same digits."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import events, results, scalars, train

import convae.conf
from convae.data.datamodule import EpochShuffle, InOrder

PRESETS = sorted(p.stem for p in (Path(convae.conf.__file__).parent / "experiment").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_runs_under_debug_fdr(preset: str, tmp_path: Path) -> None:
    _, run = train(tmp_path, f"experiment={preset}", "debug=fdr")
    done = results(run)
    assert done["status"] == "completed" and done["global_step"] == 1
    assert done["config"]["trainer"]["fast_dev_run"] is True
    assert "test/loss" in done["metrics"]
    assert not list((run / "checkpoints").glob("*.ckpt"))  # fast_dev_run saves none


def test_overfit_batches_sees_the_same_digits_every_epoch() -> None:
    fixed = InOrder(4000, seed=0)
    shuffled = EpochShuffle(4000, seed=0)
    orders = []
    for epoch in (0, 1):
        fixed.set_epoch(epoch), shuffled.set_epoch(epoch)
        orders.append((list(fixed), list(shuffled)))
    assert orders[0][0] == orders[1][0] == list(range(4000))
    assert orders[0][1] != orders[1][1]


@pytest.mark.slow
def test_debug_overfit_trains_the_same_batches_until_the_loss_falls(tmp_path: Path) -> None:
    proc, run = train(tmp_path, "debug=overfit", "trainer.max_epochs=20")
    # Lightning swaps a shuffling sampler and warns; convae's samplers are sequential then.
    assert "turning off" not in proc.stderr
    assert results(run)["global_step"] == 2 * 20  # overfit_batches=2 per epoch
    losses = [v for _, v in scalars(events(run), "train/loss")]
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_debug_limit_and_profiler_run_short_real_runs(tmp_path: Path) -> None:
    (tmp_path / "limit").mkdir(), (tmp_path / "profiler").mkdir()
    _, run = train(tmp_path / "limit", "debug=limit")
    assert results(run)["global_step"] == 3 * 5  # 3 epochs of 5 batches
    proc, run = train(tmp_path / "profiler", "debug=profiler", "trainer.limit_train_batches=3")
    assert "FIT Profiler Report" in proc.stdout + proc.stderr
    assert results(run)["global_step"] == 3
