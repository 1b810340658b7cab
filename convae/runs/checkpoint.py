"""Reading checkpoints without running their code, and naming a run's files portably.

Every checkpoint convae reads (convae-eval, ``resume=``, ``ckpt_path=``, the requeue
resume, convae-report) goes through :func:`read_checkpoint` first: ``torch.load`` with
``weights_only=True``, so a crafted pickle cannot call ``exec`` or any other global while
loading. Checkpoints written by convae-train hold only tensors and plain containers (the
config is stored as a dict), so they need no allow-list. A file that cannot be used gives
a :class:`CheckpointError`, one line naming the file and why.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from convae.errors import ConvaeError

# What a failed load was; only DAMAGED files are skipped when a resume looks for a fallback.
UNREADABLE, DAMAGED, REFUSED, FOREIGN = "unreadable", "damaged", "refused", "foreign"
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_WHY_CHARS = 160
# The precision the checkpointed run trained at: written by the ExactResume callback
# (convae/callbacks/exact_resume.py), read by a resume (convae/runs/resume.py).
PRECISION_KEY = "convae_precision"


class CheckpointError(ConvaeError):
    """A checkpoint file that convae will not load: unreadable, truncated, not a convae
    checkpoint, or refused because its pickle would run code."""

    def __init__(self, path: str | Path, why: str, kind: str) -> None:
        super().__init__(f"checkpoint {path}: {why}")
        self.path, self.why, self.kind = Path(path), why, kind

    def __reduce__(self) -> tuple[Any, ...]:
        # Built again from its own arguments (the default would call it with the message
        # alone): a sweep job failing with it reaches the sweep's main process intact.
        return type(self), (self.path, self.why, self.kind), self.__dict__


def short_reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= _WHY_CHARS else text[: _WHY_CHARS - 3] + "..."


def _load_failure(path: Path, size: int, err: Exception) -> CheckpointError:
    """Which of refused / damaged a failed ``torch.load(weights_only=True)`` was."""
    forbidden = _GLOBAL.search(str(err)) if isinstance(err, pickle.UnpicklingError) else None
    if forbidden:
        why = (
            f"refused: its pickle asks for the global {forbidden.group(1)}, which could run "
            "code; convae checkpoints hold only tensors and plain containers, so this file "
            "was not written by convae-train (or was altered) and was not loaded"
        )
        return CheckpointError(path, why, REFUSED)
    if size == 0:
        return CheckpointError(path, "empty (0 bytes), e.g. a save that was killed", DAMAGED)
    if not zipfile.is_zipfile(path):
        why = f"truncated or not a PyTorch checkpoint ({size} bytes, no complete zip archive)"
        return CheckpointError(path, why, DAMAGED)
    if isinstance(err, pickle.UnpicklingError):
        why = (
            "refused: its pickle holds more than tensors and plain containers "
            f"({short_reason(err)})"
        )
        return CheckpointError(path, why, REFUSED)
    return CheckpointError(path, f"damaged ({size} bytes; {short_reason(err)})", DAMAGED)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, loaded with ``weights_only=True`` onto the CPU, checked to
    be a convae checkpoint (a state_dict and hyper_parameters.config)."""
    import torch  # here, not at the top: convae-report imports this module without torch

    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
    except OSError as err:
        raise CheckpointError(path, f"cannot be read ({err.strerror or err})", UNREADABLE) from err
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise _load_failure(path, size, err) from err
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not (
        isinstance(hparams, dict)
        and isinstance(hparams.get("config"), dict)
        and isinstance(ckpt.get("state_dict"), dict)
    ):
        why = "not a convae checkpoint (no state_dict and hyper_parameters.config)"
        raise CheckpointError(path, why, FOREIGN)
    return ckpt


def global_step(ckpt: dict[str, Any]) -> int:
    step = ckpt.get("global_step")
    return step if isinstance(step, int) else -1


def run_relative(path: str | Path | None, run_dir: str | Path) -> str | None:
    """``path`` relative to the run folder when it lies inside it (so a copied or moved run
    still names its own files), else absolute; None stays None."""
    if not path:
        return None
    path = Path(path)
    for base in (Path(run_dir), Path(run_dir).resolve()):
        for p in (path, path.resolve()):
            try:
                return p.relative_to(base).as_posix()
            except ValueError:
                pass
    return str(path.absolute())


def in_run(recorded: str, run_dir: str | Path) -> Path:
    """A file a run folder recorded, as it is now: convae records paths relative to the
    folder, so a copied or moved run names its own files. One that leads out of the folder
    (``../x``, an absolute path elsewhere, a link) is refused: results.json is data, and
    may come from anyone."""
    found = Path(run_dir) / recorded  # an absolute ``recorded`` stays as it is
    if not found.resolve().is_relative_to(Path(run_dir).resolve()):
        why = f"recorded as {recorded!r}, which lies outside the run folder {run_dir}"
        raise CheckpointError(
            found, f"refused: {why}; convae reads only a run's own files", REFUSED
        )
    return found
