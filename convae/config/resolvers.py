"""Hydra resolvers for run folders."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from convae.hardware import available_cores

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+\-\[\]@]")
MAX_NAME = 200  # most file systems allow 255 bytes per name


def safe_name(raw: str, job_num: int) -> str:
    """``raw`` made file-system safe ('/' and other unsafe characters become '_'), or
    ``job<N>`` if empty. A name changed on the way (or cut to MAX_NAME) ends in ``~`` and 6
    hex digits of a hash of ``raw``: ``data.root=x/y`` and ``data.root=x_y`` get two folders,
    and a job run again (a requeue, ``sweep_existing=continue``) finds its folder again."""
    raw = str(raw)
    name = _UNSAFE.sub("_", raw)  # '~' is unsafe too: only the suffix has one
    if name != raw or len(name) > MAX_NAME:
        tag = "~" + hashlib.sha256(raw.encode()).hexdigest()[:6]
        if len(name) + len(tag) > MAX_NAME:
            name = name[: MAX_NAME - len(tag) - 3] + "..."
        name += tag
    return name or f"job{job_num}"


def job_overrides_name(task: Sequence[str], exclude: Sequence[str]) -> str:
    """``upsample=transposed,seed=2``: the job's overrides but the excluded (the sweep's
    fixed keys), in the order the sweep gave them (Hydra's own override_dirname sorts them,
    which put ``model.upsample`` after ``data.*``), each key cut to its last part where no
    other key of the name ends the same (``noise_std``, not ``data.noise_std``)."""
    parsed = [o for o in OverridesParser.create().parse_overrides(list(task))
              if o.key_or_group not in set(exclude)]  # fmt: skip
    lines = {o.key_or_group: o.input_line for o in parsed}  # first position, last value
    ends = Counter(key.rsplit(".", 1)[-1] for key in lines)
    items = []
    for key, line in lines.items():
        end = key.rsplit(".", 1)[-1]
        if end != key and ends[end] == 1 and end not in lines:
            line = line.replace(key, end, 1)  # keeps a +/~ prefix
        items.append(line)
    return ",".join(items)


def job_dirname(
    task: Sequence[str],
    exclude: Sequence[str],
    job_num: int,
    sweep_dir: str = "",
    sorted_name: str = "",
) -> str:
    """A sweep job's folder: :func:`safe_name` of :func:`job_overrides_name`. A sweep made
    before names followed the sweep's order (``sorted_name``, Hydra's override_dirname) keeps
    its folders: continued, its jobs find them again."""
    if sorted_name and sweep_dir:
        earlier = safe_name(sorted_name, job_num)
        if (Path(sweep_dir) / earlier).is_dir():
            return earlier
    return safe_name(job_overrides_name(task, exclude), job_num)


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
