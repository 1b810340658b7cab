"""Short names for configurations, taken from the sweep's own overrides: ``transposed_k4``,
``depth_16_8_8``, ``noisy`` rather than the flattened keys a group choice expands to, so
that figure labels fit a paper column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from convae.report.sweeps import Job
from convae.report.tables import SEED

MISSING = "–"


@dataclass(frozen=True)
class Dimension:
    """One swept key and the short value of each configuration (summary row) along it."""

    key: str
    values: tuple[str, ...]


def short_value(key: str, value: object) -> str:
    """A group choice by its name (``upsample=transposed_k4`` -> ``transposed_k4``), a plain
    key by its last part (``data.noise_std=0.5`` -> ``noise_std=0.5``)."""
    if value is None or value == MISSING:
        return MISSING
    if "." not in key:
        return str(value)
    return f"{key.rsplit('.', 1)[-1]}={value}"


def _override_values(job: Job) -> dict[str, str]:
    values = {}
    for override in job.overrides:
        key, sep, value = override.partition("=")
        key = key.lstrip("+~")
        if sep and key != SEED:
            values[key] = value
    return values


def dimensions(
    summary: pd.DataFrame,
    jobs_by_path: Mapping[str, Job],
    table_keys: Sequence[str],
    given: Sequence[Dimension] = (),
) -> list[Dimension]:
    """The keys that tell configurations apart, in the sweep's order (the order of its
    overrides), each with a short value per configuration, then the ``given`` dimensions (the
    sweep, in a report of several). Falls back on the table's config keys when they do not
    tell the configurations apart (sweeps merged, folders without .hydra)."""
    given = [d for d in given if len(set(d.values)) > 1]
    per_config = [_override_values(jobs_by_path[p]) for p in summary["_recon_path"]]
    order: list[str] = []
    for values in per_config:
        order += [k for k in values if k not in order]
    dims = [
        Dimension(k, tuple(short_value(k, v.get(k, MISSING)) for v in per_config)) for k in order
    ]
    dims = [d for d in dims if len(set(d.values)) > 1] + given
    if len(set(zip(*(d.values for d in dims), strict=True))) == len(summary) or len(summary) < 2:
        return dims
    keys = [Dimension(k, tuple(short_value(k, v) for v in summary[k])) for k in table_keys]
    return keys + given


def short_labels(dims: Sequence[Dimension], n: int) -> list[str]:
    """One label per configuration: its values along every dimension, joined by ' · '."""
    if not dims:
        return ["all jobs"] * n
    return [" · ".join(parts) for parts in zip(*(d.values for d in dims), strict=True)]
