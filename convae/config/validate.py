"""``validate``: the one gate every config passes before any data is loaded or model built
(``validate_eval`` for convae-eval's): convae-train, ``compose_train`` (the tests, the bench)
and a resumed run's stored config all go through it, so they accept and refuse the same
configs. Each failure is one ConfigError line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from convae.config.convert import plain
from convae.config.errors import ConfigError, cap_line, check, short_repr
from convae.config.optim import optimizer_spec, scheduler_spec
from convae.config.precision import AUTO, Precision, resolve_precision
from convae.config.schema import (
    EXTENSION_POINTS,
    SCHEDULER_INTERVALS,
    SWEEP_EXISTING,
    EvalConfig,
    TrainConfig,
)
from convae.data.shape import MAX_PATCH, RESIZE_MODES, SOURCES, ShapeError, served_shape
from convae.metrics.catalogue import VALIDATION, monitorable
from convae.models.decoders import UPSAMPLERS, decoder_setting_problems
from convae.models.geometry import encoder_sizes
from convae.models.init import INITS
from convae.models.losses import LOSSES
from convae.models.memory import estimated_memory, human_size, physical_memory

PROFILERS = (None, "simple", "advanced", "pytorch")  # Lightning's, by name


def _count_or_fraction(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and 0.0 <= value <= 1.0


def check_known_keys(cfg: DictConfig, schema: type = TrainConfig) -> None:
    """Keys added with ``+key=value`` that the schema does not have are refused: Hydra lets
    ``+`` add anything, and an unused key (a typo) would otherwise pass without a word."""
    composed = OmegaConf.to_container(cfg, resolve=False)  # no interpolation is resolved
    _known_keys(composed, _schema_tree(schema), "")  # type: ignore[arg-type]


@functools.cache
def _schema_tree(schema: type) -> DictConfig:
    """The schema as a config tree, built once: a sweep's up-front check validates every
    job's config (convae/sweeps/preflight.py), and building it is most of a check's cost."""
    tree = OmegaConf.structured(schema)
    OmegaConf.set_readonly(tree, True)
    return tree


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
        f"needs at least {human_size(param_bytes)} for weights, gradients and Adam's moments plus "
        f"{human_size(act_bytes)} of activations for data.batch_size={batch}, more than this "
        f"machine's {human_size(memory)}"
    )
    one_image = act_bytes // max(1, batch)
    if param_bytes + one_image <= memory:  # the model fits; the batch does not
        check(False, "data.batch_size", batch, f"the model {need}; expected a smaller batch")
    if m.kernel_size > 3 and sum(estimated_memory(list(m.depths), 3, batch, *shape)) <= memory:
        check(False, "model.kernel_size", m.kernel_size, f"the model {need}")  # its fault
    check(False, "model.depths", list(m.depths), f"the model {need}; expected smaller depths")


def validate(
    cfg: DictConfig, *, trained_precision: str | None = None, classes: bool = True
) -> Precision:
    """Value checks that types alone cannot express; run before any compute is spent.
    Returns the precision to train with, resolved here once for this hardware (a resumed
    ``auto`` run goes on at ``trained_precision``, what its checkpoint records).
    ``classes=False`` leaves out the one check that imports torch (that ``optim`` and
    ``scheduler`` name real torch.optim classes): a sweep's up-front check runs it only
    once every job has passed the others."""
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
    for key, value, allowed in decoder_setting_problems(plain(m)):  # each decoder's own
        check(False, key, value, allowed)
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
    check(cfg.logger.tensorboard or cfg.logger.csv, "logger", "tensorboard=false, csv=false",
          "expected logger=tensorboard, csv or tensorboard_csv")  # fmt: skip
    check(not cfg.logger.mlflow or importlib.util.find_spec("mlflow") is not None,
          "logger.mlflow", True, "MLflow is not installed: pip install 'convae[mlflow]', "
          "or choose logger=tensorboard_csv")  # fmt: skip
    check_monitor(cfg)
    precision = _resolve_precision(t.precision, t.accelerator, trained_precision, m)
    _check_memory(cfg)  # its formula needs valid depths, kernel and batch size
    # Last: checking the classes imports torch, and every other answer comes without it.
    if classes:
        _check_optim(o)
        _check_scheduler(cfg.scheduler)
    return precision


def _resolve_precision(
    requested: str, accelerator: str, trained: str | None, model: DictConfig
) -> Precision:
    auto = requested == AUTO
    resolved = resolve_precision(requested, accelerator, model=plain(model))
    if auto and trained and resolved.value != trained:  # auto chose otherwise on this host
        resolved = resolve_precision(trained, accelerator)
        return Precision(resolved.value, "auto, as this run was trained (its checkpoint)")
    return resolved


def monitorable_tags(cfg: DictConfig) -> list[str]:
    """What callbacks.checkpoint_monitor may name: train/loss and every scalar a validation
    logs, from the static catalogue (convae/metrics/catalogue.py) and the model's depth and
    image size: the grid scores have one period per upsampling stage."""
    _, size = data_shape(cfg.data)
    return monitorable(stages=len(cfg.model.depths), image_size=size)


def objective_tags(cfg: DictConfig) -> list[str]:
    """The tags ``optimized_metric`` names (one, or a list for multi-objective sweeps)."""
    wanted = plain(cfg.optimized_metric)
    return [wanted] if isinstance(wanted, str) else list(wanted or [])


def check_monitor(cfg: DictConfig) -> None:
    """A monitor the run never logs would fail only after the first epoch (ModelCheckpoint
    and EarlyStopping look it up then), an optimized_metric only once the run is over:
    both refused with the other config errors."""
    monitor, tags = cfg.callbacks.checkpoint_monitor, monitorable_tags(cfg)
    if monitor not in tags:
        raise ConfigError(cap_line(
            f"callbacks.checkpoint_monitor={short_repr(monitor)} is invalid: expected a tag "
            f"the run logs: {', '.join(tags)}"
        ))  # fmt: skip
    val_tags = [t for t in tags if t.startswith(f"{VALIDATION}/")]
    wanted = objective_tags(cfg)
    if not wanted or any(t not in val_tags for t in wanted):
        raise ConfigError(cap_line(
            f"optimized_metric={short_repr(plain(cfg.optimized_metric))} is invalid: expected "
            f"a tag or a list of tags from {', '.join(val_tags)}"
        ))  # fmt: skip


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
    scheduler_spec(s)  # a torch.optim.lr_scheduler class and plain arguments, or null
    check(s.get("interval", "step") in SCHEDULER_INTERVALS, "scheduler.interval",
          s.get("interval"), "expected step or epoch")  # fmt: skip
    monitor = s.get("monitor")
    check(monitor is None or str(monitor).startswith("val/"), "scheduler.monitor", monitor,
          "expected a val/ metric, e.g. val/loss")  # fmt: skip


def _check_optim(optim: DictConfig) -> None:
    """A torch.optim class and plain arguments: a resumed run's optim comes from its
    checkpoint, which must never build objects (convae/config/optim.py)."""
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
