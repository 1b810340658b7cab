"""Code outside convae that registers data sources or decoders: the modules or ``.py``
files named in the environment variable ``CONVAE_PLUGINS`` (separated by commas),
imported once, when a registry is first read (docs/extending.md). Imports nothing heavy,
so the registries stay readable before torch is."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PLUGINS_VARIABLE = "CONVAE_PLUGINS"
_loaded = False


def load_configured_plugins() -> None:
    """Imports ``CONVAE_PLUGINS``' modules, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a plugin that reads a registry while imported must not loop
    load_plugins(os.environ.get(PLUGINS_VARIABLE, ""))


def load_plugins(names: str | Sequence[str]) -> None:
    """Imports each module name or ``.py`` file (a comma-separated string or a list), once:
    their decorators register their sources and decoders."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    for name in filter(None, names):
        if name.endswith(".py"):
            _import_file(Path(name))
        else:
            importlib.import_module(name)


def _import_file(path: Path) -> None:
    path = path.expanduser().resolve()
    key = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_name = f"convae_plugin_{path.stem}_{key}"
    if module_name in sys.modules:
        return
    if not path.is_file():
        raise FileNotFoundError(f"{PLUGINS_VARIABLE}: {path}: no such file")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
