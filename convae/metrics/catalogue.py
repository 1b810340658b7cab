"""Every scalar convae logs, by name, and which way is better: known without torch.

The config check (a monitor or an optimized_metric the run never logs is refused before any
data loads), the report (which value is best) and the loggers (what the module and the
callbacks log) read the same lists here, so a new metric is added in one place. Plain
Python only: a refused override is answered before torch is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Better = Literal["lower", "higher", "zero"]

# The module's per-split metrics (convae/training/module.py's eval_metrics).
QUALITY = ("loss", "psnr", "ssim")
# The spectral scores of the fixed digits (convae/callbacks/checkerboard.py).
SPECTRAL = ("cb2_incoh", "cb4_incoh", "cb2_ratio", "hf_tail_db")
# Splits whose metrics are logged after every validation; test/ exists only after training.
VALIDATION = "val"
SPLITS = (VALIDATION, "test", "test_clean")

# The learning curves convae-report draws unless told (its --curves): the loss, and the
# primary artifact score.
DEFAULT_CURVES = ("val/loss", "val/grid")

# By the metric's last name part. hf_tail_db is the output's high-frequency energy against
# the target's, in dB: 0 is right, below is blur, above is added detail or artifacts.
BETTER: dict[str, Better] = {
    "loss": "lower",
    "psnr": "higher",
    "ssim": "higher",
    "grid": "lower",
    "cb2_incoh": "lower",
    "cb4_incoh": "lower",
    "cb2_ratio": "lower",
    "hf_tail_db": "zero",
}


def better(tag: str) -> Better | None:
    """Which way ``tag`` (e.g. ``test/grid_p4``, ``latent/grid``) is better; None if neither."""
    name = tag.rsplit("/", 1)[-1]
    if name.startswith("grid_p") and name[len("grid_p") :].isdigit():
        name = "grid"
    return BETTER.get(name)


def grid_border(periods: Sequence[int]) -> int:
    """Default border: half the largest period (the smoother's reach), and at least 4 pixels,
    where the decoder's zero-padded convolutions change the output."""
    return max(4, max(periods) // 2)


def grid_periods(stages: int, image_size: int | None = None) -> list[int]:
    """Periods a decoder of ``stages`` 2x stages can make, 2 .. 2^stages; with ``image_size``,
    only those whose interior (inside the default border) holds one whole period."""
    periods = [2**k for k in range(1, stages + 1)]
    if image_size is not None:
        while periods and image_size - 2 * grid_border(periods) < periods[-1]:
            periods.pop()
    return periods


def grid_names(periods: Sequence[int]) -> list[str]:
    """The grid scores' names, in order: ``grid``, then ``grid_p<P>``."""
    return ["grid", *(f"grid_p{p}" for p in periods)]


def split_metrics(split: str, *, stages: int, image_size: int | None) -> list[str]:
    """The tags every validation (``split="val"``) or test of such a model logs."""
    names = [*QUALITY, *grid_names(grid_periods(stages, image_size)), *SPECTRAL]
    return [f"{split}/{name}" for name in names]


def monitorable(*, stages: int, image_size: int | None) -> list[str]:
    """What ``callbacks.checkpoint_monitor`` may name: train/loss and every val/ scalar."""
    return ["train/loss", *split_metrics(VALIDATION, stages=stages, image_size=image_size)]
