"""A sweep is checked whole before its first job: every job's config is composed and passed
through convae's one gate (``convae.config.validate.validate``) up front, and one bad value
refuses the sweep in one line naming the job and the key, before any job folder exists.

Without it Hydra composes each job only when the launcher starts it:
``convae-train -m model.upsample=nearest,transposed_k4`` trained the whole ``nearest`` job,
then failed on the second. ``SweepPreflight`` is a Hydra callback, first in conf/train.yaml's
``hydra.callbacks`` so that it runs before ``SweepFolder`` locks or empties the sweep folder
and before the sweeper writes multirun.yaml; ``on_multirun_start`` runs in the process that
starts the sweep whatever the launcher (basic, joblib, submitit), before the sweeper and
launcher are even made. The jobs are those the sweeper will launch:

- the basic sweeper: ``hydra.sweeper.params`` and the command line, split into jobs by
  Hydra's own ``BasicSweeper.split_arguments`` (every combination);
- Optuna: the search space the plugin builds from the same two sources
  (``create_params_from_overrides``). Its trials are not known in advance, so each value a
  trial may take is checked once: every ``choice``, and the two bounds of a ``range`` or
  ``interval``, each with the other parameters at their first value. Combinations of
  values are still checked by each trial when it starts (a failed trial, as before).
- any other sweeper: nothing is checked here; each job is still validated when it starts.

Each job is composed as Hydra composes it (``load_sweep_config`` of the global Hydra's
config loader: the sweep's hydra overrides plus the job's), and validated without its
``hydra`` node, as convae-train gets it. A job that will resume (``resume=``, or a job
folder that ``sweep_existing=continue`` resumes) is checked on this command line's config,
as the rest: a bad value on the command line is refused either way; its stored config
is checked again when the job starts (convae/train.py).

``~hydra.callbacks.sweep_preflight`` on the command line turns the check off: each job is
then validated when it starts and a bad one fails alone (recorded in its results.json).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from convae.config.errors import cap_line, one_line
from convae.config.validate import validate
from convae.hardware import process_rank
from convae.hydra_compat import (
    BASIC_SWEEPER,
    apply_value_overrides,
    basic_sweep_jobs,
    optuna_search_space,
)

log = logging.getLogger("convae")

OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


@dataclass(frozen=True)
class Job:
    """One config the sweep will (or may) run: its overrides, and how the error names it."""

    overrides: list[str]
    label: str


class SweepPreflight(Callback):
    """Refuses a sweep with a bad job before anything is written (module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0:  # a DDP rank re-launched with the sweep's command line
            return
        line = check_sweep(config)
        if line is not None:
            # Hydra turns a callback's Exception into a warning and goes on: stop here.
            raise SystemExit(f"convae-train: error: {line}")


def check_sweep(config: DictConfig) -> str | None:
    """The one error line of the sweep's first bad job, or None when every job is valid
    (or the sweeper's jobs cannot be known here)."""
    started = time.perf_counter()
    loader = GlobalHydra.instance().config_loader()
    try:
        jobs = sweep_jobs(config, loader)
    except Exception as err:  # a malformed sweep override: Hydra would refuse it later
        return one_line(err)
    if jobs is None:
        log.debug("Sweep not checked up front: %s", OmegaConf.select(config, "hydra.sweeper"))
        return None
    composer = Composer(config, loader)
    # Without the class check first: a refused sweep is answered before torch is imported.
    refused = [job for job in jobs if composer.error(job.overrides, classes=False) is not None]
    if not refused:
        refused = [job for job in jobs if composer.error(job.overrides) is not None]
    log.debug("Checked %d sweep jobs in %.3f s", len(jobs), time.perf_counter() - started)
    what = "jobs" if jobs[0].label.startswith("job ") else "configs"
    more = f" [{len(refused)} of {len(jobs)} {what} refused]" if len(refused) > 1 else ""
    for job in refused:  # the line the job itself would meet
        why = composer.error(job.overrides, in_full=True)
        if why is not None:
            return cap_line(f"{job.label}: {why}") + more
    return None


class Composer:
    """Job configs as Hydra composes them for the launcher (``load_sweep_config``: the
    sweep's hydra overrides, then the job's), without the ``hydra`` node, as
    ``hydra.core.utils.run_job`` hands them to convae-train.

    Composing a config takes Hydra a few hundred ms (the defaults tree, the schema merge),
    so the defaults tree is composed once per distinct set of group overrides
    (``model=...``, ``upsample=...``, ``hydra...``) and each job's value overrides
    (``model.upsample=...``, ``seed=...``) are applied to a copy, by the function Hydra
    applies them with after composing. The job refused first is composed again in full, so
    the error line is the one the job itself would meet."""

    def __init__(self, config: DictConfig, loader: Any) -> None:
        self.config, self.loader = config, loader
        self._parser = OverridesParser.create(config_loader=loader)
        self._parsed: dict[str, Override] = {}
        self._is_group: dict[str, bool] = {}
        self._trees: dict[tuple[str, ...], DictConfig] = {}

    def error(
        self, overrides: Sequence[str], in_full: bool = False, classes: bool = True
    ) -> str | None:
        """Why the job is refused (one line), or None: composed (``in_full``: by Hydra
        alone, as the launcher will), then validated as convae-train validates it
        (``classes``: as ``validate`` takes it)."""
        try:
            cfg = self.compose_in_full(overrides) if in_full else self.compose(overrides)
            validate(cfg, classes=classes)
        except Exception as err:
            return one_line(err)
        return None

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        parsed = [self._parse(o) for o in overrides]
        groups = tuple(o.input_line for o in parsed if self._group(o))
        tree = self._trees.get(groups)
        if tree is None:
            tree = self._trees[groups] = self.compose_in_full(groups)
        cfg = copy.deepcopy(tree)
        apply_value_overrides([o for o in parsed if not self._group(o)], cfg)
        return cfg

    def compose_in_full(self, overrides: Sequence[str]) -> DictConfig:
        with warnings.catch_warnings():  # Hydra's, said once already (the sweep's own config)
            warnings.simplefilter("ignore")  # or by the job when it starts
            cfg = self.loader.load_sweep_config(self.config, list(overrides))
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]  # as hydra.core.utils.run_job hands the job its config
        return cfg

    def _parse(self, override: str) -> Override:
        if override not in self._parsed:
            (self._parsed[override],) = self._parser.parse_overrides([override])
        return self._parsed[override]

    def _group(self, override: Override) -> bool:
        """Whether ``override`` changes the defaults tree (a config group, or hydra's)."""
        key = override.key_or_group
        if key not in self._is_group:
            self._is_group[key] = (
                key.startswith("hydra")
                or override.package is not None
                or bool(self.loader.get_group_options(key, results_filter=None))
            )
        return self._is_group[key]


def sweep_jobs(config: DictConfig, loader: Any) -> list[Job] | None:
    """The jobs the configured sweeper will launch, or None for a sweeper not known here."""
    target = OmegaConf.select(config, "hydra.sweeper._target_")
    arguments = [str(o) for o in config.hydra.overrides.task]
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + arguments  # as both sweepers do
    if target == BASIC_SWEEPER:
        return basic_jobs(arguments, loader)
    if target == OPTUNA_SWEEPER:
        return optuna_jobs(arguments)
    return None


def basic_jobs(arguments: Sequence[str], loader: Any) -> list[Job]:
    """Every job of the basic sweeper, numbered from 1 in launch order; labelled by the
    overrides the sweep varies (``job 2 of 4 (model.upsample=transposed,seed=1)``)."""
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(arguments))
    swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
    batch = basic_sweep_jobs(arguments, loader)  # every job, in launch order
    jobs = []
    for n, overrides in enumerate(batch, start=1):
        varied = ",".join(o for o in overrides if o.split("=", 1)[0] in swept)
        label = f"job {n} of {len(batch)}" + (f" ({varied})" if varied else "")
        jobs.append(Job(list(overrides), label))
    return jobs


def optuna_jobs(arguments: Sequence[str]) -> list[Job]:
    """Optuna's search space, one config per value a trial may take: each choice, and the
    bounds of a range or interval, with the other parameters at their first value."""
    space, fixed = optuna_search_space(arguments)
    space = {k: d for k, d in space.items() if k not in fixed}  # a fixed value wins
    values = {name: _candidates(dist) for name, dist in space.items()}
    first = {name: vs[0] for name, vs in values.items()}

    def point(name: str = "", value: Any = None) -> list[str]:
        fixed_part = [f"{k}={v}" for k, v in fixed.items()]
        return fixed_part + [f"{k}={value if k == name else v}" for k, v in first.items()]

    jobs = [Job(point(), "Optuna search space, each parameter at its first value")]
    for name, vs in values.items():
        jobs += [Job(point(name, v), f"Optuna search space ({name}={v})") for v in vs[1:]]
    return jobs


def _candidates(distribution: Any) -> list[Any]:
    """The values of an Optuna distribution to check: every choice, or its two bounds."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return list(choices)
    low, high = distribution.low, distribution.high
    step = getattr(distribution, "step", None) or getattr(distribution, "q", None)
    if isinstance(low, int) and isinstance(step, int) and step > 0:
        high = low + (high - low) // step * step  # the largest value a trial can take
    return [low, high]
