"""Console entry points report errors in one line on stderr and exit non-zero.

Hydra prints several lines (and a traceback for errors raised in the app); here Hydra is
asked to re-raise (HYDRA_FULL_ERROR=1), and the exception is condensed. Set
HYDRA_FULL_ERROR=1 yourself to get the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from convae.callbacks.interrupt import JobInterrupted
from convae.checkpoint import CheckpointError
from convae.checkpoint_io import CheckpointSaveError
from convae.config import MAX_LINE_CHARS, ConfigError, cap_line, short_repr
from convae.data.idx import DataFileError
from convae.module import TrainingDiverged
from convae.results import RunFileError

USER_ERRORS = (
    ConfigError,
    DataFileError,
    TrainingDiverged,
    CheckpointSaveError,
    CheckpointError,
    JobInterrupted,
    RunFileError,
)


def _squash(text: str) -> str:
    return " ".join(str(text).split())


def one_line(err: BaseException) -> str:
    """The error as one line that names the key or file, the value and what is allowed;
    capped at a readable length (long values are cut), whatever the input."""
    return cap_line(_one_line(err))


def _one_line(err: BaseException) -> str:
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if isinstance(err, USER_ERRORS):
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
