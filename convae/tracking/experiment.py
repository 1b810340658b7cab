"""The HPARAMS experiment record of a sweep: which columns the table has and in which order.

TensorBoard's hparams plugin takes the first experiment record it finds among the runs
(backend_context._find_experiment_tag) and builds the table from it alone: its hparams
are the columns (a run's session-start key missing from it is not shown), and its metrics
are the metric columns in the record's order, the first five ticked. The plugin re-sorts
the hparams, those marked ``differs`` first and each group by name
(_sort_and_reduce_to_hparams_limit), and ticks the first five; the record still lists them
in the order this module chooses, which TensorBoard's Time Series runs table keeps.

So the record holds only the keys whose values differ between the sweep's jobs, each
marked ``differs`` with its values as the discrete domain (the filter's checkboxes), the
swept keys first in the order of the command line; a key every job shares is left out, as
a column that says nothing. The metrics lead with the losses, then PSNR, SSIM and the
artifact score ``grid`` of the test and the validation split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from convae.config.validate import data_shape
from convae.metrics.catalogue import split_metrics

# What the table shows first: the five ticked columns are the first five.
LEADING_METRICS = (
    "test/loss", "val/loss", "test/psnr", "test/ssim", "test/grid",
    "val/psnr", "val/ssim", "val/grid",
)  # fmt: skip
LATENT_KINDS = ("recon", "interp", "random")  # convae/callbacks/latent.py
PARAMS = "params"  # the parameter count each run adds to its record (convae/training/run.py)


def run_metrics(cfg: DictConfig) -> list[str]:
    """Every scalar a run of ``cfg`` logs, by the catalogue (convae/metrics/catalogue.py)."""
    _, size = data_shape(cfg.data)
    stages = len(cfg.model.depths)
    splits = ["val"]
    if cfg.test:
        splits += ["test", "test_clean"] if cfg.data.noise_std > 0 else ["test"]
    tags = [t for split in splits for t in split_metrics(split, stages=stages, image_size=size)]
    tags.append("train/loss")
    if cfg.callbacks.latent_space:
        tags += [f"latent/{score}_{k}" for score in ("grid", "cb2_ratio") for k in LATENT_KINDS]
    if cfg.scheduler.get("_target_"):
        tags.append("lr")
    return [*tags, "epoch"]


def metric_order(tags: Iterable[str]) -> list[str]:
    """``tags`` without repeats, LEADING_METRICS first (those present), the rest as given."""
    tags = list(dict.fromkeys(tags))
    return [t for t in LEADING_METRICS if t in tags] + [t for t in tags if t not in LEADING_METRICS]


def _kind(value: Any) -> str:
    # The session-start record stores bools and ints as numbers (torch's hparams()).
    return "number" if isinstance(value, bool | int | float) else type(value).__name__


def hparam_info(name: str, values: Sequence[Any], domain: bool = True) -> api_pb2.HParamInfo:
    """One column; its values' type, and with ``domain`` their distinct values (the
    filter's checkboxes). Values of mixed types give a column without either."""
    info = api_pb2.HParamInfo(name=name, differs=True)
    kinds = {_kind(v) for v in values}
    if kinds == {"number"}:
        info.type = api_pb2.DATA_TYPE_FLOAT64
        if domain:
            info.domain_discrete.extend(sorted({float(v) for v in values}))
    elif kinds == {"str"}:
        info.type = api_pb2.DATA_TYPE_STRING
        if domain:
            info.domain_discrete.extend(sorted(set(values)))
    return info


def differing_keys(jobs: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> list[str]:
    """The keys whose value differs between ``jobs`` (or that some lack): each swept key
    in ``swept``'s order (a swept config group, ``model=...``, by the keys under it), then
    the others in the jobs' order."""
    missing = object()
    keys = list(dict.fromkeys(k for job in jobs for k in job))
    differ = [k for k in keys if len({repr(job.get(k, missing)) for job in jobs}) > 1]
    first = [k for s in swept for k in differ if k == s or k.startswith(f"{s}.")]
    return list(dict.fromkeys([*first, *differ]))


def experiment_summary(
    jobs: Sequence[Mapping[str, Any]],
    swept: Sequence[str],
    metrics: Sequence[str],
    domains: bool = True,
) -> Summary | None:
    """The record for a sweep whose jobs have these HPARAMS entries (run_hparams of their
    configs, convae/tracking/hparams.py); None when no key differs between them (one job:
    TensorBoard's own table, built from the run, is then as good). ``domains``: the jobs
    are every job of the sweep, so their values are every value a column can take."""
    keys = differing_keys(jobs, swept)
    if not keys:
        return None
    infos = [hparam_info(k, [job[k] for job in jobs if k in job], domains) for k in keys]
    if any(k.startswith("model.") for k in keys):  # the architecture changes its size
        infos.append(api_pb2.HParamInfo(name=PARAMS, type=api_pb2.DATA_TYPE_FLOAT64, differs=True))
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metric_order(metrics)
        ],
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return Summary(
        value=[
            Summary.Value(
                tag=metadata.EXPERIMENT_TAG, metadata=metadata.create_summary_metadata(data)
            )
        ]
    )
