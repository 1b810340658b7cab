"""convae-train: compose a config with Hydra, train with Lightning, write results.json."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from convae.build import build_datamodule, build_logger, build_module, build_trainer
from convae.callbacks.interrupt import GracefulInterrupt
from convae.cli import one_line, run_cli
from convae.config import ConfigError, TrainConfig, register_configs, to_container, validate
from convae.paths import register_resolvers
from convae.results import RESULTS, git_commit, to_floats, versions, write_json_atomic
from convae.tb_hparams import run_hparams, write_hparams

log = logging.getLogger("convae")


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


class Interrupted(SystemExit):
    """Training stopped on SIGTERM/SIGINT after saving a resumable checkpoint."""


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    if cfg.ckpt_path:
        key, path = "ckpt_path", Path(cfg.ckpt_path)
    elif cfg.resume:
        key, path = "resume", Path(cfg.resume) / "checkpoints" / "last.ckpt"
    else:
        return None
    if not path.is_file():
        raise ConfigError(f"{key}={cfg[key]!r} is invalid: no checkpoint at {path}")
    return path


def config_for_resume(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """The checkpointed run's config, with only this command line's overrides on top
    (e.g. a larger trainer.max_epochs)."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["hyper_parameters"]
    resumed = OmegaConf.merge(OmegaConf.structured(TrainConfig), saved["config"])
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), merge=False)
    return resumed


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    ckpt = resume_checkpoint(cfg)
    if ckpt is not None:
        cfg = config_for_resume(cfg, ckpt)
    validate(cfg)
    started = time.time()
    torch.set_num_threads(cfg.threads or available_cores())
    pl.seed_everything(cfg.seed, workers=True)
    log.info("Composed config:\n%s", OmegaConf.to_yaml(cfg))

    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg)
    logger = build_logger(run_dir)
    trainer = build_trainer(cfg, run_dir, logger)
    if ckpt is None:  # a resumed run has both already
        params = {"data.source_used": dm.source_used, "params": module.num_parameters}
        tags = module.metric_tags()
        tags += [
            t for cb in trainer.callbacks if hasattr(cb, "metric_tags") for t in cb.metric_tags()
        ]
        write_hparams(logger.experiment, run_hparams(to_container(cfg), **params), tags)
        trainer.validate(module, datamodule=dm, verbose=False)  # step 0: the untrained model
    else:
        log.info(
            "Resuming %s from %s (step %s)",
            run_dir,
            ckpt,
            torch.load(ckpt, weights_only=False)["global_step"],
        )
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    except SIGTERMException:
        saved = next(cb.saved for cb in trainer.callbacks if isinstance(cb, GracefulInterrupt))
        write_json_atomic(
            run_dir / RESULTS,
            {
                "status": "interrupted",
                "checkpoint": str(saved),
                "resume": f"convae-train resume={run_dir}",
                "global_step": trainer.global_step,
                "config": to_container(cfg),
            },
        )
        log.warning(
            "Interrupted at step %d; resume with: convae-train resume=%s",
            trainer.global_step,
            run_dir,
        )
        raise Interrupted(143) from None
    metrics = to_floats(trainer.callback_metrics)
    ckpt = trainer.checkpoint_callback
    if cfg.test:
        best = "best" if ckpt is not None and ckpt.best_model_path else None
        trainer.test(module, datamodule=dm, ckpt_path=best)
        metrics.update(to_floats(trainer.callback_metrics))
    metrics.pop("train/loss", None)  # the last batch's loss says little; the curve is in TB

    results = {
        "status": "completed",
        "metrics": metrics,
        "data_source": dm.source_used,
        "params": module.num_parameters,
        "wall_time_s": round(time.time() - started, 2),
        "global_step": trainer.global_step,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "accelerator": type(trainer.accelerator).__name__,
        "resumed_from": str(ckpt) if ckpt else None,
        "best_checkpoint": ckpt.best_model_path if ckpt else None,
        "config": to_container(cfg),
        "overrides": list(HydraConfig.get().overrides.task),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / RESULTS, results)
    log.info("Results in %s: %s", run_dir / RESULTS, metrics)
    return results


def record_failure(cfg: DictConfig, run_dir: Path, err: BaseException) -> None:
    write_json_atomic(
        run_dir / RESULTS,
        {
            "status": "failed",
            "error": one_line(err),
            "config": OmegaConf.to_container(cfg, resolve=False),
            "overrides": list(HydraConfig.get().overrides.task),
        },
    )


def _remove_if_empty(run_dir: Path) -> None:
    """A single run rejected for its config leaves no folder behind (Hydra made it)."""
    if {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)


register_configs()
register_resolvers()


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
        raise
    return results["metrics"].get("val/loss")  # what a sweeper such as Optuna minimises


def main() -> None:
    run_cli(hydra_main, "convae-train")


if __name__ == "__main__":
    main()
