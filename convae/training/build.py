"""From a composed config to the objects of a run: data module, module, callbacks, trainer.

Each builder takes the config section it needs, so the path from a YAML file to a Python
object is one function here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelSummary, Timer
from pytorch_lightning.loggers import Logger

from convae.callbacks.checkerboard import CheckerboardScores
from convae.callbacks.checkpointing import RelocatableModelCheckpoint
from convae.callbacks.exact_resume import ExactResume
from convae.callbacks.float32_layers import Float32Layers
from convae.callbacks.interrupt import GracefulInterrupt
from convae.callbacks.latent import LatentSpace
from convae.callbacks.logging_step import LoggingStepIsGlobalStep
from convae.callbacks.reconstructions import ReconstructionGrid
from convae.config.convert import to_container
from convae.config.precision import Precision, resolve_precision
from convae.config.validate import data_shape
from convae.data.datamodule import ImageDataModule
from convae.runs.checkpoint_io import AtomicCheckpointIO
from convae.tracking.console import quiet_sweep
from convae.training.module import AutoencoderModule

log = logging.getLogger("convae")


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    return ImageDataModule(**OmegaConf.to_container(cfg.data), seed=cfg.seed)


def model_arguments(cfg: DictConfig) -> dict:
    """``cfg.model`` plus the shape of the data it is built for: stored in every checkpoint
    (``hparams.model``), so the network is rebuilt without the data config."""
    in_channels, image_size = data_shape(cfg.data)
    model = OmegaConf.to_container(cfg.model)
    return {**model, "in_channels": in_channels, "image_size": image_size}


def build_module(cfg: DictConfig) -> AutoencoderModule:
    return AutoencoderModule(
        model=model_arguments(cfg),
        optim=OmegaConf.to_container(cfg.optim),
        scheduler=OmegaConf.to_container(cfg.scheduler),
        loss=cfg.loss,
        noise_std=cfg.data.noise_std,
        seed=cfg.seed,
        channels_last=cfg.channels_last,
        config=to_container(cfg),
    )


def build_callbacks(cfg: DictConfig, run_dir: Path) -> list[pl.Callback]:
    c = cfg.callbacks
    callbacks: list[pl.Callback] = [
        RelocatableModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-epoch{epoch:03d}-step{step}",
            monitor=c.checkpoint_monitor,
            mode=c.checkpoint_mode,
            save_last=c.save_last,
            auto_insert_metric_name=False,
            # One last.ckpt, overwritten: an interrupt writes it too, and resume reads it.
            enable_version_counter=False,
        ),
        ReconstructionGrid(n=c.image_digits),
        CheckerboardScores(n=c.artifact_digits, images_every=c.artifact_images_every),
        GracefulInterrupt(run_dir / "checkpoints" / "last.ckpt"),
        ExactResume(run_dir / "checkpoints" / "last.ckpt"),
        LoggingStepIsGlobalStep(),
        # A stopwatch (no limit): its elapsed training time is in every checkpoint, so a
        # resumed run's train_time_s counts the time before each interruption too.
        Timer(),
    ]
    if c.latent_space:
        callbacks.append(LatentSpace(n=c.artifact_digits, seed=cfg.seed))
    if cfg.scheduler.get("_target_"):
        callbacks.append(LearningRateMonitor(logging_interval="step"))  # logs "lr"
    if c.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(
                monitor=c.checkpoint_monitor,
                mode=c.checkpoint_mode,
                patience=c.early_stopping_patience,
            )
        )
    return callbacks


def build_trainer(
    cfg: DictConfig, run_dir: Path, loggers: Sequence[Logger], precision: Precision | None = None
) -> pl.Trainer:
    """``precision``: resolved already (train.py does it before loading data), else here."""
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.trainer).items() if v is not None}
    if precision is None:
        precision = resolve_precision(
            cfg.trainer.precision, cfg.trainer.accelerator, model=to_container(cfg.model)
        )
        log.info("precision %s: %s", precision.value, precision.reason)
    kwargs["precision"] = precision.value
    quiet: list[pl.Callback] = []
    if quiet_sweep():  # a sweep's console has one line per job: no bars, the summary in train.log
        kwargs["enable_progress_bar"] = False
        if kwargs.get("enable_model_summary", True):
            quiet.append(ModelSummary())  # logged; the rich one Lightning picks is printed
    # The summary's size column assumes 32-bit weights under bf16-mixed, which is right:
    # mixed precision keeps the weights in float32. Its warning says nothing to act on.
    warnings.filterwarnings("ignore", message=r"Precision .* is not supported by the model summary")
    return pl.Trainer(
        **kwargs,
        default_root_dir=run_dir,
        logger=list(loggers),
        callbacks=[
            *build_callbacks(cfg, run_dir),
            Float32Layers(precision.float32_transposed),
            *quiet,
        ],
        # Saves beside the target, fsynced and renamed; a failed save stops the run.
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,  # the step-0 validation in train.py covers it
        # The data module's samplers shard by rank (exact DDP metrics, mid-epoch resume).
        use_distributed_sampler=False,
        # no_grad rather than inference_mode: metric states created by the step-0
        # trainer.validate() must stay updatable in the validations during fit.
        inference_mode=False,
    )
