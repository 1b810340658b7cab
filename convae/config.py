"""Typed schemas behind conf/: Hydra merges the YAML files onto these dataclasses, so an
unknown key or a wrong type fails at composition, and ``validate`` checks the values before
any data is loaded or model built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from convae.data.sources import SOURCES
from convae.models.upsample import UPSAMPLERS

LOSSES = ("bce", "mse")


@dataclass
class ModelConfig:
    # The seed tutorial's 16-8-8 encoder: a 4x4x8 code, 16% of the 784 pixels.
    depths: list[int] = field(default_factory=lambda: [16, 8, 8])
    kernel_size: int = 3  # odd, for 'same' padding
    upsample: str = "nearest"  # the seed's choice (Odena et al.); see convae/models/upsample.py
    transposed_kernel_size: int = 3  # 3: uneven overlap (checkerboard-prone); 4: even overlap
    icnr: bool = False  # pixel_shuffle only: start as conv + nearest resize


@dataclass
class DataConfig:
    source: str = "auto"  # auto | bundled | mnist | fashion_mnist
    root: str = "data"  # torchvision layout: <root>/MNIST/raw, <root>/FashionMNIST/raw
    noise_std: float = 0.0  # Gaussian noise on inputs only, clipped to [0, 1]
    batch_size: int = 200  # the seed's
    eval_batch_size: int = 500
    split_seed: int = 0  # fixed, so every run sees the same train/val/test images
    num_workers: int = 0  # in-memory tensors: workers only add IPC cost
    download_timeout_s: float = 10.0


@dataclass
class OptimConfig:
    # Built with hydra.utils.instantiate(cfg.optim, params=...): any torch optimizer works.
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3  # the seed's Adam learning rate
    weight_decay: float = 0.0


@dataclass
class TrainerConfig:
    """Keyword arguments of ``pytorch_lightning.Trainer`` that configs may set."""

    max_epochs: int = 20
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: Any = True  # bit-reproducible on CPU; "warn" where ops have no such kernel
    log_every_n_steps: int = 1  # train/loss at every step
    check_val_every_n_epoch: int = 1
    val_check_interval: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    enable_progress_bar: bool = True
    gradient_clip_val: Any = None


@dataclass
class CallbacksConfig:
    checkpoint_monitor: str = "val/loss"
    checkpoint_mode: str = "min"  # "max" for val/psnr or val/ssim
    save_last: bool = True
    early_stopping_patience: int | None = None  # validations without monitor improvement
    image_digits: int = 16  # validation digits shown in the reconstruction grid
    artifact_digits: int = 500  # the fixed batch for checkerboard scores and spectra
    # Spectrum/residual pictures every n-th validation (and at step 0 and on the test split);
    # 0 turns them off. Drawing them costs about 0.14 s, a fifth of a bundled-data epoch:
    # every 10th keeps validation under 10% of an epoch even there (convae-bench).
    artifact_images_every: int = 10


@dataclass
class TrainConfig:
    defaults: list[Any] = field(default_factory=lambda: ["_self_"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    loss: str = "bce"  # the seed's: binary cross-entropy on logits
    seed: int = 0
    threads: int | None = None  # torch threads; None: every core this process may use
    channels_last: bool = True  # NHWC memory format: faster convs (convae-bench measures it)
    test: bool = True  # evaluate the best checkpoint on the test split at the end
    resume: str | None = None  # a run folder: continue from its checkpoints/last.ckpt
    ckpt_path: str | None = None  # or a checkpoint file inside a run folder


def register_configs() -> None:
    """Makes conf/ composable: the schema in Hydra's ConfigStore, the resolvers it uses."""
    from convae.paths import register_resolvers

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    register_resolvers()


# Keys that say how a run was carried out, not what was trained: left out of the HPARAMS
# table and never a reason to put two runs in different rows of a report.
PLUMBING_KEYS = (
    "data.root",
    "data.download_timeout_s",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "threads",
    "test",
    "resume",
    "ckpt_path",
)


class ConfigError(ValueError):
    """A config value is invalid; the message names the key, the value and what is allowed."""


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


def validate(cfg: DictConfig) -> None:
    """Value checks that types alone cannot express; run before any compute is spent."""
    m, d, o = cfg.model, cfg.data, cfg.optim
    depths = list(m.depths)
    _check(
        bool(depths) and all(isinstance(x, int) and x > 0 for x in depths),
        "model.depths",
        depths,
        "expected a non-empty list of positive ints, e.g. [16,8,8]",
    )
    _check(
        m.kernel_size > 0 and m.kernel_size % 2 == 1,
        "model.kernel_size",
        m.kernel_size,
        "expected an odd positive int ('same' padding)",
    )
    _check(
        m.upsample in UPSAMPLERS,
        "model.upsample",
        m.upsample,
        f"expected one of {', '.join(sorted(UPSAMPLERS))}",
    )
    _check(
        m.transposed_kernel_size >= 2,
        "model.transposed_kernel_size",
        m.transposed_kernel_size,
        "expected an int >= 2 (stride 2 leaves holes below)",
    )
    _check(d.source in SOURCES, "data.source", d.source, f"expected one of {', '.join(SOURCES)}")
    _check(
        math.isfinite(d.noise_std) and d.noise_std >= 0,
        "data.noise_std",
        d.noise_std,
        "expected a finite float >= 0 (0 = clean)",
    )
    _check(d.batch_size > 0, "data.batch_size", d.batch_size, "expected a positive int")
    _check(
        d.eval_batch_size > 0, "data.eval_batch_size", d.eval_batch_size, "expected a positive int"
    )
    _check(d.num_workers >= 0, "data.num_workers", d.num_workers, "expected an int >= 0")
    _check(math.isfinite(o.lr) and o.lr > 0, "optim.lr", o.lr, "expected a finite float > 0")
    _check(cfg.loss in LOSSES, "loss", cfg.loss, f"expected one of {', '.join(LOSSES)}")
    _check(
        cfg.threads is None or cfg.threads > 0,
        "threads",
        cfg.threads,
        "expected a positive int or null (all available cores)",
    )
    _check(cfg.seed >= 0, "seed", cfg.seed, "expected an int >= 0")
    _check(
        not (cfg.resume and cfg.ckpt_path),
        "ckpt_path",
        cfg.ckpt_path,
        "give resume=<run dir> or ckpt_path=<file>, not both",
    )
    c = cfg.callbacks
    _check(c.checkpoint_mode in ("min", "max"), "callbacks.checkpoint_mode", c.checkpoint_mode,
           "expected min or max")  # fmt: skip
    for key in ("image_digits", "artifact_digits"):
        _check(c[key] > 0, f"callbacks.{key}", c[key], "expected a positive int")
    _check(c.artifact_images_every >= 0, "callbacks.artifact_images_every",
           c.artifact_images_every, "expected an int >= 0 (0: no pictures)")  # fmt: skip
    _check(c.early_stopping_patience is None or c.early_stopping_patience > 0,
           "callbacks.early_stopping_patience", c.early_stopping_patience,
           "expected a positive int or null")  # fmt: skip


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> dotted keys, for tables and TensorBoard's HPARAMS tab; lists
    become strings such as ``[16, 8, 8]`` so they compare and group as one value."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value), default=str)
        else:
            flat[name] = value
    return flat
