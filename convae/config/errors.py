"""Error lines: an invalid config value as one line that names the key, the value and
what is allowed (``ConfigError``, ``check``), and any error a console script meets as one
line on stderr (``one_line``, ``run_cli``).

Console entry points report errors in one line on stderr and exit non-zero.
Hydra prints several lines (and a traceback for errors raised in the app); here Hydra is
asked to re-raise (HYDRA_FULL_ERROR=1), and the exception is condensed. Set
HYDRA_FULL_ERROR=1 yourself to get the full traceback instead.
"""

from __future__ import annotations

import os
import reprlib
import sys
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from convae.errors import ConvaeError


class ConfigError(ConvaeError, ValueError):
    """A config value is invalid; the message names the key, the value and what is allowed."""


# Error lines stay readable whatever the input: a value is shown to about 80 characters
# (reprlib-style, "..." where cut) and a whole line to 500 (a 100,000-character
# data.source once made a 100 KB "one-line" error).
MAX_VALUE_CHARS = 80
MAX_LINE_CHARS = 500
_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = MAX_VALUE_CHARS
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 10


def short_repr(value: object) -> str:
    """``repr(value)``, cut to about MAX_VALUE_CHARS characters."""
    return _short.repr(value)


def cap_line(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """One line of at most ``limit`` characters: an error line, never a page."""
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check(ok: bool, key: str, value: object, allowed: str) -> None:
    """Raises the one-line ConfigError ``key=value is invalid: allowed`` unless ``ok``: the
    one format of every value check, in validate, validate_eval and convae-eval."""
    if not ok:
        raise ConfigError(cap_line(f"{key}={short_repr(value)} is invalid: {allowed}"))


def _squash(text: str) -> str:
    return " ".join(str(text).split())


def one_line(err: BaseException) -> str:
    """The error as one line that names the key or file, the value and what is allowed;
    capped at a readable length (long values are cut), whatever the input."""
    return cap_line(_one_line(err))


def _one_line(err: BaseException) -> str:
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if isinstance(err, ConvaeError):
        return _squash(str(err))
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or "config"
        msg = str(getattr(cause, "msg", None) or cause).splitlines()[0]
        kind = getattr(cause, "object_type", None)
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and is_dataclass(kind):
            names = ", ".join(f.name for f in fields(kind))
            return f"{key}: unknown key; {kind.__name__} has {names}"
        if hasattr(cause, "value") and cause.value is not None:
            return f"{key}={short_repr(cause.value)} is invalid: {msg}"
        return f"{key}: {msg}"
    if isinstance(err, MissingConfigException):
        head = str(err).splitlines()[0].removeprefix("In 'train': ")
        return f"{head}; available: {', '.join(err.options)}" if err.options else head
    if isinstance(err, ConfigCompositionException):
        return _squash(str(err))
    hint = " (HYDRA_FULL_ERROR=1 shows the traceback)"  # kept when the message is cut
    return f"{type(err).__name__}: {cap_line(str(err), MAX_LINE_CHARS - 80)}{hint}"


_CONDENSE = "_CONVAE_ONE_LINE_ERRORS"


def condensing_errors() -> bool:
    """True unless the user asked for full tracebacks with HYDRA_FULL_ERROR=1."""
    return os.environ.get(_CONDENSE) == "1"


def run_cli(entry: Callable[[], Any], prog: str, more: Callable[[], str] | None = None) -> Any:
    """``more``: what to add to the error line (a sweep's other failed jobs)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" and not condensing_errors():
        return entry()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    os.environ[_CONDENSE] = "1"
    try:
        return entry()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        line, extra = one_line(err), more() if more else ""
        if extra:  # the first error keeps room for the rest
            line = cap_line(cap_line(line, MAX_LINE_CHARS // 2) + extra, 2 * MAX_LINE_CHARS)
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(1)
