"""Console entry points report errors in one line on stderr and exit non-zero.

Hydra prints several lines (and a traceback for errors raised in the app); here Hydra is
asked to re-raise (HYDRA_FULL_ERROR=1), and the exception is condensed. Set
HYDRA_FULL_ERROR=1 yourself to get the full traceback instead.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any

from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from convae.config import ConfigError
from convae.data.idx import DataFileError
from convae.module import TrainingDiverged

USER_ERRORS = (ConfigError, DataFileError, TrainingDiverged)


def _squash(text: str) -> str:
    return " ".join(str(text).split())


def one_line(err: BaseException) -> str:
    """The error as one line that names the key or file, the value and what is allowed."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if isinstance(err, USER_ERRORS):
        return _squash(str(err))
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or "config"
        msg = str(getattr(cause, "msg", None) or cause).splitlines()[0]
        if isinstance(cause, ConfigKeyError) and dataclasses.is_dataclass(cause.object_type):
            names = ", ".join(f.name for f in dataclasses.fields(cause.object_type))
            return f"{key}: unknown key; valid keys here: {names}"
        return f"{key}: {msg}"
    if isinstance(err, MissingConfigException):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        options = [ln for ln in lines[2:] if not ln.startswith(("Config search", "Provider"))]
        options = options[: options.index("") if "" in options else None]
        head = lines[0].removeprefix("In 'train': ")
        return f"{head}; available: {', '.join(options[:20])}" if options else head
    if isinstance(err, ConfigCompositionException):
        return _squash(str(err))
    return f"{type(err).__name__}: {_squash(str(err))} (HYDRA_FULL_ERROR=1 shows the traceback)"


def run_cli(entry: Callable[[], Any], prog: str) -> Any:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return entry()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return entry()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
