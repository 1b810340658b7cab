"""The optimizer and the learning-rate schedule, built from a checked config section: the
class and plain arguments that ``convae.config.optim`` accepted are called directly, never
through ``hydra.utils.instantiate`` (a stored config is data, never an object recipe).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from convae.config.optim import optimizer_spec


def build_optimizer(optim: Any, params: Iterable[Any]) -> Any:
    cls, arguments = optimizer_spec(optim)
    return cls(params, **arguments)


def build_scheduler(cls: type, arguments: Mapping[str, Any], optimizer: Any) -> Any:
    return cls(optimizer, **arguments)
