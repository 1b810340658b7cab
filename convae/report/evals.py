"""convae-eval's numbers in the report: each noise level of a job's ``eval/eval.json`` as
metrics ``eval@<noise std>/<name>`` (``eval@0.5/psnr``), so report.csv, ``--metrics`` and
the tables take them like any other metric, with the direction the catalogue gives
``<name>``.

An eval.json older than the job's results.json scored a model the run has trained on since
(a resume): it is left out, and named, rather than reported beside numbers it does not
belong to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convae.runs.results import EVAL_DIR, EVAL_JSON, RESULTS

PREFIX = "eval@"
SHOWN = ("psnr", "grid")  # per level in report.md; every metric is in report.csv


def eval_tag(noise_std: float, name: str) -> str:
    return f"{PREFIX}{noise_std:g}/{name}"


def is_eval_tag(tag: str) -> bool:
    return tag.startswith(PREFIX)


def eval_metrics(folder: Path) -> tuple[dict[str, float], str | None]:
    """The job's eval metrics by tag, and what was wrong with its eval.json (None if fine
    or absent)."""
    path = folder / EVAL_DIR / EVAL_JSON
    if not path.is_file():
        return {}, None
    results = folder / RESULTS
    try:
        if results.is_file() and path.stat().st_mtime < results.stat().st_mtime:
            return {}, "older than results.json (the run trained on since): left out"
        levels = json.loads(path.read_text()).get("levels")
    except (OSError, ValueError, AttributeError) as err:
        return {}, f"cannot be read ({type(err).__name__}: {err}): left out"
    if not isinstance(levels, list):
        return {}, "holds no list of levels: left out"
    metrics: dict[str, float] = {}
    for level in levels:
        std = level.get("noise_std") if isinstance(level, dict) else None
        if not _is_number(std):
            continue
        for name, value in level.items():
            if name != "noise_std" and _is_number(value):
                metrics[eval_tag(float(std), str(name))] = float(value)
    return metrics, None


def shown_eval_metrics(present: list[str]) -> list[str]:
    """report.md's noise-level columns: SHOWN per level, levels in order."""
    levels = sorted({float(t[len(PREFIX) :].split("/")[0]) for t in present if is_eval_tag(t)})
    wanted = [eval_tag(std, name) for name in SHOWN for std in levels]
    return [t for t in wanted if t in present]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
