"""Run folders pasted unquoted as the value of ``resume=``, ``ckpt_path=`` or ``ckpt=``.

A sweep job's folder is named by its overrides (``upsample=transposed,seed=2``), and in
Hydra's override grammar ``=`` and ``,`` in a value are syntax: ``resume=<that folder>``
failed to parse unless the user quoted it. Such a value that names an existing file or
folder as a whole is quoted before Hydra reads the command line, so a folder (or the resume
command convae prints) pastes as it is. Any other value is Hydra's to read: ``ckpt=a,b``
sweeps over two checkpoints unless ``a,b`` itself exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

PATH_KEYS = ("resume", "ckpt_path", "ckpt")


def _reads_as_itself(arg: str, value: str) -> bool:
    try:
        override = OverridesParser.create().parse_override(arg)
    except HydraException:
        return False
    return not override.is_sweep_override() and override.value() == value


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_path_values(args: Sequence[str], keys: Sequence[str] = PATH_KEYS) -> list[str]:
    """``args`` with every ``<key>=<existing path>`` that Hydra would misread quoted."""
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if (
            sep
            and key.lstrip("+~") in keys
            and not _reads_as_itself(arg, value)
            and Path(value).exists()
        ):
            arg = f"{key}={_quoted(value)}"
        out.append(arg)
    return out
