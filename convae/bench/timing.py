"""convae-bench's timings: convae's path (as convae-train builds it) at each precision and
a plain fp32 loop, interleaved in rounds, training steps timed from the end of one optimizer
step to the end of the next; validation, inference and the process start apart.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from convae.config.convert import to_container
from convae.config.precision import Precision
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.models import ConvAutoencoder
from convae.models.losses import reconstruction_loss
from convae.tracking.loggers import build_loggers
from convae.training.build import build_trainer, model_arguments
from convae.training.optimizers import build_optimizer


def _process_start() -> float:
    """Wall-clock time this process started (Linux), else this module's import time."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(ln for ln in Path("/proc/stat").read_text().splitlines() if ln[:5] == "btime")
        return int(btime.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return time.time()


PROCESS_START = _process_start()


class StepTimer(pl.Callback):
    """Sums end-to-end step intervals inside an epoch after ``skip`` warm-up steps, then stops."""

    def __init__(self, skip: int, steps: int) -> None:
        self.skip, self.steps = skip, steps
        self.seen = self.timed = self.images = 0
        self.elapsed = 0.0
        self.last: float | None = None
        self.first_step_at: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.last = None  # the first interval of an epoch would include the epoch boundary

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.first_step_at = self.first_step_at or time.time()

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, out: Any, batch: Any, i: int):
        now = time.perf_counter()
        self.seen += 1
        if self.last is not None and self.seen > self.skip:
            self.elapsed += now - self.last
            self.timed += 1
            self.images += len(batch)
        self.last = now
        if self.timed >= self.steps:
            trainer.should_stop = True


class ValidationTimer(pl.Callback):
    """Wall time of each epoch-end validation inside ``fit``: from the end of the epoch's
    last training batch to ``on_train_epoch_end``. That is the whole validation loop (data,
    forward, metrics, logging, image grids, spectra) and the checkpoints saved after it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._last_batch_end = 0.0

    def on_train_batch_end(self, *args: Any) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._last_batch_end)


def validation_costs(
    cfg: DictConfig, module: Any, dm: Any, precision: Precision, root: Path
) -> list[float]:
    """Seconds per validation over one whole cycle of the artifact pictures (drawn at every
    ``artifact_images_every``-th validation), after one warm-up validation, in a fit with
    convae-train's trainer and callbacks and two training batches per epoch, at
    ``precision`` (the default: what a run pays)."""
    cycle = max(1, cfg.callbacks.artifact_images_every)
    vcfg = OmegaConf.create(to_container(cfg))
    vcfg.trainer.update(
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=2,
        max_epochs=cycle + 1, check_val_every_n_epoch=1, val_check_interval=None,
    )  # fmt: skip
    root.mkdir(parents=True)
    trainer = build_trainer(vcfg, root, build_loggers(vcfg.logger, root), precision)
    timer = ValidationTimer()
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=dm)
    return timer.seconds[1:]


def timed_trainer(cfg: DictConfig, root: Path) -> DictConfig:
    """convae-train's trainer settings, minus validation and the progress bar."""
    cfg = OmegaConf.create(to_container(cfg))  # untyped: the schema has no model-summary key
    cfg.trainer.update(
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, max_epochs=-1
    )
    return cfg


def convae_run(
    cfg: DictConfig, module: Any, dm: Any, precision: Precision, root: Path, warmup: int,
    steps: int,
) -> tuple[float, float | None]:  # fmt: skip
    """One fresh Trainer (as build_trainer makes it, at ``precision``) fitting the shared
    module; images/s and when its first training batch started. Mixed precision keeps the
    weights in float32, so the paths can share one module whatever their precision."""
    root.mkdir(parents=True)
    trainer = build_trainer(
        timed_trainer(cfg, root), root, build_loggers(cfg.logger, root), precision
    )
    timer = StepTimer(warmup, steps)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=dm)
    return timer.images / timer.elapsed, timer.first_step_at


def plain_loop(cfg: DictConfig, images: torch.Tensor) -> tuple[torch.nn.Module, Callable]:
    """What a hand-written loop does per step: gather, noise, forward, loss, step (NCHW)."""
    torch.manual_seed(cfg.seed)
    net = ConvAutoencoder(**model_arguments(cfg))
    opt = build_optimizer(cfg.optim, net.parameters())
    bs, state = cfg.data.batch_size, {"perm": torch.randperm(len(images)), "pos": 0, "step": 0}

    def run(warmup: int, steps: int) -> float:
        elapsed, last = 0.0, time.perf_counter()
        for k in range(warmup + steps):
            if state["pos"] + bs > len(images):
                state["perm"], state["pos"] = torch.randperm(len(images)), 0
            targets = to_unit(images[state["perm"][state["pos"] : state["pos"] + bs]])
            state["pos"] += bs
            g = seeded_generator(cfg.seed, TRAIN, state["step"])
            inputs = add_noise(targets, cfg.data.noise_std, g)
            loss = reconstruction_loss(cfg.loss, net(inputs), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            now = time.perf_counter()
            elapsed += (now - last) if k >= warmup else 0.0
            last = now
        return steps * bs / elapsed

    return net, run


FP32 = Precision("32-true", "the reference convae-bench times the default against")


def convae_paths(default: Precision) -> dict[str, Precision]:
    """convae's paths to time: the default, and 32-true beside it unless the default is
    32-true already (timing the same thing twice would only measure noise)."""
    paths = {"convae": default}
    if default.value != FP32.value:
        paths["convae_fp32"] = FP32
    return paths


class Rates(NamedTuple):
    images_per_s: dict[str, list[float]]  # per path, one entry per timed round
    first_step_at: float  # wall time of convae's first training batch (in the warm-up round)


def timed_rounds(
    cfg: DictConfig, module: Any, dm: Any, paths: dict[str, Precision], plain: Callable,
    root: Path, repeats: int, steps: int, warmup: int,
) -> Rates:  # fmt: skip
    """A warm-up round, then ``repeats`` rounds of every convae path then the plain loop:
    interleaved, so a change of load or clock speed hits every path alike, and the paths of
    one round are neighbours in time (the paired ratios compare within a round)."""
    rates: dict[str, list[float]] = {name: [] for name in [*paths, "plain_nchw"]}
    first_step_at = None
    for r in range(repeats + 1):  # round 0 warms every path up, untimed
        for name, precision in paths.items():
            rate, started = convae_run(
                cfg, module, dm, precision, root / f"{name}-r{r}", warmup, steps
            )
            first_step_at = first_step_at or started
            if r:
                rates[name].append(rate)
        rate = plain(warmup, steps)
        if r:
            rates["plain_nchw"].append(rate)
    assert first_step_at is not None
    return Rates(rates, first_step_at)


def precision_numbers(default: Precision, rates: dict[str, list[float]]) -> dict[str, Any]:
    """The default precision and its speedup over 32-true: the median of the rounds' paired
    ratios (fp32 time / default time for the same images, neighbours in time, so drift
    cancels); 1.0 by construction where the default is 32-true and fp32 was not timed apart."""
    fp32_timed = "convae_fp32" in rates
    paired = (
        [a / b for a, b in zip(rates["convae"], rates["convae_fp32"], strict=True)]
        if fp32_timed
        else []
    )
    return {
        "precision_used": default.value,
        "precision_reason": default.reason,
        "speedup_vs_fp32": statistics.median(paired) if paired else 1.0,
        "speedup_vs_fp32_paired": paired,
        "fp32_timed": fp32_timed,
    }


def inference_rate(net: torch.nn.Module, x: torch.Tensor, fmt: torch.memory_format, n: int):
    """Images/s of eval-mode forward passes on one batch, the median of ``n`` after warm-up."""
    net = copy.deepcopy(net).eval().to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    times = []
    with torch.inference_mode():
        for k in range(n + 2):
            t = time.perf_counter()
            net(x)
            if k >= 2:
                times.append(time.perf_counter() - t)
    return len(x) / statistics.median(times)
