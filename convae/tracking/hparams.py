"""The HPARAMS-tab entry of a run: its flattened config, without the plumbing.

Written once at the start, as a session-start record only. With no experiment record in any
run, TensorBoard builds the table from all the runs it sees and puts the keys whose values
differ between them first: a sweep's table opens on ``model.upsample``, ``seed`` and the
other swept keys. (An experiment record, which Lightning and ``add_hparams`` write, is taken
from one run chosen arbitrarily, knows nothing of the others, and sorts every key by name:
``callbacks.*`` first.) The metric columns are every scalar the runs log, each showing its
last value, so the table fills in as a run logs and survives a crash.
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
