"""A ModelCheckpoint whose saved state names its files relative to its folder, so a run
copied or moved elsewhere resumes with its own best checkpoint, not the original's."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

log = logging.getLogger("convae")
_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RelocatableModelCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint stores absolute paths in its state and, when ``dirpath``
    changed, restores only ``best_model_path`` (the original's file). This one stores the
    paths relative to ``dirpath`` and resolves them against the current ``dirpath``, so a
    resumed copy keeps its best score and top-k and tests its own best checkpoint. A best
    checkpoint recorded outside the current folder is not this run's: tracked afresh."""

    @property
    def state_key(self) -> str:
        """The parent's key: checkpoints written with a plain ModelCheckpoint restore here."""
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for key in _PATHS:
            state[key] = self._relative(state[key])
        state["best_k_models"] = {self._relative(p): v for p, v in state["best_k_models"].items()}
        state["dirpath"] = "."  # every path above is relative to the checkpoints' folder
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = {key: self._resolve(state_dict.get(key, "")) for key in _PATHS}
        best = state["best_model_path"]
        if best and (not os.path.isfile(best) or not self._inside(best)):
            # e.g. ckpt_path= from another run into a new folder: the best file is not
            # here, so tracking starts afresh rather than pointing at a missing file
            log.warning(
                "Best checkpoint %s recorded in the resumed checkpoint is not in %s: the "
                "best model is tracked afresh from here",
                Path(best).name,
                self.dirpath,
            )
            self.last_model_path = state["last_model_path"]
            return
        self.best_model_score = state_dict["best_model_score"]
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.best_k_models = {
            self._resolve(p): v for p, v in state_dict.get("best_k_models", {}).items()
        }
        self.best_model_path = best
        self.kth_best_model_path = state["kth_best_model_path"]
        self.last_model_path = state["last_model_path"]

    def on_train_end(self, trainer: Any, module: Any) -> None:
        # Lightning 2.6 saves last.ckpt here even under fast_dev_run, whose log line says
        # checkpointing is suppressed; a smoke test leaves no checkpoint.
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, module)

    def _relative(self, path: str) -> str:
        if not path or not self.dirpath:
            return path
        try:
            return Path(path).relative_to(self.dirpath).as_posix()
        except ValueError:  # not in this folder: kept as it is
            return path

    def _resolve(self, path: str) -> str:
        if not path or not self.dirpath:
            return path
        return os.path.join(self.dirpath, path)  # an absolute path stays as it is

    def _inside(self, path: str) -> bool:
        return bool(self.dirpath) and Path(path).resolve().is_relative_to(
            Path(self.dirpath).resolve()
        )
