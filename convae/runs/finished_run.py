"""A run folder as convae-train left it (finished, failed or stopped), read one way for
convae-eval, convae-report and resume: its results.json, the overrides it was started with,
the checkpoint its test metrics came from and its data as the run saw it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from convae.runs.results import read_results, tested_checkpoint


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


@dataclass(frozen=True)
class FinishedRun:
    folder: Path
    results: dict[str, Any] = field(default_factory=dict)  # {} when there is none

    @classmethod
    def read(cls, folder: str | Path) -> FinishedRun:
        return cls(Path(folder), read_results(folder))

    @property
    def status(self) -> str | None:
        """completed, failed or interrupted; None for a run that wrote no results.json."""
        return self.results.get("status")

    def checkpoint(self) -> Path | None:
        """The weights its test metrics came from: best, else last (results.tested_checkpoint)."""
        return tested_checkpoint(self.folder, self.results)

    def first_overrides(self) -> list[str] | None:
        """The command-line overrides it was started with (Hydra's .hydra/overrides.yaml,
        which a resume never rewrites); None when the folder has no record of them."""
        saved = _yaml(self.folder / ".hydra" / "overrides.yaml")
        return [str(o) for o in saved] if isinstance(saved, list) else None

    def launch_dir(self) -> Path | None:
        """The folder convae-train ran in, against which the run's relative paths (its
        ``data.root``) were read: results.json's record, else Hydra's runtime.cwd."""
        if self.results.get("launch_dir"):
            return Path(self.results["launch_dir"])
        hydra = (_yaml(self.folder / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}
        cwd = (hydra.get("runtime") or {}).get("cwd") if isinstance(hydra, dict) else None
        return Path(cwd) if cwd else None

    def data_arguments(self, config: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
        """ImageDataModule's arguments for the data this run saw, from its resolved
        ``config``: the source it really used ("auto" may have meant either; no new
        download attempt), a relative root read from its launch folder, its seed; then
        ``changes`` (e.g. ``noise_std=0.0``)."""
        from convae.data.datamodule import ImageDataModule

        accepted = inspect.signature(ImageDataModule).parameters
        data = {k: v for k, v in (config.get("data") or {}).items() if k in accepted}
        data["source"] = self.results.get("data_source") or data.get("source")
        launched = self.launch_dir()
        if data.get("root") is not None and launched is not None:
            data["root"] = str(launched / data["root"])  # an absolute root stays as it is
        return {**data, "seed": config.get("seed", 0), **changes}
