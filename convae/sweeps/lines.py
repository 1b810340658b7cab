"""What a sweep says of its jobs on the console: one line per job when it ends, and a table
of every job when the sweep ends, each read from the job's results.json, so that a joblib
worker, the sweep's main process and a sweep continued later all say the same."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convae.runs.results import read_results
from convae.sweeps.summary import job_state

# The key metrics: the loss, PSNR and the artifact score, of the test split when the run
# was tested (convae/metrics/catalogue.py), else of the last validation.
KEY_METRICS = ("loss", "psnr", "grid")
NONE = "-"


@dataclass
class JobOutcome:
    """A job as the console names it: folder name, state, key metrics, seconds, error."""

    name: str
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None


def key_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """``test/loss``, ``test/psnr``, ``test/grid`` (or the ``val/`` ones of an untested run)."""
    for split in ("test", "val"):
        found = {f"{split}/{n}": metrics[f"{split}/{n}"] for n in KEY_METRICS
                 if isinstance(metrics.get(f"{split}/{n}"), (int, float))}  # fmt: skip
        if found:
            return found
    return {}


def read_outcome(job: Path, seconds: float | None = None, error: str | None = None) -> JobOutcome:
    """The job folder's outcome from its results.json; ``seconds`` where it records none
    (a failed job), ``error`` where it names none."""
    results = read_results(job)
    state = job_state(job) or "completed"
    took = results.get("wall_time_s") or results.get("train_time_s") or seconds
    return JobOutcome(
        name=job.name,
        state=state,
        metrics=key_metrics(results.get("metrics") or {}) if state == "completed" else {},
        seconds=float(took) if isinstance(took, (int, float)) else None,
        error=(results.get("error") or error) if state != "completed" else None,
    )


def number(value: float) -> str:
    """Three significant figures; small and large values in e-notation (4.10e-03)."""
    if value == 0 or 0.01 <= abs(value) < 1e5:
        return f"{value:.3g}"
    return f"{value:.2e}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def job_line(outcome: JobOutcome, number_: int | None = None, total: int | None = None) -> str:
    """``[2/4] upsample=transposed  completed  test/loss 0.132  test/psnr 17.1  test/grid
    4.10e-03  31 s``; a job that did not complete ends with its one-line error."""
    head = f"[{number_}/{total}] " if number_ and total else f"[{number_}] " if number_ else ""
    parts = [head + outcome.name, outcome.state]
    parts += [f"{tag} {number(value)}" for tag, value in outcome.metrics.items()]
    parts.append(duration(outcome.seconds))
    if outcome.error:
        parts.append(outcome.error)
    return "  ".join(parts)


def summary_table(outcomes: Sequence[JobOutcome]) -> list[str]:
    """A count line, then one aligned row per job: name, state, key metrics, time."""
    if not outcomes:
        return []
    tags = list(dict.fromkeys(tag for o in outcomes for tag in o.metrics))
    rows = [["job", "state", *tags, "time"]]
    rows += [[o.name, o.state, *(number(o.metrics[t]) if t in o.metrics else NONE for t in tags),
              duration(o.seconds)] for o in outcomes]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    completed = sum(o.state == "completed" for o in outcomes)
    count = f"{len(outcomes)} jobs: {completed} completed"
    if completed < len(outcomes):
        count += f", {len(outcomes) - completed} did not"
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return [count, *lines]
