"""The composition record of a run (``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml``, or ``.hydra/resume-<time>/`` for a resume), written by convae once the
run folder is claimed and the config accepted. Hydra would write it before the job starts
(conf/train.yaml sets its ``output_subdir`` to null), so a command refused for a busy or
completed folder used to rewrite the record of a run it must not touch."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from convae.config.resolvers import output_subdir
from convae.runs.results import write_atomic


@dataclass(frozen=True)
class Composition:
    """The job's config and Hydra's as composed, before convae changes either."""

    task: DictConfig
    hydra: DictConfig

    @classmethod
    def capture(cls, cfg: DictConfig) -> Composition:
        return cls(copy.deepcopy(cfg), copy.deepcopy(HydraConfig.instance().cfg))

    def save(self, run_dir: Path) -> Path:
        """Writes the three files as Hydra names them; returns their folder."""
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S.%f")
        resume, ckpt_path = self.task.get("resume"), self.task.get("ckpt_path")
        out = run_dir / output_subdir(resume, ckpt_path, stamp)
        out.mkdir(parents=True, exist_ok=True)
        overrides = self.hydra.hydra.overrides.task
        for name, node in (("config", self.task), ("hydra", self.hydra), ("overrides", overrides)):
            write_atomic(out / f"{name}.yaml", OmegaConf.to_yaml(node))
        return out
