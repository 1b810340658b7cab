"""Configs as plain Python: resolved containers, plain values, and dotted keys for tables
and TensorBoard's HPARAMS tab."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def plain(value: Any) -> Any:
    """A config node as plain Python (lists, dicts); other values as they are."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> dotted keys, for tables and TensorBoard's HPARAMS tab; lists
    become strings such as ``[16, 8, 8]`` so they compare and group as one value."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value), default=str)
        else:
            flat[name] = value
    return flat
