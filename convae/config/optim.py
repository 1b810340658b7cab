"""A config's ``optim`` and ``scheduler`` sections, checked as data before anything is built.

A config can come from a checkpoint or a run folder (a resume takes the stored config), and
checkpoints are shared between people, so its ``optim`` and ``scheduler`` sections are data,
never object recipes: ``hydra.utils.instantiate`` would build any nested ``_target_`` (a
``pathlib.Path.write_text`` inside an optimizer argument writes a file). Here a section is
accepted only if its ``_target_`` is a ``torch.optim`` optimizer (or ``lr_scheduler``) class
and every argument is a plain value; convae/training/optimizers.py then calls the class
directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from convae.config.errors import ConfigError, cap_line, short_repr
from convae.config.schema import SCHEDULER_KEYS

OPTIMIZER_MODULE = "torch.optim"
SCHEDULER_MODULE = "torch.optim.lr_scheduler"
# Hydra's keys that a section may carry: _partial_ is how conf/ writes "call it later".
_HYDRA_KEYS = ("_target_", "_partial_")
_SCALARS = (bool, int, float, str, type(None))


def _refuse(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(cap_line(f"{key}={short_repr(value)} is invalid: {allowed}"))


def _plain(value: Any) -> bool:
    """A scalar, or a (nested) list of scalars such as Adam's betas: nothing that builds."""
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, list | tuple) and all(_plain(v) for v in value)


def _resolve(key: str, target: object, module: str, kind: str) -> type:
    """The class ``target`` names, imported only from ``module`` (or below it)."""
    allowed = f"expected {_ARTICLE[kind]} {kind} class from {module}, e.g. {_EXAMPLES[kind]}"
    if not isinstance(target, str) or "." not in target:
        raise _refuse(key, target, allowed)
    where, _, name = target.rpartition(".")
    if where != module and not where.startswith(module + "."):
        raise _refuse(key, target, allowed)
    try:
        found = getattr(importlib.import_module(where), name)
    except (ImportError, AttributeError):
        raise _refuse(key, target, f"no such class; {allowed}") from None
    if not isinstance(found, type) or not issubclass(found, _BASES[kind]()):
        raise _refuse(key, target, allowed)
    return found


def _arguments(section: str, values: Mapping[str, Any], skip: Iterable[str]) -> dict[str, Any]:
    """The keyword arguments of a section, each checked to be a plain value."""
    arguments = {}
    for name, value in values.items():
        if name in _HYDRA_KEYS or name in skip:
            continue
        key = f"{section}.{name}"
        if str(name).startswith("_"):
            raise _refuse(key, value, "Hydra's instantiate keys are not accepted here; "
                          "expected the class's own keyword arguments")  # fmt: skip
        if not _plain(value):
            raise _refuse(key, value, "expected a plain value (a number, string, bool, null "
                          "or a list of them): a config never builds objects")  # fmt: skip
        arguments[str(name)] = list(value) if isinstance(value, tuple) else value
    return arguments


def _as_dict(section: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(section):
        return OmegaConf.to_container(section, resolve=True)  # type: ignore[return-value]
    return dict(section or {})


def optimizer_spec(optim: Any) -> tuple[type, dict[str, Any]]:
    """(optimizer class, keyword arguments) of ``optim``; ConfigError naming the key."""
    values = _as_dict(optim)
    cls = _resolve("optim._target_", values.get("_target_"), OPTIMIZER_MODULE, "optimizer")
    return cls, _arguments("optim", values, ())


def scheduler_spec(scheduler: Any) -> tuple[type, dict[str, Any]] | None:
    """(scheduler class, keyword arguments) of ``scheduler``, or None for a constant lr;
    Lightning's keys (interval, monitor) are left out."""
    values = _as_dict(scheduler)
    if values.get("_target_") is None:
        _arguments("scheduler", values, SCHEDULER_KEYS)  # plain values even when unused
        return None
    cls = _resolve("scheduler._target_", values["_target_"], SCHEDULER_MODULE, "scheduler")
    return cls, _arguments("scheduler", values, SCHEDULER_KEYS)


def _optimizer_base() -> type:
    import torch

    return torch.optim.Optimizer


def _scheduler_base() -> tuple[type, ...]:
    import torch

    sched = torch.optim.lr_scheduler
    return (sched.LRScheduler, sched.ReduceLROnPlateau)


_BASES = {"optimizer": _optimizer_base, "scheduler": _scheduler_base}
_ARTICLE = {"optimizer": "an", "scheduler": "a"}
_EXAMPLES = {
    "optimizer": "torch.optim.Adam, torch.optim.AdamW or torch.optim.SGD",
    "scheduler": "torch.optim.lr_scheduler.CosineAnnealingLR (scheduler=cosine, step, "
    "plateau, onecycle or none)",
}
