"""The sweep folder as TensorBoard opens it: an HPARAMS experiment record and the
custom-scalars layout, written into the sweep folder itself as the sweep starts, so they
are there while the jobs run.

TensorBoard takes the sweep folder as its log folder and each job folder as a run; the
folder itself is a run too (named ``.``), which logs nothing else and holds no session,
so it adds no row to the table. Which columns the record holds, and why, is in
convae/tracking/experiment.py; its names are the keys of each job's own session record
(``run_hparams``, convae/tracking/hparams.py), computed here from every job's config as
the up-front check composes it (convae/sweeps/preflight.py), so TensorBoard joins them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from convae.config.convert import to_container
from convae.config.errors import one_line
from convae.hardware import process_rank
from convae.hydra_compat import BASIC_SWEEPER
from convae.sweeps.preflight import Composer, sweep_jobs

log = logging.getLogger("convae")

SUFFIX = ".convae-sweep"  # the sweep record's event file, replaced when the sweep goes on


def swept_keys(arguments: Sequence[str]) -> list[str]:
    """The keys given several values (``a=1,2``, ``choice(...)``), in the order given."""
    parsed = OverridesParser.create().parse_overrides(list(arguments))
    return list(dict.fromkeys(o.key_or_group for o in parsed if o.is_sweep_override()))


def write_sweep_record(config: DictConfig) -> Path | None:
    """Writes the record and the layout into the sweep folder; returns the event file, or
    None for a sweeper whose jobs are not known up front (TensorBoard then builds the
    table from the runs, as before)."""
    loader = GlobalHydra.instance().config_loader()
    jobs = sweep_jobs(config, loader)
    if jobs is None:
        return None
    # TensorBoard's summary writers import torch: only once a sweep starts, never for a
    # refused command line (tests/unit/bench/test_startup.py)
    from convae.tracking.events import replace_events
    from convae.tracking.experiment import experiment_summary, run_metrics
    from convae.tracking.hparams import run_hparams
    from convae.tracking.layout import layout_summary

    composer = Composer(config, loader)
    configs = []
    for job in jobs:
        try:
            configs.append(composer.compose(job.overrides))
        except Exception:  # a bad job (the up-front check turned off) fails when it starts
            continue
    params = [run_hparams(to_container(cfg)) for cfg in configs]
    metrics = [tag for cfg in configs for tag in run_metrics(cfg)]
    arguments = [str(o) for o in config.hydra.overrides.task]
    sweeper_params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in sweeper_params.items()] + arguments
    # Optuna's jobs are sample points of its search space, not every value a trial takes.
    exhaustive = OmegaConf.select(config, "hydra.sweeper._target_") == BASIC_SWEEPER
    experiment = experiment_summary(params, swept_keys(arguments), metrics, domains=exhaustive)
    summaries = [layout_summary()] + ([experiment] if experiment is not None else [])
    return replace_events(Path(str(config.hydra.sweep.dir)), SUFFIX, summaries)


class SweepTensorBoard(Callback):
    """Writes the sweep's HPARAMS record and custom-scalars layout (module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0:  # a DDP rank re-launched with the sweep's command line
            return
        try:
            write_sweep_record(config)
        except Exception as err:  # TensorBoard builds its own table: the sweep goes on
            log.warning("No HPARAMS record in the sweep folder: %s", one_line(err))
