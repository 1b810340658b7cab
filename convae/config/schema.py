"""Typed schemas behind conf/: Hydra merges the YAML files onto these dataclasses, so an
unknown key or a wrong type fails at composition, and ``validate`` (convae/config/validate.py)
checks the values before any data is loaded or model built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from convae.models.decoders import decoder_fields

SWEEP_EXISTING = ("refuse", "continue", "overwrite")


# The model section: the encoder and decoder keys every model has, and after them the
# settings of each registered decoder, taken from its own options dataclass
# (convae/models/decoders.py: transposed_kernel_size, icnr, and a plugin's), so a decoder
# with settings of its own brings its schema with it.
_MODEL_KEYS: list[tuple[str, Any, Any]] = [
    # The tutorial's 16-8-8 encoder: a 4x4x8 code, 16% of the 784 pixels.
    ("depths", list[int], field(default_factory=lambda: [16, 8, 8])),
    ("kernel_size", int, field(default=3)),  # odd, for 'same' padding
    # the tutorial's choice (Odena et al.); see convae/models/upsample.py
    ("upsample", str, field(default="nearest")),
    *decoder_fields(),
    # torch: PyTorch's layer defaults; tutorial: Glorot-uniform kernels, zero biases (the
    # tutorial's TensorFlow defaults; convae/models/init.py). torch by default: measured at
    # 2,000 steps (experiments/init), tutorial lowers the 16-8-8 autoencoder's test BCE by
    # 4% but not the 32-32-16 denoiser's (4% higher on clean inputs), so the tutorial's
    # presets use it and everything else keeps PyTorch's (and earlier runs reproducible).
    ("init", str, field(default="torch")),
]
ModelConfig = make_dataclass("ModelConfig", _MODEL_KEYS)
ModelConfig.__module__ = __name__  # where Hydra and pickle look for it


@dataclass
class DataConfig:
    # auto | bundled | mnist | fashion_mnist (28x28 digits), cifar10 (32x32 RGB), photos
    # (patches of scikit-image's photographs), folder (the images under data.root)
    source: str = "auto"
    # torchvision layout (<root>/MNIST/raw, <root>/cifar-10-batches-py, ...); for
    # source=folder, the folder of PNG/JPEG files (with train/, val/, test/ if split)
    root: str = "data"
    # Square images of this side: null takes the source's own (28 for the digits, 32 for
    # CIFAR-10, photos and folder); photos and folder take any even size. The model is built
    # for it, and for the channels the source serves.
    image_size: int | None = None
    grayscale: bool = False  # colour sources as one luma channel (the digits always are)
    # source=folder: none (every image is image_size already), resize (shorter side to
    # image_size, then centre crop) or crop (centre crop, no scaling)
    resize: str = "none"
    # source=photos: train, val and test patches; val and test from unseen photographs
    photo_patches: list[int] = field(default_factory=lambda: [20_000, 2_000, 2_000])
    noise_std: float = 0.0  # Gaussian noise on inputs only, clipped to [0, 1]
    batch_size: int = 200  # the tutorial's
    eval_batch_size: int = 500
    split_seed: int = 0  # fixed, so every run sees the same train/val/test images
    num_workers: int = 0  # in-memory tensors: workers only add IPC cost
    download_timeout_s: float = 10.0


@dataclass
class OptimConfig:
    # Any torch.optim optimizer and its keyword arguments (plain values only), built by
    # convae/training/optimizers.py, never by hydra.utils.instantiate: a stored config
    # is data.
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3  # the tutorial's Adam learning rate
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
    # bf16-mixed where the CPU (AMX, AVX512-BF16) or GPU computes bf16 natively, else
    # 32-true: emulated bf16 is slower than fp32 (convae/config/precision.py;
    # convae-bench measures)
    precision: str = "auto"
    deterministic: Any = True  # bit-reproducible on CPU; "warn" where ops have no such kernel
    log_every_n_steps: int = 1  # train/loss at every step
    check_val_every_n_epoch: int = 1
    val_check_interval: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    enable_progress_bar: bool = True
    gradient_clip_val: Any = None
    # Debugging runs (conf/debug/ sets them): n batches of each split and no checkpoints
    # (true: 1); n batches (or a fraction) trained again and again; a Lightning profiler.
    fast_dev_run: Any = False
    overfit_batches: Any = 0.0
    profiler: str | None = None


@dataclass
class CallbacksConfig:
    checkpoint_monitor: str = "val/loss"
    checkpoint_mode: str = "min"  # "max" for val/psnr or val/ssim
    save_last: bool = True
    early_stopping_patience: int | None = None  # validations without monitor improvement
    image_digits: int = 16  # validation digits shown in the reconstruction grid
    artifact_digits: int = 500  # the fixed batch for checkerboard scores and spectra
    # Spectrum/residual pictures every n-th validation (and at step 0 and on the test split);
    # 0 turns them off. Drawing them (matplotlib) costs more than the rest of a validation:
    # every 10th keeps validation cheap next to an epoch (convae-bench reports the cost).
    artifact_images_every: int = 10
    # At the end of training: the artifact digits' codes for the projector, interpolations
    # and random codes decoded, latent/cb2_ratio_* (convae/callbacks/latent.py).
    latent_space: bool = True


def _no_scheduler() -> dict[str, Any]:
    return {"_target_": None, "interval": "step"}


SCHEDULER_INTERVALS = ("step", "epoch")
SCHEDULER_KEYS = ("interval", "monitor")  # Lightning's, not the scheduler's arguments


@dataclass
class LoggerConfig:
    """Where the scalars go (conf/logger/ picks; the default is tensorboard_csv). The
    pictures and the HPARAMS table need TensorBoard."""

    tensorboard: bool = True
    csv: bool = True  # metrics.csv too: the numbers without TensorBoard (conf/logger picks)
    # MLflow tracking too (logger=mlflow; pip install 'convae[mlflow]'), into one local store
    # that every run launched from a folder shares, so `mlflow ui` lists them side by side.
    mlflow: bool = False
    # A SQLite file (relative to the launch folder, like outputs/; MLflow's own default
    # store since 3.7) or any tracking URI. The default keeps everything local.
    mlflow_uri: str = "outputs/mlflow.db"
    mlflow_experiment: str = "convae"


@dataclass
class TrainConfig:
    defaults: list[Any] = field(default_factory=lambda: ["_self_"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    # A torch.optim.lr_scheduler class and its arguments (conf/scheduler/), built by
    # convae/training/optimizers.py (class checked, plain arguments), plus Lightning's
    # interval (step the schedule every training step or epoch) and monitor
    # (ReduceLROnPlateau's metric).
    # A plain dict: each scheduler has arguments of its own. _target_ null (the default):
    # a constant lr.
    scheduler: dict[str, Any] = field(default_factory=_no_scheduler)
    # What convae-train returns to a sweeper (Optuna): a validation tag's final value, or a
    # list of tags for a multi-objective study (directions in hydra.sweeper.direction).
    optimized_metric: Any = "val/loss"
    loss: str = "bce"  # the tutorial's: binary cross-entropy on logits
    seed: int = 0
    threads: int | None = None  # torch threads; None: every core this process may use
    channels_last: bool = True  # NHWC memory format: faster convs (convae-bench measures it)
    test: bool = True  # evaluate the best checkpoint on the test split at the end
    resume: str | None = None  # a run folder: continue from its checkpoints/last.ckpt
    ckpt_path: str | None = None  # or a checkpoint file inside a run folder
    # A sweep (-m) into a folder that already holds files: refuse (default), continue
    # (completed jobs skipped, unfinished ones resumed, failed ones started again cleanly)
    # or overwrite (the folder's old contents removed first). See convae/sweeps/folder.py
    # and convae/runs/folder.py.
    sweep_existing: str = "refuse"
    # A run folder that holds files with the names convae writes (metrics.csv, checkpoints/,
    # results.json, ...) but no convae run is refused; true removes those files instead.
    replace_unknown_files: bool = False


@dataclass
class EvalSettings:
    # Gaussian input noise levels, clipped to [0, 1]; 0: the run's own test metrics
    noise_stds: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75])
    digits: int = 10  # test digits per row of the figure
    batch_size: int = 500


@dataclass
class EvalConfig:
    """convae-eval's arguments (conf/eval.yaml); the run's own config is in the checkpoint."""

    ckpt: str = MISSING  # a .ckpt file, or a run folder
    eval: EvalSettings = field(default_factory=EvalSettings)
    threads: int | None = None


def register_configs() -> None:
    """Makes conf/ composable: the schemas in Hydra's ConfigStore, the resolvers they use."""
    from convae.config.resolvers import register_resolvers

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    ConfigStore.instance().store(name="eval_schema", node=EvalConfig)
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
    "sweep_existing",
    "replace_unknown_files",
    "optimized_metric",
)


# Sections whose keys are handed on as keyword arguments, so the schema cannot list them:
# optim is built by convae/training/optimizers.py (its class checked, its arguments plain
# values: convae/config/optim.py), and any torch optimizer's arguments are welcome
# (optim._target_=torch.optim.SGD +optim.momentum=0.9); scheduler likewise (scheduler=step
# scheduler.gamma=0.1).
# trainer is deliberately not one: build_trainer passes default_root_dir, logger, callbacks,
# num_sanity_val_steps, use_distributed_sampler and inference_mode itself (a duplicate is a
# TypeError), and Trainer arguments such as accumulate_grad_batches or max_time would break
# the exact resume and the step counting convae relies on. A Trainer argument becomes
# settable by adding it to TrainerConfig, where its type is checked too.
EXTENSION_POINTS = ("optim", "scheduler")
