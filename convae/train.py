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
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.callbacks.interrupt import GracefulInterrupt, JobInterrupted
from convae.callbacks.latent import LatentSpace
from convae.config.convert import plain, to_container
from convae.config.errors import ConfigError, condensing_errors, one_line, run_cli
from convae.config.schema import register_configs
from convae.config.validate import check_known_keys, objective_tags, validate
from convae.data.datamodule import ImageDataModule
from convae.hardware import available_cores, capped_threads, default_threads
from convae.runs.checkpoint import read_checkpoint, run_relative
from convae.runs.folder import claim_run_folder, prepare_run_folder
from convae.runs.hydra_record import Composition
from convae.runs.lock import LOCK_NAME, FolderRefused
from convae.runs.results import (
    RESULTS,
    git_commit,
    read_results,
    to_floats,
    versions,
    write_json_atomic,
)
from convae.runs.resume import (
    config_for_resume,
    requeued_checkpoint,
    resume_checkpoint,
    trained_precision,
)
from convae.sweeps.summary import unfinished_jobs
from convae.tracking.hparams import run_hparams
from convae.tracking.loggers import build_loggers, log_run_file, log_run_params
from convae.training.build import build_datamodule, build_module, build_trainer
from convae.training.module import AutoencoderModule

log = logging.getLogger("convae")
git_commit()  # now, while the checkout holds the code this process imported


class Interrupted(SystemExit):
    """Training stopped on SIGTERM/SIGINT after saving a resumable checkpoint: exit 143."""

    def __init__(self, why: str) -> None:
        super().__init__(143)
        self.why = why


def train(cfg: DictConfig, run_dir: Path, composition: Composition | None = None) -> dict[str, Any]:
    check_known_keys(cfg)  # this command line's +keys: a resume goes on with the saved config
    ckpt = resume_checkpoint(cfg) or requeued_checkpoint(run_dir)
    if ckpt is not None:
        cfg = config_for_resume(cfg, ckpt, HydraConfig.get().overrides.task)
    # The one gate, before any data is loaded or model built; it resolves the precision.
    precision = validate(cfg, trained_precision=trained_precision(ckpt))
    if composition is not None and rank_zero_only.rank == 0:
        composition.save(run_dir)  # accepted: Hydra's record of this command (.hydra/)
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


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | list[float] | None:
    """What a sweeper gets back: the optimized_metric's final value(s)."""
    values = [metrics.get(t) for t in objective_tags(cfg)]
    return values[0] if isinstance(plain(cfg.optimized_metric), str) else values


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
        trainer.test(module, datamodule=dm, ckpt_path=best, weights_only=True)
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
    if trainer.is_global_zero:
        write_json_atomic(
            run_dir / RESULTS,
            {
                "status": "interrupted",
                "checkpoint": run_relative(saved, run_dir),
                "resume": f"convae-train resume={run_dir}" if saved else "run it again",
                "global_step": trainer.global_step,
                "train_time_s": train_time_s(trainer) if train_time is None else train_time,
                "config": to_container(cfg),
                "overrides": overrides,
            },
        )
    log.warning("Interrupted at step %d (checkpoint: %s)", trainer.global_step, saved)
    how = f"resume with convae-train resume={run_dir}" if saved else "no checkpoint saved"
    return f"{run_dir} interrupted at step {trainer.global_step}; {how}"


def record_failure(cfg: DictConfig, run_dir: Path, err: BaseException) -> None:
    """results.json says failed, unless it holds a finished or interrupted run (a resume
    that failed): that record stays, and the failure goes beside it."""
    if rank_zero_only.rank != 0:
        return
    keep = read_results(run_dir).get("status") in ("completed", "interrupted")
    record = run_dir / ("failed_resume.json" if keep else RESULTS)
    try:
        write_json_atomic(
            record,
            {
                "status": "failed",
                "error": one_line(err),
                "config": _container_or_raw(cfg),
                "overrides": list(HydraConfig.get().overrides.task),
            },
        )
    except OSError as unwritable:  # e.g. a read-only run folder: the caller still reports err
        log.error("Could not record the failure in %s: %s", record, unwritable)


def _container_or_raw(cfg: DictConfig) -> dict[str, Any]:
    try:
        return to_container(cfg)
    except Exception:  # the failure may be an interpolation that does not resolve
        return OmegaConf.to_container(cfg, resolve=False)


def close_run_log(run_dir: Path) -> None:
    """Closes the log files Hydra opened inside ``run_dir`` (train.log), so that no later
    record of this process reaches a folder it was refused."""
    root, inside = logging.getLogger(), run_dir.absolute()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if name and inside in Path(name).parents:
            root.removeHandler(handler)
            handler.close()


def _remove_if_empty(run_dir: Path) -> None:
    """A single run rejected for its config leaves no folder behind (Hydra made it), nor
    the empty date folders above it, up to (not including) outputs/ (conf/train.yaml's
    hydra.run.dir is outputs/runs/<date>/<time>, relative to the launch folder)."""
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= {
        ".hydra", "train.log", LOCK_NAME}:  # fmt: skip
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    outputs = Path.cwd().resolve() / "outputs"
    parent = run_dir.resolve().parent
    while outputs in parent.parents:
        try:
            parent.rmdir()  # only when empty: another run may have started beside it
        except OSError:
            break
        parent = parent.parent


register_configs()


@hydra.main(version_base="1.3", config_path="pkg://convae.conf", config_name="train")
def hydra_main(cfg: DictConfig) -> float | list[float] | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    composition = Composition.capture(cfg)  # as composed, before a resume or threads change it
    lock = None  # one writer per run folder (convae/runs/folder.py), held to the end
    try:
        lock = claim_run_folder(run_dir)  # None on DDP ranks > 0: rank 0 holds it
        in_sweep = hc.mode == RunMode.MULTIRUN
        done = prepare_run_folder(cfg, run_dir, in_sweep, lock) if lock else None
        if done is not None:  # a sweep job that completed earlier: nothing run or written
            return objective(cfg, done["metrics"])
        results = train(cfg, run_dir, composition)
    except Interrupted as stop:
        if hc.mode != RunMode.MULTIRUN:
            raise
        raise JobInterrupted(stop.why) from None
    except Exception as err:
        if isinstance(err, FolderRefused):
            close_run_log(run_dir)  # another process's folder, or not ours: left untouched
        elif isinstance(err, ConfigError) and hc.mode != RunMode.MULTIRUN:
            _remove_if_empty(run_dir)
        else:
            record_failure(cfg, run_dir, err)
        if hc.mode == RunMode.MULTIRUN or not condensing_errors():
            raise  # a sweep records the failure and goes on with the other jobs
        # Raised past Hydra, which would print its own "Error executing job" line first.
        print(f"convae-train: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if lock is not None:
            lock.release()
    return objective(cfg, results["metrics"])  # what a sweeper such as Optuna optimises


def main() -> None:
    run_cli(hydra_main, "convae-train", more=unfinished_jobs)


if __name__ == "__main__":
    main()
