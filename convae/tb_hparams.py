"""The HPARAMS-tab entry of a run: its flattened config and the tags of its final metrics.

Written once at the start with the metric *tags* only; TensorBoard shows each metric's
last logged scalar, so the table fills in as the run logs and survives a crash.
(Lightning's ``log_hyperparams(params, metrics)`` would instead log the metric values again
at step 0, putting a second point at the start of every curve.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch.utils.tensorboard.summary import hparams

from convae.compat import tb_file_writer
from convae.config import PLUMBING_KEYS, flatten


def run_hparams(config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    flat = flatten({k: v for k, v in config.items() if k != "hydra"})
    # The plugin takes bool, number and string values only.
    flat = {k: "null" if v is None else v for k, v in flat.items() if k not in PLUMBING_KEYS}
    flat.update(extra)
    return flat


def write_hparams(writer: Any, params: Mapping[str, Any], metric_tags: Iterable[str]) -> None:
    """``writer``: a SummaryWriter (the logger's ``experiment``)."""
    exp, ssi, sei = hparams(dict(params), {tag: 0.0 for tag in metric_tags})
    file_writer = tb_file_writer(writer)
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
    writer.flush()
