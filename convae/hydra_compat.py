"""Every use of a private Hydra API, in one place, importing nothing heavy: the sweep's
up-front check (convae/sweeps/preflight.py) and the report's list of a sweep's jobs
(convae/report/sweeps.py) run before torch is imported. tests/unit/test_compat.py pins
each against the installed Hydra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

# The basic sweeper's class as hydra.sweeper._target_ names it (under hydra._internal).
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# The basic launcher's logger, whose per-job lines a quiet sweep hides (tracking/console.py).
BASIC_LAUNCHER_LOGGER = "hydra._internal.core_plugins.basic_launcher"


def basic_sweep_jobs(overrides: Sequence[str], loader: Any = None) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of these overrides (sweep lists expanded, in its
    order), each as a list of ``key=value`` strings (``BasicSweeper.split_arguments``, a
    static method of a class under ``hydra._internal``); ``loader``: the config loader,
    for overrides that name config groups."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(overrides))
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def apply_value_overrides(overrides: Sequence[Any], cfg: DictConfig) -> None:
    """Applies parsed value overrides (``key=value``, ``+key=value``, ``~key``) to a composed
    config in place, with the function Hydra applies them with after composing
    (``ConfigLoaderImpl._apply_overrides_to_config``)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(list(overrides), cfg)


def optuna_search_space(arguments: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(distributions, fixed values) the Optuna sweeper makes of these overrides
    (``hydra_plugins.hydra_optuna_sweeper._impl.create_params_from_overrides``)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    space, fixed = create_params_from_overrides(list(arguments))
    return space, fixed
