"""Typed schemas behind conf/: Hydra merges the YAML files onto these dataclasses, so an
unknown key or a wrong type fails at composition, and ``validate`` checks the values before
any data is loaded or model built.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from convae.data.shape import MAX_PATCH, RESIZE_MODES, SOURCES, ShapeError, served_shape
from convae.losses import LOSSES
from convae.models.autoencoder import encoder_sizes
from convae.models.init import INITS
from convae.models.upsample import UPSAMPLERS

SWEEP_EXISTING = ("refuse", "continue", "overwrite")


@dataclass
class ModelConfig:
    # The tutorial's 16-8-8 encoder: a 4x4x8 code, 16% of the 784 pixels.
    depths: list[int] = field(default_factory=lambda: [16, 8, 8])
    kernel_size: int = 3  # odd, for 'same' padding
    upsample: str = "nearest"  # the tutorial's choice (Odena et al.); see convae/models/upsample.py
    transposed_kernel_size: int = 3  # 3: uneven overlap (checkerboard-prone); 4: even overlap
    icnr: bool = False  # pixel_shuffle only: start as conv + nearest resize
    # torch: PyTorch's layer defaults; tutorial: Glorot-uniform kernels, zero biases (the
    # tutorial's TensorFlow defaults; convae/models/init.py). torch by default: measured at
    # 2,000 steps (experiments/init), tutorial lowers the 16-8-8 autoencoder's test BCE by
    # 4% but not the 32-32-16 denoiser's (4% higher on clean inputs), so the tutorial's
    # presets use it and everything else keeps PyTorch's (and earlier runs reproducible).
    init: str = "torch"


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
    # convae/optimizers.py, never by hydra.utils.instantiate: a stored config is data.
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
    # 32-true: emulated bf16 is slower than fp32 (convae/precision.py; convae-bench measures)
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
    # False here, true in conf/logger: a run from before the logger group resumes logging
    # as it began, not with a CSV that starts halfway.
    csv: bool = False
    # MLflow tracking too (logger=mlflow; pip install 'convae[mlflow]'), into one local store
    # that every run launched from a folder shares, so `mlflow ui` lists them side by side.
    mlflow: bool = False
    # A SQLite file (relative to the launch folder, like outputs/; MLflow's own default
    # store since 3.7) or any tracking URI. The default keeps everything on this machine.
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
    # convae/optimizers.py (class checked, plain arguments), plus Lightning's interval (step
    # the schedule every training step or epoch) and monitor (ReduceLROnPlateau's metric).
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
    # or overwrite (the folder's old contents removed first). See convae/sweep_folder.py.
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
    from convae.paths import register_resolvers

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


PROFILERS = (None, "simple", "advanced", "pytorch")  # Lightning's, by name


def _count_or_fraction(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and 0.0 <= value <= 1.0


class ConfigError(ValueError):
    """A config value is invalid; the message names the key, the value and what is allowed."""


# Error lines stay readable whatever the input: a value is shown to about 80 characters
# (reprlib-style, "..." where cut) and a whole line to 500 (a 100,000-character
# data.source once made a 100 KB "one-line" error).
MAX_VALUE_CHARS = 80
MAX_LINE_CHARS = 500
_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = MAX_VALUE_CHARS
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 10


def short_repr(value: object) -> str:
    """``repr(value)``, cut to about MAX_VALUE_CHARS characters."""
    return _short.repr(value)


def cap_line(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """One line of at most ``limit`` characters: an error line, never a page."""
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check(ok: bool, key: str, value: object, allowed: str) -> None:
    """Raises the one-line ConfigError ``key=value is invalid: allowed`` unless ``ok``: the
    one format of every value check, in validate, validate_eval and convae-eval."""
    if not ok:
        raise ConfigError(cap_line(f"{key}={short_repr(value)} is invalid: {allowed}"))


# Sections whose keys are handed on as keyword arguments, so the schema cannot list them:
# optim is built by convae/optimizers.py (its class checked, its arguments plain values),
# and any torch optimizer's arguments are welcome (optim._target_=torch.optim.SGD
# +optim.momentum=0.9); scheduler likewise (scheduler=step scheduler.gamma=0.1).
# trainer is deliberately not one: build_trainer passes default_root_dir, logger, callbacks,
# num_sanity_val_steps, use_distributed_sampler and inference_mode itself (a duplicate is a
# TypeError), and Trainer arguments such as accumulate_grad_batches or max_time would break
# the exact resume and the step counting convae relies on. A Trainer argument becomes
# settable by adding it to TrainerConfig, where its type is checked too.
EXTENSION_POINTS = ("optim", "scheduler")


def check_known_keys(cfg: DictConfig, schema: type = TrainConfig) -> None:
    """Keys added with ``+key=value`` that the schema does not have are refused: Hydra lets
    ``+`` add anything, and an unused key (a typo) would otherwise pass without a word."""
    composed = OmegaConf.to_container(cfg, resolve=False)  # no interpolation is resolved
    _known_keys(composed, OmegaConf.structured(schema), "")  # type: ignore[arg-type]


def _known_keys(node: Mapping[str, Any], schema: DictConfig, prefix: str) -> None:
    keys = list(schema)  # not `key in schema`: False for a MISSING (???) value such as ckpt
    for key, value in node.items():
        name = f"{prefix}{key}"
        if name in EXTENSION_POINTS or name == "hydra":  # hydra.*: Hydra's own
            continue
        if key not in keys:
            kind = OmegaConf.get_type(schema)
            section = kind.__name__ if kind is not None and kind is not dict else prefix
            known = ", ".join(str(k) for k in keys if k != "defaults")
            raise ConfigError(cap_line(f"{name}: unknown key; {section} has {known}"))
        if isinstance(value, Mapping) and isinstance(schema[key], DictConfig):
            _known_keys(value, schema[key], f"{name}.")


# pl.seed_everything accepts 0..2**32-1 (numpy's seed range) and raises beyond; the noise
# and shuffling generators (convae/data/noise.py) mix the seed with the step, rank and epoch
# in numpy's SeedSequence, which takes any int >= 0, so seed_everything's range is the limit.
MAX_SEED = 2**32 - 1
# data.split_seed goes to torch.Generator.manual_seed (at most 2**64 - 1) and SeedSequence.
MAX_SPLIT_SEED = 2**64 - 1
FLOAT_BYTES = 4


def estimated_memory(
    depths: list[int], kernel_size: int, batch_size: int, channels: int = 1, size: int = 28
) -> tuple[int, int]:
    """(parameter bytes, activation bytes for one training batch), a rough lower bound.

    With channels c_0 = ``channels`` (the data's), c_i = model.depths[i-1], kernel k and
    spatial sizes s_0 = ``size``,
    s_i = ceil(s_{i-1} / 2) (convae/models/autoencoder.py):
      parameters P = sum over the encoder convs (c_{i-1} -> c_i), the decoder stages
        (c_L -> c_L, c_L -> c_{L-1}, ..., c_2 -> c_1) and the last conv (c_1 -> c_0) of
        k^2 * in * out + out  (pixel_shuffle stages have 4x more: not counted);
      parameter memory = 4 bytes * P * 4 (weights, gradients, Adam's two moments);
      activations per image = sum_i c_i * (2 * s_{i-1}^2 + s_i^2) + c_{i+1} * s_{i-1}^2
        (encoder conv and pool outputs, decoder upsampled input and conv output; c_{L+1} =
        c_L) + 2 * c_0 * s_0^2 (input and logits), times 4 bytes * data.batch_size.
    """
    depths, k = [int(d) for d in depths], int(kernel_size)
    ch = [channels, *depths]
    sizes = encoder_sizes(size, len(depths))
    pairs = list(itertools.pairwise(ch))  # encoder
    pairs += list(zip([ch[-1], *depths[:0:-1]], depths[::-1], strict=True))  # decoder
    pairs.append((depths[0], channels))
    params = sum(k * k * cin * cout + cout for cin, cout in pairs)
    per_image = 2 * channels * size**2
    for i, c in enumerate(depths, start=1):
        upsampled_from = depths[i] if i < len(depths) else depths[-1]
        per_image += c * (2 * sizes[i - 1] ** 2 + sizes[i] ** 2)
        per_image += upsampled_from * sizes[i - 1] ** 2
    return FLOAT_BYTES * params * 4, FLOAT_BYTES * per_image * int(batch_size)


def physical_memory() -> int | None:
    """The machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    """Bytes to three significant digits in kB, MB, GB, TB or PB."""
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 999.5:
            return f"{n:.3g} {unit}"
    return f"{n / 1000:,.0f} PB"


def data_shape(data: DictConfig) -> tuple[int, int]:
    """(channels, size) of the images the data section serves (values validated)."""
    shape = served_shape(data.source, data.image_size, data.grayscale)
    return shape.channels, shape.size


def _check_memory(cfg: DictConfig) -> None:
    """Refuses a model that cannot fit: torch would fail later with a raw allocation error
    naming no key, after the run folder was made."""
    memory = physical_memory()
    if memory is None:
        return
    m, batch = cfg.model, cfg.data.batch_size
    shape = data_shape(cfg.data)
    param_bytes, act_bytes = estimated_memory(list(m.depths), m.kernel_size, batch, *shape)
    if param_bytes + act_bytes <= memory:
        return
    need = (
        f"needs at least {_size(param_bytes)} for weights, gradients and Adam's moments plus "
        f"{_size(act_bytes)} of activations for data.batch_size={batch}, more than this "
        f"machine's {_size(memory)}"
    )
    one_image = act_bytes // max(1, batch)
    if param_bytes + one_image <= memory:  # the model fits; the batch does not
        check(False, "data.batch_size", batch, f"the model {need}; expected a smaller batch")
    if m.kernel_size > 3 and sum(estimated_memory(list(m.depths), 3, batch, *shape)) <= memory:
        check(False, "model.kernel_size", m.kernel_size, f"the model {need}")  # its fault
    check(False, "model.depths", list(m.depths), f"the model {need}; expected smaller depths")


def validate(cfg: DictConfig) -> None:
    """Value checks that types alone cannot express; run before any compute is spent."""
    check_known_keys(cfg)
    m, d, o = cfg.model, cfg.data, cfg.optim
    depths = list(m.depths)
    check(
        bool(depths) and all(isinstance(x, int) and x > 0 for x in depths),
        "model.depths",
        depths,
        "expected a non-empty list of positive ints, e.g. [16,8,8]",
    )
    check(
        m.kernel_size > 0 and m.kernel_size % 2 == 1,
        "model.kernel_size",
        m.kernel_size,
        "expected an odd positive int ('same' padding)",
    )
    check(
        m.upsample in UPSAMPLERS,
        "model.upsample",
        m.upsample,
        f"expected one of {', '.join(sorted(UPSAMPLERS))}",
    )
    check(m.init in INITS, "model.init", m.init, f"expected one of {', '.join(INITS)}")
    check(
        m.transposed_kernel_size >= 2,
        "model.transposed_kernel_size",
        m.transposed_kernel_size,
        "expected an int >= 2 (stride 2 leaves holes below)",
    )
    check(d.source in SOURCES, "data.source", d.source, f"expected one of {', '.join(SOURCES)}")
    _check_shape(cfg)
    check(
        math.isfinite(d.noise_std) and d.noise_std >= 0,
        "data.noise_std",
        d.noise_std,
        "expected a finite float >= 0 (0 = clean)",
    )
    check(d.batch_size > 0, "data.batch_size", d.batch_size, "expected a positive int")
    check(
        d.eval_batch_size > 0, "data.eval_batch_size", d.eval_batch_size, "expected a positive int"
    )
    check(d.num_workers >= 0, "data.num_workers", d.num_workers, "expected an int >= 0")
    check(math.isfinite(o.lr) and o.lr > 0, "optim.lr", o.lr, "expected a finite float > 0")
    _check_optim(o)
    check(cfg.loss in LOSSES, "loss", cfg.loss, f"expected one of {', '.join(LOSSES)}")
    _check_threads(cfg.threads)
    check(
        0 <= cfg.seed <= MAX_SEED,
        "seed",
        cfg.seed,
        f"expected an int from 0 to {MAX_SEED} (2**32 - 1, what pl.seed_everything accepts)",
    )
    check(
        0 <= d.split_seed <= MAX_SPLIT_SEED,
        "data.split_seed",
        d.split_seed,
        f"expected an int from 0 to {MAX_SPLIT_SEED} (2**64 - 1)",
    )
    t = cfg.trainer
    for key in ("max_epochs", "max_steps"):
        check(
            t[key] >= 1 or t[key] == -1,
            f"trainer.{key}",
            t[key],
            "expected an int >= 1, or -1 for no limit",
        )
    check(  # Lightning: max_epochs=-1 is no epoch limit, so only max_steps would stop it
        not (t.max_epochs == -1 and t.max_steps == -1),
        "trainer.max_epochs",
        t.max_epochs,
        "with trainer.max_steps=-1 too, training would never stop; expected "
        "trainer.max_epochs >= 1 or trainer.max_steps >= 1",
    )
    check(isinstance(t.fast_dev_run, bool) or (isinstance(t.fast_dev_run, int)
          and t.fast_dev_run >= 0), "trainer.fast_dev_run", t.fast_dev_run,
          "expected true, false or an int >= 0 (batches of each split)")  # fmt: skip
    check(_count_or_fraction(t.overfit_batches), "trainer.overfit_batches", t.overfit_batches,
          "expected an int >= 0 (batches) or a float from 0 to 1 (a fraction)")  # fmt: skip
    check(t.profiler in PROFILERS, "trainer.profiler", t.profiler,
          f"expected one of {', '.join(map(str, PROFILERS))}")  # fmt: skip
    check(
        not (cfg.resume and cfg.ckpt_path),
        "ckpt_path",
        cfg.ckpt_path,
        "give resume=<run dir> or ckpt_path=<file>, not both",
    )
    check(cfg.sweep_existing in SWEEP_EXISTING, "sweep_existing", cfg.sweep_existing,
          f"expected one of {', '.join(SWEEP_EXISTING)}")  # fmt: skip
    c = cfg.callbacks
    check(c.checkpoint_mode in ("min", "max"), "callbacks.checkpoint_mode", c.checkpoint_mode,
          "expected min or max")  # fmt: skip
    for key in ("image_digits", "artifact_digits"):
        check(c[key] > 0, f"callbacks.{key}", c[key], "expected a positive int")
    check(c.artifact_images_every >= 0, "callbacks.artifact_images_every",
          c.artifact_images_every, "expected an int >= 0 (0: no pictures)")  # fmt: skip
    check(c.early_stopping_patience is None or c.early_stopping_patience > 0,
          "callbacks.early_stopping_patience", c.early_stopping_patience,
          "expected a positive int or null")  # fmt: skip
    _check_scheduler(cfg.scheduler)
    check(cfg.logger.tensorboard or cfg.logger.csv, "logger", "tensorboard=false, csv=false",
          "expected logger=tensorboard, csv or tensorboard_csv")  # fmt: skip
    check(not cfg.logger.mlflow or importlib.util.find_spec("mlflow") is not None,
          "logger.mlflow", True, "MLflow is not installed: pip install 'convae[mlflow]', "
          "or choose logger=tensorboard_csv")  # fmt: skip
    _check_memory(cfg)  # last: its formula needs valid depths, kernel and batch size


def _check_shape(cfg: DictConfig) -> None:
    """The data's image size against the model's depths, before any data loads."""
    d = cfg.data
    check(d.resize in RESIZE_MODES, "data.resize", d.resize,
          f"expected one of {', '.join(RESIZE_MODES)}")  # fmt: skip
    patches = list(d.photo_patches)
    check(len(patches) == 3 and all(n > 0 for n in patches), "data.photo_patches", patches,
          "expected three positive ints: train, val and test patches")  # fmt: skip
    try:
        _, size = data_shape(d)
    except ShapeError as err:
        check(False, *err.args)
    if d.source == "photos":
        check(size <= MAX_PATCH, "data.image_size", d.image_size,
              f"data.source=photos cuts patches of at most {MAX_PATCH} pixels (the smallest "
              "held-out photograph's side)")  # fmt: skip
    depths = list(cfg.model.depths)
    sizes = encoder_sizes(size, len(depths))
    if sizes[-2] < 2:  # the last stage would pool a 1x1 map: nothing left to halve
        stages = next(i for i, s in enumerate(sizes) if s < 2)
        check(False, "model.depths", depths,
              f"{len(depths)} pooling stages take {size}x{size} images to 1x1 after {stages}; "
              f"expected at most {stages} depths or a larger data.image_size")  # fmt: skip


def _check_scheduler(s: DictConfig) -> None:
    from convae.optimizers import scheduler_spec

    scheduler_spec(s)  # a torch.optim.lr_scheduler class and plain arguments, or null
    check(s.get("interval", "step") in SCHEDULER_INTERVALS, "scheduler.interval",
          s.get("interval"), "expected step or epoch")  # fmt: skip
    monitor = s.get("monitor")
    check(monitor is None or str(monitor).startswith("val/"), "scheduler.monitor", monitor,
          "expected a val/ metric, e.g. val/loss")  # fmt: skip


def _check_optim(optim: DictConfig) -> None:
    """A torch.optim class and plain arguments: a resumed run's optim comes from its
    checkpoint, which must never build objects (convae/optimizers.py)."""
    from convae.optimizers import optimizer_spec

    optimizer_spec(optim)


def _check_threads(threads: int | None) -> None:
    check(threads is None or threads > 0, "threads", threads,
          "expected a positive int or null (all available cores)")  # fmt: skip


def validate_eval(cfg: DictConfig) -> None:
    """convae-eval's value checks (EvalConfig), before a checkpoint or data set is loaded."""
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError("ckpt is missing: give a .ckpt file or a run folder, e.g. ckpt=<run dir>")
    check_known_keys(cfg, EvalConfig)
    stds = list(cfg.eval.noise_stds)  # list[float]: the schema has checked the types
    check(bool(stds) and all(math.isfinite(s) and s >= 0 for s in stds), "eval.noise_stds",
          stds, "expected a non-empty list of finite floats >= 0")  # fmt: skip
    for key in ("digits", "batch_size"):
        check(cfg.eval[key] > 0, f"eval.{key}", cfg.eval[key], "expected an int > 0")
    _check_threads(cfg.threads)


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def plain(value: Any) -> Any:
    """A config node as plain Python (lists, dicts); other values as they are."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


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
