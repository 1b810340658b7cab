"""convae-train: compose a config with Hydra, train with Lightning, write results.json."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.build import build_datamodule, build_logger, build_module, build_trainer
from convae.callbacks.interrupt import GracefulInterrupt
from convae.cli import condensing_errors, one_line, run_cli
from convae.config import ConfigError, register_configs, to_container, validate
from convae.data.datamodule import MnistDataModule
from convae.module import AutoencoderModule
from convae.results import (
    RESULTS,
    git_commit,
    read_results,
    to_floats,
    versions,
    write_json_atomic,
)
from convae.resume import config_for_resume, requeued_checkpoint, resume_checkpoint
from convae.tb_hparams import run_hparams, write_hparams
from convae.threads import available_cores, default_threads

log = logging.getLogger("convae")


class Interrupted(SystemExit):
    """Training stopped on SIGTERM/SIGINT after saving a resumable checkpoint."""


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    ckpt = resume_checkpoint(cfg) or requeued_checkpoint(run_dir)
    if ckpt is not None:
        cfg = config_for_resume(cfg, ckpt)
    validate(cfg)  # before any data is loaded or model built
    started = time.time()
    torch.set_num_threads(cfg.threads or default_threads())
    pl.seed_everything(cfg.seed, workers=True)
    log.info("Composed config:\n%s", OmegaConf.to_yaml(cfg))

    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg)
    logger = build_logger(run_dir)
    trainer = build_trainer(cfg, run_dir, logger)
    if cfg.threads is None and trainer.num_devices > 1 and cfg.trainer.accelerator == "cpu":
        torch.set_num_threads(max(1, available_cores() // trainer.num_devices))  # CPU DDP
    log.info(
        "torch threads %d; effective batch size %d (data.batch_size %d x %d processes); "
        "optim.lr %g as given, not rescaled",
        torch.get_num_threads(),
        cfg.data.batch_size * trainer.world_size,
        cfg.data.batch_size,
        trainer.world_size,
        cfg.optim.lr,
    )
    overrides = run_overrides(run_dir, resumed=ckpt is not None)
    try:
        if ckpt is None:  # a resumed run has its hparams and step-0 numbers already
            if trainer.is_global_zero:
                write_hparams(
                    logger.experiment,
                    run_hparams(to_container(cfg), **{"data.source_used": dm.source_used,
                                                      "params": module.num_parameters}),
                    metric_tags(module, trainer),
                )  # fmt: skip
            trainer.validate(module, datamodule=dm, verbose=False)  # step 0: untrained model
        else:
            log.info("Resuming in %s from %s", run_dir, ckpt)
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=False)
        metrics = final_metrics(cfg, trainer, module, dm)
    except SIGTERMException:
        record_interrupt(cfg, run_dir, trainer, overrides)
        raise Interrupted(143) from None

    checkpoint = trainer.checkpoint_callback
    best_score = checkpoint.best_model_score if checkpoint else None
    results = {
        "status": "completed",
        "metrics": metrics,
        # the best validation value of the monitored metric (its checkpoint is the tested one)
        "best_monitor": float(best_score) if best_score is not None else None,
        "data_source": dm.source_used,
        "params": module.num_parameters,
        "wall_time_s": round(time.time() - started, 2),
        "global_step": trainer.global_step,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "accelerator": type(trainer.accelerator).__name__,
        "resumed_from": str(ckpt) if ckpt else None,
        "best_checkpoint": (checkpoint.best_model_path if checkpoint else "") or None,
        "config": to_container(cfg),
        "overrides": overrides,
        "launch_dir": os.getcwd(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / RESULTS, results)
    log.info("Results in %s: %s", run_dir / RESULTS, metrics)
    return results


def metric_tags(module: AutoencoderModule, trainer: pl.Trainer) -> list[str]:
    """Every scalar a finished run has: the HPARAMS tab's metric columns."""
    tags = module.metric_tags()
    return tags + [
        t for cb in trainer.callbacks if hasattr(cb, "metric_tags") for t in cb.metric_tags()
    ]


def run_overrides(run_dir: Path, resumed: bool) -> list[str]:
    """The command-line overrides that made this run; a resumed run keeps its first ones."""
    current = [
        o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "ckpt_path="))
    ]
    previous = read_results(run_dir).get("overrides") if resumed else None
    return list(previous or []) + [o for o in current if o not in (previous or [])]


def final_metrics(
    cfg: DictConfig, trainer: pl.Trainer, module: AutoencoderModule, dm: MnistDataModule
) -> dict[str, float]:
    """Last validation's metrics (validating the final weights if training stopped between
    validations, e.g. on max_steps), then the test split with the best checkpoint."""
    if module.validated_at_step != trainer.global_step:
        trainer.validate(module, datamodule=dm, verbose=False)
    metrics = to_floats(trainer.callback_metrics)
    if cfg.test:
        ckpt = trainer.checkpoint_callback
        best = "best" if ckpt is not None and ckpt.best_model_path else None
        trainer.test(module, datamodule=dm, ckpt_path=best, weights_only=False)
        metrics.update(to_floats(trainer.callback_metrics))
    metrics.pop("train/loss", None)  # the last batch's loss says little; the curve is in TB
    return metrics


def record_interrupt(
    cfg: DictConfig, run_dir: Path, trainer: pl.Trainer, overrides: list[str]
) -> None:
    saved = next(cb.saved for cb in trainer.callbacks if isinstance(cb, GracefulInterrupt))
    if trainer.is_global_zero:
        write_json_atomic(
            run_dir / RESULTS,
            {
                "status": "interrupted",
                "checkpoint": str(saved) if saved else None,
                "resume": f"convae-train resume={run_dir}" if saved else "run it again",
                "global_step": trainer.global_step,
                "config": to_container(cfg),
                "overrides": overrides,
            },
        )
    log.warning("Interrupted at step %d (checkpoint: %s)", trainer.global_step, saved)


def record_failure(cfg: DictConfig, run_dir: Path, err: BaseException) -> None:
    """results.json says failed, unless it holds a finished or interrupted run (a resume
    that failed): that record stays, and the failure goes beside it."""
    if rank_zero_only.rank != 0:
        return
    keep = read_results(run_dir).get("status") in ("completed", "interrupted")
    write_json_atomic(
        run_dir / ("failed_resume.json" if keep else RESULTS),
        {
            "status": "failed",
            "error": one_line(err),
            "config": _container_or_raw(cfg),
            "overrides": list(HydraConfig.get().overrides.task),
        },
    )


def _container_or_raw(cfg: DictConfig) -> dict[str, Any]:
    try:
        return to_container(cfg)
    except Exception:  # the failure may be an interpolation that does not resolve
        return OmegaConf.to_container(cfg, resolve=False)


def _remove_if_empty(run_dir: Path) -> None:
    """A single run rejected for its config leaves no folder behind (Hydra made it)."""
    if {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)


register_configs()


@hydra.main(version_base="1.3", config_path="pkg://convae.conf", config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    try:
        results = train(cfg, run_dir)
    except Exception as err:
        if isinstance(err, ConfigError) and hc.mode != RunMode.MULTIRUN:
            _remove_if_empty(run_dir)
        else:
            record_failure(cfg, run_dir, err)
        if hc.mode == RunMode.MULTIRUN or not condensing_errors():
            raise  # a sweep records the failure and goes on with the other jobs
        # Raised past Hydra, which would print its own "Error executing job" line first.
        print(f"convae-train: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None
    return results["metrics"].get("val/loss")  # what a sweeper such as Optuna minimises


def main() -> None:
    run_cli(hydra_main, "convae-train")


if __name__ == "__main__":
    main()
