"""Sweep job folders named by what each job changed (``model.upsample=transposed,seed=2``),
not by the overrides every job shares.

Hydra names a job folder after ``hydra.job.override_dirname``, built from the job's own
concrete overrides: inside a job, ``seed=2`` from ``seed=0,1,2`` looks the same as a fixed
``data.source=bundled``. Only the sweep's command line tells them apart, so this Hydra
callback reads it where Hydra keeps it (``hydra.overrides.task`` of the sweep's config, in
``on_multirun_start``) and adds the fixed keys to ``exclude_keys`` through
``hydra.overrides.hydra``: every launcher composes each job from those overrides, on this
machine or (submitit) on a cluster node, and the job's .hydra/hydra.yaml records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

# Says how to treat the sweep folder, not what a job trains: never in a name, so a sweep
# run again with sweep_existing=continue finds its jobs' folders.
ALWAYS_EXCLUDED = ("sweep_existing",)
EXCLUDE_KEY = "hydra.job.config.override_dirname.exclude_keys"


def fixed_keys(task_overrides: Sequence[str]) -> list[str]:
    """Keys the sweep's command line sets to one value for every job, then ALWAYS_EXCLUDED.
    A key given once fixed and once swept (``seed=7 ... seed=0,1``) is swept: the last value
    wins, and excluding it named the jobs job0, job1."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    keys = [o.key_or_group for o in parsed if o.key_or_group not in swept]
    return list(dict.fromkeys([*keys, *ALWAYS_EXCLUDED]))


class SweepJobNames(Callback):
    """Excludes the sweep's fixed overrides from its job folder names."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        keys = fixed_keys([str(o) for o in config.hydra.overrides.task])
        quoted = ",".join("'" + k.replace("\\", "\\\\").replace("'", "\\'") + "'" for k in keys)
        with open_dict(config.hydra.overrides):
            config.hydra.overrides.hydra.append(f"{EXCLUDE_KEY}=[{quoted}]")
