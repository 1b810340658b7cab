"""The last line of a failed sweep names every job that did not complete.

Hydra runs all of a sweep's jobs, then raises the first failed job's error alone: when two
joblib jobs were interrupted, the sweep's last line named one, and the other was only in
the log and its results.json. ``SweepFolder`` (convae/sweeps/folder.py) remembers the sweep
folder it claimed; convae-train's error line then adds the jobs there whose results.json
does not say completed.
"""

from __future__ import annotations

from pathlib import Path

from convae.runs.results import read_results

_sweep_folders: list[Path] = []  # claimed by this process (one per sweep command)
_not_started: list[str] = []  # jobs a stopped sweep left out: no folder (sweep_signals.py)


def remember_sweep_folder(folder: Path) -> None:
    _sweep_folders.append(folder)


def remember_not_started(jobs: list[str]) -> None:
    _not_started.extend(jobs)


def sweep_folders() -> list[Path]:
    """The sweep folders this process claimed, in order."""
    return list(_sweep_folders)


def not_started() -> list[str]:
    """The jobs a stopped sweep left out (no folder)."""
    return list(_not_started)


def job_state(job: Path) -> str | None:
    """What a job folder's results.json says, or None for a completed job."""
    results = read_results(job)
    status = results.get("status")
    if status == "completed":
        return None
    if status == "interrupted":
        return f"interrupted at step {results.get('global_step')}"
    return str(status) if status else "no results.json"


def unfinished_jobs(at_least: int = 2) -> str:
    """' [k of n jobs did not complete: <job> (<state>), ...]' when at least ``at_least``
    jobs of the sweep folders this process claimed did not complete (a stopped sweep's jobs
    that were not started included); '' otherwise (by default, the error line already
    names a single one)."""
    jobs = [job for folder in _sweep_folders if folder.is_dir()
            for job in sorted(folder.iterdir())
            if job.is_dir() and not job.name.startswith(".")]  # fmt: skip
    states = [(job.name, job_state(job)) for job in jobs]
    folders = {name for name, _ in states}  # a job not started may have an older folder
    states += [(name, "not started") for name in _not_started if name not in folders]
    unfinished = [f"{name} ({state})" for name, state in states if state is not None]
    if not unfinished or len(unfinished) < at_least:
        return ""
    return f" [{len(unfinished)} of {len(states)} jobs did not complete: {', '.join(unfinished)}]"
