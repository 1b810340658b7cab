"""results.json: what a finished (or failed) run leaves for reports and sweeps."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convae.errors import ConvaeError
from convae.runs.checkpoint import in_run

RESULTS = "results.json"
# convae-eval's record in a run folder: eval/eval.json and its picture
EVAL_DIR, EVAL_JSON, EVAL_PNG = "eval", "eval.json", "eval.png"

_HINTS = {
    errno.ENOSPC: "free space on its filesystem",
    errno.EDQUOT: "free space or raise the quota",
    errno.EROFS: "put the run on a writable filesystem",
    errno.EFBIG: "the file is larger than this system allows",
}


class RunFileError(ConvaeError, OSError):
    """A file of a run (results.json, metrics.csv, TensorBoard events, ...) could not be
    written: disk full, quota, read-only. One line naming the file, the system's reason and
    what to do, where a bare OSError from a write names no file at all. An OSError, so code
    that tolerates an unwritable file (``except OSError``) still does."""

    def __init__(self, path: str | Path, err: OSError) -> None:
        self.path, self.os_error = Path(path), err
        reason = f"[Errno {err.errno}] {err.strerror}" if err.strerror else str(err)
        hint = _HINTS.get(err.errno or 0, "check that the folder is writable")
        super().__init__(f"cannot write {path}: {reason}; {hint}")
        self.errno = err.errno

    def __reduce__(self) -> tuple[Any, ...]:  # rebuilt from its arguments (joblib workers)
        return type(self), (self.path, self.os_error)


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """An OSError inside becomes a RunFileError naming ``path``."""
    try:
        yield
    except RunFileError:
        raise
    except OSError as err:
        raise RunFileError(path, err) from err


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Temporary file + rename in the same folder: a killed process never leaves half a
    file, and a reader never sees one. A failed write (disk full, read-only) raises a
    RunFileError naming ``path`` and leaves no temporary file."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide results from co-workers
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
            raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's results.json, or {} when there is none (or it is unreadable, or valid
    JSON of another shape: a run of unknown state, said in one WARNING line)."""
    path = Path(run_dir) / RESULTS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    problem = results_shape_problem(data)
    if problem is not None:
        if path not in _warned:  # read several times per run; said once
            _warned.add(path)
            logging.getLogger("convae").warning("%s: %s; treated as a run of unknown state",
                                                path, problem)  # fmt: skip
        return {}
    return data


_warned: set[Path] = set()
_JSON_NAMES = {list: "a list", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}  # fmt: skip


def results_shape_problem(data: Any) -> str | None:
    """None for a JSON object, else e.g. "results.json holds a list, not an object"."""
    if isinstance(data, dict):
        return None
    return f"{RESULTS} holds {_JSON_NAMES.get(type(data), type(data).__name__)}, not an object"


def tested_checkpoint(run_dir: str | Path, results: dict[str, Any] | None = None) -> Path | None:
    """The weights a run's test metrics came from: its best checkpoint, else
    checkpoints/last.ckpt; None if neither. Always this folder's own files, wherever the
    run was copied or moved: the recorded path is relative to the folder (one outside it
    is refused, convae/runs/checkpoint.py's ``in_run``)."""
    run_dir = Path(run_dir)
    best = (read_results(run_dir) if results is None else results).get("best_checkpoint")
    candidates = [in_run(best, run_dir)] if isinstance(best, str) and best else []
    candidates.append(run_dir / "checkpoints" / "last.ckpt")
    return next((c for c in candidates if c.is_file()), None)


def versions() -> dict[str, str]:
    import hydra
    import pytorch_lightning
    import torch

    import convae

    return {
        "convae": convae.__version__,
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "hydra": hydra.__version__,
    }


@functools.cache
def git_commit() -> str | None:
    """The commit of the convae checkout, when it is one (editable installs). Looked up once
    per process (convae.train asks at import), so runs record the commit whose code they
    imported, not one made while a sweep was running."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def to_floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())}
