"""The data sources, by name: each one declared once with ``@register_source``.

A declaration says what the source serves, known from the config alone (its native image
size, colour or grey, whether it takes any ``data.image_size``), and names its loader: the
decorated function, which turns a ``SourceRequest`` (the data settings) into ImageArrays
(convae/data/sources.py: train images, and val/test where the source has them; the data
module carves what is missing out of the training images with the data split seed).

This module imports no torch, nor do the built-in declarations (convae/data/catalog.py:
their loaders import what they need when called), so a config's ``data.source`` and
``data.image_size`` are checked before torch is imported.

Sources outside convae register themselves the same way in a file of their own; the
modules or ``.py`` files named in the environment variable ``CONVAE_PLUGINS`` (separated
by commas) are imported at the first lookup (convae/plugins.py), so ``convae-train`` and
its sweeps see them too (docs/extending.md).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convae.plugins import load_configured_plugins

if TYPE_CHECKING:
    from convae.data.sources import ImageArrays


@dataclass(frozen=True)
class SourceRequest:
    """The data settings a loader may use (config.validate has checked them)."""

    root: str = "data"
    size: int = 28  # the side of the images the model is built for (served_shape)
    grayscale: bool = False
    resize: str = "none"
    photo_patches: tuple[int, int, int] = (20_000, 2_000, 2_000)
    split_seed: int = 0
    download_timeout_s: float = 10.0


Loader = Callable[[SourceRequest], "ImageArrays"]


@dataclass(frozen=True)
class DataSource:
    name: str
    native_size: int  # the side served with data.image_size=null
    colour: bool  # RGB unless data.grayscale=true; grey sources always serve one channel
    any_size: bool  # takes any even data.image_size; else only its native size
    load: Loader
    doc: str = ""


_REGISTRY: dict[str, DataSource] = {}
_discovered = False


def register_source(
    name: str, *, native_size: int, colour: bool = False, any_size: bool = False
) -> Callable[[Loader], Loader]:
    """Declares the decorated loader as ``data.source=<name>``."""

    def add(load: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"data source {name!r} is registered twice")
        doc = (load.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = DataSource(name, native_size, colour, any_size, load, doc)
        return load

    return add


def unregister_source(name: str) -> None:
    """Removes a source (for tests that register one of their own)."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, DataSource]:
    """Every source by name: the built-in ones first, then plugins and later additions."""
    _discover()
    return _REGISTRY


def data_source(name: str) -> DataSource:
    sources = registered()
    if name not in sources:
        raise KeyError(f"data.source={name}: no such source; expected one of {', '.join(sources)}")
    return sources[name]


class SourceNames(Sequence[str]):
    """The registered names, read live: a source registered later is in it too."""

    def __getitem__(self, index: Any) -> Any:
        return tuple(registered())[index]

    def __len__(self) -> int:
        return len(registered())

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(registered()))

    def __contains__(self, name: object) -> bool:
        return name in registered()

    def __repr__(self) -> str:
        return repr(tuple(self))


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True  # first: a plugin that reads the registry while imported must not loop
    importlib.import_module("convae.data.catalog")  # the built-in sources
    load_configured_plugins()
