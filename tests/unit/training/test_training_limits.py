"""A run whose trainer.max_steps comes after its trainer.max_epochs says so at its start:
Lightning stops at whichever limit comes first, silently."""

from __future__ import annotations

import pytest

from convae.training.run import unreachable_max_steps


@pytest.mark.parametrize(
    ("overrides", "images", "world", "says"),
    [(["trainer.max_steps=30", "trainer.max_epochs=1"], 4000, 1, "stops training at step 20"),
     (["trainer.max_steps=30", "trainer.max_epochs=2"], 4000, 1, None),  # 40 >= 30
     (["trainer.max_steps=30", "trainer.max_epochs=2"], 4000, 2, "at step 20"),  # 10 per epoch
     (["trainer.max_steps=30", "trainer.max_epochs=-1"], 4000, 1, None),  # no epoch limit
     (["trainer.max_steps=-1"], 4000, 1, None),
     (["trainer.max_steps=30", "trainer.max_epochs=1", "trainer.limit_train_batches=5"],
      4000, 1, "at step 5"),
     (["trainer.max_steps=30", "trainer.max_epochs=1", "trainer.fast_dev_run=true"], 4000, 1,
      None)],
)  # fmt: skip
def test_a_max_steps_that_max_epochs_cuts_short_is_named(compose, overrides, images, world, says):
    cfg = compose("data.batch_size=200", *overrides, validate=False)
    line = unreachable_max_steps(cfg.trainer, images, world, cfg.data.batch_size)
    if says is None:
        assert line is None
    else:
        assert line.startswith("trainer.max_steps=30 will not be reached") and says in line
        assert "\n" not in line
