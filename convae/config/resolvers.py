"""Hydra resolvers for run folders."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from omegaconf import OmegaConf

from convae.hardware import available_cores

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+\-\[\]@]")
MAX_NAME = 200  # most file systems allow 255 bytes per name


def job_dirname(override_dirname: str, job_num: int) -> str:
    """A sweep job's folder: its overrides (``model.upsample=transposed,seed=2``) made
    file-system safe ('/' and other unsafe characters become '_'), or ``job<N>`` if none.
    A name changed on the way (or cut to MAX_NAME) ends in ``~`` and 6 hex digits of a hash
    of the overrides: ``data.root=x/y`` and ``data.root=x_y`` get two folders, and a job run
    again (a requeue, ``sweep_existing=continue``) finds its folder again."""
    raw = str(override_dirname)
    name = _UNSAFE.sub("_", raw)  # '~' is unsafe too: only the suffix has one
    if name != raw or len(name) > MAX_NAME:
        tag = "~" + hashlib.sha256(raw.encode()).hexdigest()[:6]
        if len(name) + len(tag) > MAX_NAME:
            name = name[: MAX_NAME - len(tag) - 3] + "..."
        name += tag
    return name or f"job{job_num}"


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """A resumed run continues in its own folder (same TensorBoard run, same results.json);
    any other run gets the new timestamped folder."""
    if resume:
        return resume
    if ckpt_path and Path(ckpt_path).parent.name == "checkpoints":
        return str(Path(ckpt_path).parent.parent)
    return new


def output_subdir(resume: str | None, ckpt_path: str | None, stamp: str) -> str:
    """Where Hydra saves the composed config: ``.hydra``, or for a resume into an existing
    run ``.hydra/resume-<stamp>``, so the run's own config files are never overwritten."""
    return f".hydra/resume-{stamp}" if resume or run_dir(None, ckpt_path, "") else ".hydra"


def register_resolvers() -> None:
    resolvers = {
        "convae_job_dirname": job_dirname,
        "convae_run_dir": run_dir,
        "convae_output_subdir": output_subdir,
        "convae_cores": available_cores,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
