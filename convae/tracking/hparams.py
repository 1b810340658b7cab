"""The HPARAMS-tab entry of a run: its flattened config, without the plumbing.

Written once at the start, as a session-start record only: the table's columns come from
an experiment record, and a run's own (Lightning's and ``add_hparams`` write one) knows
nothing of the other runs and sorts every key by name, ``callbacks.*`` first. A sweep's
record is written into the sweep folder as the sweep starts (convae/sweeps/tensorboard.py),
its column names the keys ``run_hparams`` gives each job, so TensorBoard joins them; a
single run has none, and TensorBoard builds its table from the run, with every scalar the
run logs as a metric column. Each cell shows the metric's last value, so the table fills
in as a run logs and survives a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.utils.tensorboard.summary import hparams

from convae.compat import tb_file_writer
from convae.config.convert import flatten
from convae.config.schema import PLUMBING_KEYS

# Settings of the pictures and checkpoint files, not of the experiment: in results.json,
# kept out of the table.
NOT_IN_TABLE = (
    "callbacks.image_digits",
    "callbacks.artifact_digits",
    "callbacks.artifact_images_every",
    "callbacks.checkpoint_mode",
    "callbacks.save_last",
    "callbacks.latent_space",
    "trainer.log_every_n_steps",
    "optim._partial_",
    "scheduler._partial_",
)


def run_hparams(config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    flat = flatten({k: v for k, v in config.items() if k != "hydra"})
    left_out = {*PLUMBING_KEYS, *NOT_IN_TABLE}
    # The plugin takes bool, number and string values only.
    flat = {k: "null" if v is None else v for k, v in flat.items() if k not in left_out}
    flat.update(extra)
    return flat


def write_hparams(writer: Any, params: Mapping[str, Any]) -> None:
    """``writer``: a SummaryWriter (the logger's ``experiment``)."""
    _experiment, start, end = hparams(dict(params), {})
    file_writer = tb_file_writer(writer)
    for summary in (start, end):
        file_writer.add_summary(summary)
    writer.flush()
