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

# Plumbing that says nothing about the experiment; left out of the HPARAMS table.
_SKIP = ("data.root", "data.download_timeout_s", "data.num_workers", "trainer.enable_progress_bar")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys; lists and None become strings, the only types the plugin doesn't take."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value) if value is not None else "null"
    return out


def run_hparams(config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    flat = flatten({k: v for k, v in config.items() if k != "hydra"})
    flat = {k: v for k, v in flat.items() if k not in _SKIP}
    flat.update(extra)
    return flat


def write_hparams(writer: Any, params: Mapping[str, Any], metric_tags: Iterable[str]) -> None:
    """``writer``: a SummaryWriter (the logger's ``experiment``)."""
    exp, ssi, sei = hparams(dict(params), {tag: 0.0 for tag in metric_tags})
    file_writer = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
    writer.flush()
