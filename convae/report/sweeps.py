"""Reading sweep folders: each job folder becomes a Job (completed, failed, interrupted,
unfinished, unreadable or never started) and the jobs one frame of raw values; no other part
of convae-report reads the files a sweep leaves, but for the curves' metrics.csv and event
files (convae.report.curves). A file that cannot be read, or holds the wrong shape, becomes a
BadFile: one line naming it, and the job it belongs to is listed, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.errors import OverrideParseException

from convae.config.convert import flatten
from convae.config.resolvers import job_overrides_name, safe_name
from convae.hydra_compat import basic_sweep_jobs
from convae.report.evals import eval_metrics
from convae.runs.results import EVAL_DIR, EVAL_JSON, RESULTS, results_shape_problem

SOURCE_USED = "data.source_used"  # the source a job really read ("auto" may mean either)
SWEEP = "sweep"  # the column naming a job's sweep (its folder, when a report has several)
JOB_COLUMNS = [SWEEP, "job", "status", "error"]
RUN_COLUMNS = ["params", "wall_time_s", "train_time_s", "global_step"]


class ReportError(Exception):
    """A problem with the user's input: reported in one line, exit code 2."""


@dataclass(frozen=True)
class BadFile:
    """A file of a sweep that the report could not use (or only partly): one line naming it,
    a warning on stderr and an entry in report.md."""

    path: Path
    reason: str

    def line(self) -> str:
        return f"{self.path}: {' '.join(self.reason.split())}"


def one_line(err: BaseException) -> str:
    """An exception as ``Type: message`` on one line (an OSError by its strerror)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


UNREADABLE = "unreadable"  # a results.json that is not JSON, or JSON of the wrong shape
# The type each key of results.json the report reads must have, when present and not null.
RESULTS_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "error": (str,),
    "metrics": (dict,),
    "config": (dict,),
    "overrides": (list,),
}


@dataclass
class Job:
    sweep: Path
    folder: Path
    status: str  # completed | failed | interrupted | unfinished | unreadable | not started
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    # what the sweep launched it with (.hydra/overrides.yaml); a resume's overrides
    # (threads=2, a larger trainer.max_steps) are added to results.json's alone
    launched_with: list[str] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)  # its results.json, when bad


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _resolved(config: Any) -> dict[str, Any]:
    """Failed and unfinished jobs keep interpolations (``${...}``); resolving them where
    possible stops a key from looking as if it varied only because it was not resolved."""
    if not isinstance(config, dict):
        return {}
    from omegaconf import OmegaConf

    try:
        resolved = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
    except Exception:
        return config
    return resolved if isinstance(resolved, dict) else config


def _is_job_folder(path: Path) -> bool:
    return path.is_dir() and ((path / RESULTS).is_file() or (path / ".hydra").is_dir())


def read_job(sweep: Path, folder: Path) -> Job:
    """One job folder: results.json when there, else what Hydra wrote when it started it.
    A results.json that cannot be read, or holds the wrong shape, makes the job
    ``unreadable``, with the file in its ``bad_files``."""
    hydra_overrides = read_yaml(folder / ".hydra" / "overrides.yaml")
    overrides = [str(o) for o in hydra_overrides] if isinstance(hydra_overrides, list) else []
    results_path = folder / RESULTS
    if not results_path.is_file():
        config = _resolved(read_yaml(folder / ".hydra" / "config.yaml"))
        return Job(sweep, folder, "unfinished", "no results.json", config, overrides=overrides)

    def unreadable(problem: str) -> Job:  # ``problem`` follows "results.json": "holds ..."
        config = _resolved(read_yaml(folder / ".hydra" / "config.yaml"))
        bad = BadFile(results_path, f"{problem}; job listed as {UNREADABLE}")
        return Job(sweep, folder, UNREADABLE, f"{RESULTS} {problem}", config,
                   overrides=overrides, launched_with=overrides, bad_files=[bad])  # fmt: skip

    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: not JSON, not UTF-8
        return unreadable(f"cannot be read ({one_line(err)})")
    if results_shape_problem(results) is not None:  # "results.json holds a list, not ..."
        return unreadable(f"holds {_json_name(results)}, not an object")
    problem = _key_problem(results)
    if problem is not None:
        return unreadable(problem)
    status = str(results.get("status") or "unknown")
    raw_metrics = results.get("metrics") or {}
    metrics = {str(k): float(v) for k, v in raw_metrics.items() if _is_number(v)}
    bad_files = []
    if len(metrics) < len(raw_metrics):
        names = ", ".join(sorted(str(k) for k, v in raw_metrics.items() if not _is_number(v)))
        reason = f"metrics not numbers, left out: {names}"
        bad_files.append(BadFile(results_path, reason))
    if status == "completed":
        evals, problem = eval_metrics(folder)
        metrics.update(evals)
        if problem is not None:
            bad_files.append(BadFile(folder / EVAL_DIR / EVAL_JSON, problem))
    return Job(
        sweep=sweep,
        folder=folder,
        status=status,
        error="" if status == "completed" else _problem(results),
        config=_resolved(results.get("config")),
        metrics=metrics,
        results=results,
        overrides=[str(o) for o in results.get("overrides") or overrides],
        launched_with=overrides,
        bad_files=bad_files,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_name(value: Any) -> str:
    """How JSON calls the type of ``value``: an object, a list, a string, a number..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _key_problem(results: dict[str, Any]) -> str | None:
    """A key of results.json the report reads holding the wrong type (``metrics`` a list),
    in words; None when every one is right."""
    for key, types in RESULTS_TYPES.items():
        value = results.get(key)
        if value is not None and not isinstance(value, types):
            expected = _json_name(types[0]())
            return f"has {key} as {_json_name(value)}, not {expected}"
    return None


def _problem(results: dict[str, Any]) -> str:
    """Why a job did not complete: its error, or for an interrupted one how to resume it."""
    if results.get("error"):
        return str(results["error"])
    parts = []
    if results.get("global_step") is not None:
        parts.append(f"stopped at step {results['global_step']}")
    if results.get("resume"):
        parts.append(f"resume with `{results['resume']}`")
    return "; ".join(parts)


def expected_overrides(sweep: Path) -> list[list[str]] | None:
    """The jobs a basic-sweeper sweep was asked for (from multirun.yaml), to list those that
    never got a folder; None when unknown (no multirun.yaml, or another sweeper)."""
    multirun = read_yaml(sweep / "multirun.yaml")
    hydra_cfg = multirun.get("hydra") if isinstance(multirun, dict) else None
    sweeper = hydra_cfg.get("sweeper") if isinstance(hydra_cfg, dict) else None
    if not isinstance(sweeper, dict) or "BasicSweeper" not in str(sweeper.get("_target_")):
        return None
    try:
        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        task = [str(o) for o in hydra_cfg["overrides"]["task"]]
        return basic_sweep_jobs([*params, *task])
    except (KeyError, TypeError, AttributeError, OverrideParseException):
        return None  # a hand-edited or foreign multirun.yaml: the report lists what exists


def sweep_overrides(sweep: Path) -> list[str]:
    """The command-line overrides of the sweep, to show how to run it again."""
    multirun = read_yaml(sweep / "multirun.yaml")
    try:
        return [str(o) for o in multirun["hydra"]["overrides"]["task"]]
    except (KeyError, TypeError):
        return []


def read_sweep(sweep: Path) -> list[Job]:
    """Every job of a sweep folder (or the folder itself when it is a single run)."""
    if not sweep.is_dir():
        raise ReportError(
            f"{sweep}: no such folder" if not sweep.exists() else f"{sweep}: not a folder"
        )
    folders = sorted(p for p in sweep.iterdir() if not p.name.startswith(".") and _is_job_folder(p))
    if not folders and (sweep / RESULTS).is_file():
        folders = [sweep]
    jobs = [read_job(sweep, f) for f in folders]
    expected = expected_overrides(sweep)
    if not jobs and not expected:
        raise ReportError(
            f"{sweep}: no {RESULTS} in it or in its job folders; "
            "pass a sweep folder (outputs/multirun/<date>/<time>) with finished jobs"
        )
    if expected:
        seen = {_job_identity(j.launched_with or j.overrides) for j in jobs}
        swept = _swept_keys(expected)
        for overrides in expected:
            if _job_identity(overrides) not in seen:
                # named as its folder would have been: by the keys the sweep varies
                fixed = [_key(o) for o in overrides if _key(o) not in swept]
                name = safe_name(job_overrides_name(overrides, fixed) or ",".join(overrides), 0)
                error = "no job folder (the sweep stopped before it)"
                jobs.append(Job(sweep, sweep / name, "not started", error, overrides=overrides))
    return jobs


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _swept_keys(jobs: Sequence[Sequence[str]]) -> set[str]:
    """The keys given more than one value across a sweep's jobs."""
    values: dict[str, set[str]] = {}
    for overrides in jobs:
        for override in overrides:
            values.setdefault(_key(override), set()).add(override)
    return {key for key, seen in values.items() if len(seen) > 1}


def _job_identity(overrides: Sequence[str]) -> frozenset[str]:
    """A job's overrides, less sweep_existing: a sweep continued with
    sweep_existing=continue asks for the same jobs its first run did."""
    return frozenset(o for o in overrides if _key(o) != "sweep_existing")


def sweep_labels(sweeps: Sequence[Path]) -> dict[str, str]:
    """Each sweep folder (as the frame's sweep column names it) by the fewest trailing parts
    of its path that tell it from the others: ``17-10-13``, or ``12-03/17-10-13`` when two
    sweeps ran at the same time on different days. A folder given twice is one sweep."""
    parts = {str(s): Path(s).absolute().parts for s in sweeps}
    longest = max((len(p) for p in parts.values()), default=1)
    for n in range(1, longest + 1):
        labels = {s: "/".join(p[-n:]) for s, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {s: s for s in parts}


def _job_name(job: Job, sweeps: Sequence[Path]) -> tuple[str, str]:
    sweep = str(job.sweep) if len(sweeps) > 1 else job.sweep.name
    return sweep, (job.folder.name if job.folder != job.sweep else ".")


def jobs_frame(jobs: Sequence[Job], sweeps: Sequence[Path]) -> pd.DataFrame:
    """One row per job: identity, status, the flattened config, run facts, metrics."""
    rows = []
    for job in jobs:
        sweep, name = _job_name(job, sweeps)
        config = flatten(job.config) if job.config else overrides_as_values(job.overrides)
        if job.results.get("data_source") is not None:
            config[SOURCE_USED] = job.results["data_source"]
        facts = {k: job.results.get(k) for k in RUN_COLUMNS}
        row = {"sweep": sweep, "job": name, "status": job.status, "error": job.error}
        extra = {"_path": str(job.folder), "_has_config": bool(job.config)}
        rows.append({**row, **config, **facts, **job.metrics, **extra})
    return pd.DataFrame(rows, dtype=object)  # object: ints stay ints where others are missing


def overrides_as_values(overrides: Sequence[str]) -> dict[str, Any]:
    """``key=value`` overrides as typed values: what is known of a job that never started."""
    values = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key and key[0] not in "+~":
            try:
                values[key] = yaml.safe_load(value)
            except yaml.YAMLError:
                values[key] = value
    return values
