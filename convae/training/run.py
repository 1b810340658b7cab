"""A training run, from a checked config to results.json: data, model, Lightning Trainer,
the step-0 validation, fit, the final validation and test, and the record of an
interruption. convae-train (convae/train.py) imports it only once the config has passed
the gate, so its answers to bad input come before torch and Lightning are imported."""

from __future__ import annotations

import logging
import math
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.callbacks.interrupt import GracefulInterrupt
from convae.callbacks.latent import LatentSpace
from convae.config.convert import to_container
from convae.config.precision import Precision
from convae.data.datamodule import ImageDataModule
from convae.hardware import available_cores, capped_threads, default_threads
from convae.runs.checkpoint import read_checkpoint, run_relative
from convae.runs.results import (
    RESULTS,
    git_commit,
    read_results,
    to_floats,
    versions,
    write_json_atomic,
)
from convae.runs.stopping import Interrupted
from convae.tracking.console import quiet_sweep
from convae.tracking.hparams import run_hparams
from convae.tracking.loggers import build_loggers, log_run_file, log_run_params
from convae.training.build import build_datamodule, build_module, build_trainer
from convae.training.module import AutoencoderModule

log = logging.getLogger("convae")


def train(
    cfg: DictConfig, run_dir: Path, ckpt: Path | None, precision: Precision
) -> dict[str, Any]:
    """Trains, validates and tests the checked config ``cfg`` in ``run_dir`` (resuming from
    ``ckpt`` if given) and writes results.json; raises Interrupted on SIGTERM/SIGINT."""
    log.info("precision %s: %s", precision.value, precision.reason)
    started = time.time()
    if cfg.threads is not None:
        cfg.threads = capped_threads(cfg.threads)  # results.json records the value used
    torch.set_num_threads(cfg.threads or default_threads())
    pl.seed_everything(cfg.seed, workers=True)
    log.info("Composed config:\n%s", OmegaConf.to_yaml(cfg))

    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg)
    loggers = build_loggers(cfg.logger, run_dir)
    trainer = build_trainer(cfg, run_dir, loggers, precision)
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
    unreachable = unreachable_max_steps(cfg.trainer, len(dm.train_set), trainer.world_size,
                                        cfg.data.batch_size)  # fmt: skip
    if unreachable:
        log.warning(unreachable)
    overrides = run_overrides(run_dir, resumed=ckpt is not None)
    train_time = None  # read before trainer.test, which loads the best checkpoint's Timer
    try:
        if ckpt is None:  # a resumed run has its hparams and step-0 numbers already
            if trainer.is_global_zero:
                log_run_params(
                    loggers,
                    run_hparams(to_container(cfg), **{"data.source_used": dm.source_used,
                                                      "trainer.precision_used": precision.value,
                                                      "params": module.num_parameters}),
                )  # fmt: skip
            trainer.validate(module, datamodule=dm, verbose=False)  # step 0: untrained model
        else:
            log.info("Resuming in %s from %s", run_dir, ckpt)
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=True)
        train_time = train_time_s(trainer)
        metrics = final_metrics(cfg, trainer, module, dm)
    except SIGTERMException:
        why = record_interrupt(cfg, run_dir, trainer, overrides, train_time)
        raise Interrupted(why) from None

    checkpoint = trainer.checkpoint_callback
    best_score = checkpoint.best_model_score if checkpoint else None
    results = {
        "status": "completed",
        "metrics": metrics,
        # the best validation value of the monitored metric (its checkpoint is the tested one)
        "best_monitor": float(best_score) if best_score is not None else None,
        "data_source": dm.source_used,
        # what the model was built for: channels and (square) image size
        "image_channels": dm.shape.channels,
        "image_size": dm.shape.size,
        "params": module.num_parameters,
        "wall_time_s": round(time.time() - started, 2),  # this process, startup to test
        "train_time_s": train_time,
        "global_step": trainer.global_step,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "accelerator": type(trainer.accelerator).__name__,
        "precision": precision.value,  # what trainer.precision (auto by default) resolved to
        "precision_reason": precision.reason,
        # transposed convolutions kept in float32 under bf16 autocast (config/precision.py)
        "float32_transposed": precision.float32_transposed,
        # paths inside the run folder are relative to it: a copied run names its own files
        "resumed_from": run_relative(ckpt, run_dir),
        "best_checkpoint": run_relative(checkpoint.best_model_path if checkpoint else "", run_dir),
        "config": to_container(cfg),
        "overrides": overrides,
        "launch_dir": os.getcwd(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if trainer.is_global_zero:  # other DDP ranks hold no latent scores: rank 0 alone writes
        write_json_atomic(run_dir / RESULTS, results)
        log_run_file(loggers, run_dir / RESULTS)
        log.info("Results in %s: %s", run_dir / RESULTS, metrics)
    return results


def unreachable_max_steps(
    t: DictConfig, train_images: int, world_size: int, batch_size: int
) -> str | None:
    """One line when ``trainer.max_epochs`` stops training before ``trainer.max_steps``:
    Lightning stops at whichever limit comes first and says nothing."""
    if t.max_steps == -1 or t.max_epochs == -1 or t.fast_dev_run or t.overfit_batches:
        return None
    per_epoch = math.ceil(train_images / (batch_size * world_size))
    limit = t.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        per_epoch = min(per_epoch, limit)
    elif isinstance(limit, float):
        per_epoch = max(1, int(per_epoch * limit))
    if t.max_epochs * per_epoch >= t.max_steps:
        return None
    return (
        f"trainer.max_steps={t.max_steps} will not be reached: trainer.max_epochs="
        f"{t.max_epochs} x {per_epoch} steps per epoch stops training at step "
        f"{t.max_epochs * per_epoch}; raise trainer.max_epochs or set it to -1"
    )


def run_overrides(run_dir: Path, resumed: bool) -> list[str]:
    """The command-line overrides that made this run; a resumed run keeps its first ones."""
    current = [
        o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "ckpt_path="))
    ]
    previous = read_results(run_dir).get("overrides") if resumed else None
    return list(previous or []) + [o for o in current if o not in (previous or [])]


def final_metrics(
    cfg: DictConfig, trainer: pl.Trainer, module: AutoencoderModule, dm: ImageDataModule
) -> dict[str, float]:
    """Last validation's metrics (validating the final weights if training stopped between
    validations, e.g. on max_steps), then the test split with the best checkpoint."""
    if module.validated_at_step != trainer.global_step:
        trainer.validate(module, datamodule=dm, verbose=False)
    metrics = to_floats(trainer.callback_metrics)
    if cfg.test:
        ckpt = trainer.checkpoint_callback
        best = "best" if ckpt is not None and ckpt.best_model_path else None
        if best:  # e.g. a resumed run's earlier best: our one-line error, not Lightning's
            read_checkpoint(ckpt.best_model_path)
        # A sweep job's test results are in train.log's "Results in" line, not a console box.
        trainer.test(module, datamodule=dm, ckpt_path=best, weights_only=True,
                     verbose=not quiet_sweep())  # fmt: skip
        metrics.update(to_floats(trainer.callback_metrics))
    metrics.pop("train/loss", None)  # the last batch's loss says little; the curve is in TB
    for callback in trainer.callbacks:
        if isinstance(callback, LatentSpace):
            metrics.update(callback.scores)
    return metrics


def train_time_s(trainer: pl.Trainer) -> float:
    """Seconds of fitting (its validations included) summed over every segment of a run
    that was interrupted and resumed, where wall_time_s is this process's alone: Lightning's
    Timer carries the count in each checkpoint."""
    timer = next(cb for cb in trainer.callbacks if isinstance(cb, Timer))
    return round(timer.time_elapsed("train"), 2)


def record_interrupt(
    cfg: DictConfig,
    run_dir: Path,
    trainer: pl.Trainer,
    overrides: list[str],
    train_time: float | None = None,
) -> str:
    """results.json says interrupted, with how to resume; ``train_time``: the fit's, if the
    signal came after it (in the test stage)."""
    saved = next(cb.saved for cb in trainer.callbacks if isinstance(cb, GracefulInterrupt))
    last = run_dir / "checkpoints" / "last.ckpt"
    if saved is None and train_time is not None and last.is_file():
        saved = last  # stopped in the test stage: the fit's last checkpoint resumes it
    resume = f"convae-train resume={shlex.quote(str(run_dir))}"  # pastes as it is
    if trainer.is_global_zero:
        write_json_atomic(
            run_dir / RESULTS,
            {
                "status": "interrupted",
                "checkpoint": run_relative(saved, run_dir),
                "resume": resume if saved else "run it again",
                "global_step": trainer.global_step,
                "train_time_s": train_time_s(trainer) if train_time is None else train_time,
                "config": to_container(cfg),
                "overrides": overrides,
            },
        )
    log.warning("Interrupted at step %d (checkpoint: %s)", trainer.global_step, saved)
    how = f"resume with {resume}" if saved else "no checkpoint saved"
    return f"{run_dir} interrupted at step {trainer.global_step}; {how}"
