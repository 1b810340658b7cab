"""The decoders, by name: ``model.upsample=<name>`` and each decoder's own settings.

A decoder is a stage builder registered with ``@register("name")`` (convae/models/upsample.py
holds the built-in ones); one with settings of its own declares them with its registration,
``@register("name", options=SomeOptions)``: a frozen dataclass whose fields are its
``model.*`` keys with their defaults, handed to the builder as ``options`` (None for a
decoder without settings), with an optional static ``problems(values)`` that
``config.validate`` asks. Every other decoder ignores them.

This module imports no torch: the built-in decoders are declared here by name (with their
options) and their builders imported at the first build, so a config's ``model.upsample``
and decoder settings are checked before torch is imported. Decoders outside convae register
themselves in a file of their own (convae/plugins.py, docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from convae.plugins import load_configured_plugins

if TYPE_CHECKING:
    from torch import nn


class StageBuilder(Protocol):
    def __call__(
        self, *, in_ch: int, out_ch: int, target: int, kernel_size: int, options: Any
    ) -> nn.Module: ...


@dataclasses.dataclass(frozen=True)
class TransposedOptions:
    transposed_kernel_size: int = 3  # 3: uneven overlap (checkerboard-prone); 4: even overlap

    @staticmethod
    def problems(values: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
        k = values.get("transposed_kernel_size", 3)
        if k >= 2:
            return []
        why = "expected an int >= 2 (stride 2 leaves holes below)"
        return [("model.transposed_kernel_size", k, why)]


@dataclasses.dataclass(frozen=True)
class PixelShuffleOptions:
    icnr: bool = False  # start as conv + nearest resize (ICNR, Aitken et al. 2017)


BUILT_IN = "convae.models.upsample"
# name -> (the module whose @register builds it, its options); imported at the first build.
_DECLARED: dict[str, tuple[str, type | None]] = {
    "nearest": (BUILT_IN, None),
    "bilinear": (BUILT_IN, None),
    "transposed": (BUILT_IN, TransposedOptions),
    "pixel_shuffle": (BUILT_IN, PixelShuffleOptions),
}
_BUILDERS: dict[str, StageBuilder] = {}
# The settings dataclass of each decoder that has settings, declared or registered.
DECODER_OPTIONS: dict[str, type] = {n: o for n, (_, o) in _DECLARED.items() if o is not None}


class Decoders(Mapping[str, StageBuilder]):
    """Every decoder's stage builder by name; reading one imports the module that builds it."""

    def __getitem__(self, name: str) -> StageBuilder:
        if name not in _BUILDERS and name in _DECLARED:
            importlib.import_module(_DECLARED[name][0])
        if name not in _BUILDERS:
            raise KeyError(name)
        return _BUILDERS[name]

    def __iter__(self) -> Iterator[str]:
        load_configured_plugins()
        return iter([*_DECLARED, *(n for n in _BUILDERS if n not in _DECLARED)])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __contains__(self, name: object) -> bool:
        load_configured_plugins()
        return name in _DECLARED or name in _BUILDERS


UPSAMPLERS = Decoders()


def register(name: str, *, options: type | None = None) -> Callable[[StageBuilder], StageBuilder]:
    """Registers the decorated stage builder as ``model.upsample=<name>``, with the
    dataclass of its own settings (``options``), if it has any."""
    if options is not None and not dataclasses.is_dataclass(options):
        raise TypeError(f"upsample mode {name!r}: options must be a dataclass, not {options!r}")

    def add(builder: StageBuilder) -> StageBuilder:
        declared = _DECLARED.get(name)
        if name in _BUILDERS or (declared and declared[0] != builder.__module__):
            raise ValueError(f"upsample mode {name!r} is registered twice")
        if declared and options not in (None, declared[1]):
            raise ValueError(f"upsample mode {name!r}: options differ from its declaration")
        if options is not None and not declared:
            _check_defaults(name, options)
            DECODER_OPTIONS[name] = options
        _BUILDERS[name] = builder
        return builder

    return add


def _check_defaults(name: str, options: type) -> None:
    settings = decoder_settings()
    for field in dataclasses.fields(options):
        if field.name in settings and settings[field.name] != _default(field):
            raise ValueError(
                f"upsample mode {name!r}: setting {field.name!r} has another default "
                "in another decoder's options"
            )


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def decoder_settings() -> dict[str, Any]:
    """Every decoder setting (a ``model.*`` key) any registered decoder declares, with its
    default."""
    load_configured_plugins()
    return {
        field.name: _default(field)
        for options in DECODER_OPTIONS.values()
        for field in dataclasses.fields(options)
    }


def decoder_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """(key, type, field with its default) of every decoder setting, in registration order:
    the model schema's decoder keys (convae/config/schema.py's ModelConfig)."""
    load_configured_plugins()
    found: dict[str, tuple[str, Any, dataclasses.Field]] = {}
    for options in DECODER_OPTIONS.values():
        types = typing.get_type_hints(options)
        for f in dataclasses.fields(options):
            default = dataclasses.field(default=_default(f))
            found.setdefault(f.name, (f.name, types[f.name], default))
    return list(found.values())


def decoder_setting_problems(settings: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """(key, value, what is allowed) for each decoder setting in ``settings`` (the model
    config) that its decoder's options refuse, through their optional static method
    ``problems(values)``. Every decoder's settings are checked, whichever decoder the config
    chooses, so a config stays valid when only its ``upsample`` changes."""
    load_configured_plugins()
    found: list[tuple[str, Any, str]] = []
    for options in DECODER_OPTIONS.values():
        check = getattr(options, "problems", None)
        if check is not None:
            own = {f.name for f in dataclasses.fields(options)}
            found += check({k: v for k, v in settings.items() if k in own})
    return found


def decoder_options(upsample: str, settings: Mapping[str, Any]) -> Any:
    """The options of decoder ``upsample`` from ``settings`` (model arguments beyond the
    common ones): its own fields, the defaults where a key is not given; None for a
    decoder without settings. A key no registered decoder declares is a TypeError, as an
    unexpected keyword argument is."""
    unknown = sorted(set(settings) - set(decoder_settings()))
    if unknown:
        raise TypeError(f"unexpected model arguments {', '.join(unknown)}: no decoder has them")
    options = DECODER_OPTIONS.get(upsample)
    if options is None:
        return None
    own = {f.name for f in dataclasses.fields(options)}
    return options(**{k: v for k, v in settings.items() if k in own})


def unregister(name: str) -> None:
    """Removes a registered (not a built-in) decoder: for tests that register their own."""
    if name not in _DECLARED:
        _BUILDERS.pop(name, None)
        DECODER_OPTIONS.pop(name, None)
