"""convae-bench: convae's training speed against a plain loop, fp32 and the hardware's roof.

convae's path at its default precision (``trainer.precision``, auto resolved), convae's path
at 32-true and a plain fp32 NCHW loop train the same architecture on the same uint8 tensors
with the same optimizer and noise, in one process, interleaved (rounds of default, 32-true,
plain after a warm-up round) so load drift hits all of them; each round's ratios are reported
too, as neighbours in time they share its state. Where the default is 32-true already, the
32-true timing is skipped: its speedup is 1.0 by construction.
The roof is the best GFLOP/s of a compute-bound square matrix product at fp32 and bf16 (bf16
emulated where the CPU has no bf16 instructions); the achieved GFLOP/s is the FLOPs of one
training image's forward and backward (torch.utils.flop_counter) times convae's images/s at
the default precision.
A training "step" is timed from the end of one optimizer step to the end of the next (data
gather, noise, forward, backward, step, per-step logging), never across an epoch boundary:
per-epoch work (checkpoints, validation) is reported separately as a fraction of an epoch.
``seconds_to_first_step`` counts from the process start (/proc/self/stat) to the first
training batch of convae's path: interpreter, imports, composition, data and builders.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from convae.build import build_datamodule, build_module, build_trainer, model_arguments
from convae.compose import compose_train
from convae.config import to_container
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.loggers import build_loggers
from convae.losses import reconstruction_loss
from convae.models import ConvAutoencoder
from convae.optimizers import build_optimizer
from convae.precision import Precision, cpu_bf16_flags, resolve_precision, uses_gpu
from convae.results import write_json_atomic
from convae.threads import available_cores, default_threads


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


def compose_config(overrides: list[str]) -> DictConfig:
    return compose_train(overrides)  # composed and validated as convae-train does


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


def flops_per_image(cfg: DictConfig, module: Any, images: torch.Tensor) -> float:
    """FLOPs of one training batch's forward and backward, per image, as
    torch.utils.flop_counter counts them (convolutions and matrix products, 2 per
    multiply-add; the loss, activations and pooling are a rounding error next to them).
    Counted on a copy at fp32: the count does not depend on the precision, and the timed
    model's weights stay untouched."""
    net = copy.deepcopy(module.net).train()
    targets = to_unit(images[: cfg.data.batch_size])
    inputs = add_noise(targets, cfg.data.noise_std, seeded_generator(cfg.seed, TRAIN, 0))
    with FlopCounterMode(display=False) as counter:
        logits = net(inputs.contiguous(memory_format=module.memory_format))
        reconstruction_loss(cfg.loss, logits.float(), targets).backward()
    return counter.get_total_flops() / len(targets)


# The roof each training precision is measured against, by its matrix-multiply dtype.
ROOF_KEY = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}
ROOF_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_gflops(
    dtype: torch.dtype, device: str, n: int = 2048, repeats: int = 5, budget_s: float = 3.0
) -> float:
    """The best GFLOP/s of an n x n matrix product (2 n^3 FLOPs), with this process's torch
    threads: at n = 2048 it is compute-bound, so it is what the matrix units give a dense
    kernel. The best of ``repeats``, cut short after ``budget_s`` (never under two).
    A dtype the hardware lacks gets a smaller n: emulated bf16 on an AVX2 CPU runs at
    0.3 GFLOP/s, a minute per 2048 product; at its size here a product takes a fifth of
    the budget, still compute-bound (n >= 256)."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    m = min(n, 256)
    for _ in range(2):  # thread pool and kernel selection first, then a rough rate
        _sync(device)
        t = time.perf_counter()
        a[:m, :m] @ b[:m, :m]
        _sync(device)
    rate = 2 * m**3 / max(time.perf_counter() - t, 1e-9)
    n = min(n, max(m, int((rate * budget_s / 5 / 2) ** (1 / 3))))
    a, b = a[:n, :n].contiguous(), b[:n, :n].contiguous()
    best, spent = 0.0, 0.0
    for k in range(repeats):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        seconds = time.perf_counter() - t
        best, spent = max(best, 2 * n**3 / seconds / 1e9), spent + seconds
        if k >= 1 and spent > budget_s:
            break
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def roof_gflops(precision: Precision, device: str) -> dict[str, float]:
    """fp32 and bf16 matmul GFLOP/s (and fp16 where training uses it): the roof."""
    keys = dict.fromkeys(["fp32", "bf16", ROOF_KEY[precision.value]])
    n = 8192 if device.startswith("cuda") else 2048  # a GPU needs more work to be busy
    return {k: matmul_gflops(ROOF_DTYPES[k], device, n) for k in keys}


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


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    return {"cpu": model, "cores_available": available_cores(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16_flags": cpu_bf16_flags(), "load_average": os.getloadavg()}  # fmt: skip


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


def roofline(
    default: Precision, flops: float, images_per_s: float, roof: dict[str, float]
) -> dict[str, Any]:
    """How close convae's default path comes to this machine's matrix units: achieved
    GFLOP/s (FLOPs per image x images/s) over the roof of the precision it trains in."""
    achieved = flops * images_per_s / 1e9
    return {
        "flops_per_image": flops,
        "roof_gflops": roof,
        "achieved_gflops": achieved,
        "roof_fraction": achieved / roof[ROOF_KEY[default.value]],
    }


def bench(cfg: DictConfig, repeats: int, steps: int, warmup: int = 3) -> dict[str, Any]:
    torch.set_num_threads(cfg.threads or default_threads())
    host = machine()  # the load average before this process adds its own
    default = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg)
    flops = flops_per_image(cfg, module, dm.train_set.images)
    net, plain = plain_loop(cfg, dm.train_set.images)
    paths = convae_paths(default)
    with tempfile.TemporaryDirectory(prefix="convae-bench-") as tmp:
        rates, first_step = timed_rounds(
            cfg, module, dm, paths, plain, Path(tmp), repeats, steps, warmup
        )
        val_seconds = validation_costs(cfg, module, dm, default, Path(tmp, "val"))
    device = "cuda" if uses_gpu(cfg.trainer.accelerator) else "cpu"
    roof = roof_gflops(default, device)
    x = to_unit(dm.train_set.images[:1000])
    infer = {name: inference_rate(net, x, fmt, repeats)
             for name, fmt in (("nchw", torch.contiguous_format),
                               ("channels_last", torch.channels_last))}  # fmt: skip
    train = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
             for k, v in rates.items()}  # fmt: skip
    epoch_s = len(dm.train_set) / train["convae"]["median"]
    return {
        **precision_numbers(default, rates),
        **roofline(default, flops, train["convae"]["median"], roof),
        "roof_device": device,
        "train_images_per_s": train,
        "ratio_median": train["convae"]["median"] / train["plain_nchw"]["median"],
        # Per-repeat convae/plain: neighbours in time, so slow machine drift cancels out.
        "ratio_paired": [a / b for a, b in zip(rates["convae"], rates["plain_nchw"], strict=True)],
        "inference_images_per_s": infer,
        # The mean over a picture cycle is what validation costs over a run.
        "validation_fraction_of_epoch": statistics.mean(val_seconds) / epoch_s,
        "validation_seconds": statistics.mean(val_seconds),
        "validation_seconds_runs": val_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds_to_first_step": first_step - PROCESS_START,
        "repeats": repeats, "steps": steps, "warmup_steps": warmup,
        "config": {"depths": list(cfg.model.depths), "upsample": cfg.model.upsample,
                   "batch_size": cfg.data.batch_size, "channels_last": cfg.channels_last,
                   "noise_std": cfg.data.noise_std, "source": dm.source_used,
                   "deterministic": cfg.trainer.deterministic, "full": to_container(cfg)},
        "machine": host,
    }  # fmt: skip


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def precision_line(res: dict[str, Any]) -> str:
    """The precision trained in, why, and its speedup (or why there is none to measure)."""
    head = f"precision: {res['precision_used']} ({res['precision_reason']})"
    if not res["fp32_timed"]:
        return (
            f"{head}; the default is 32-true, so the 32-true timing was skipped: "
            "speedup_vs_fp32 is 1.0 by construction"
        )
    r = res["speedup_vs_fp32_paired"]
    return (
        f"{head}: speedup_vs_fp32 {res['speedup_vs_fp32']:.2f}x (median of {len(r)} "
        f"rounds' 32-true/default time, {min(r):.2f}-{max(r):.2f})"
    )


def roof_line(res: dict[str, Any]) -> str:
    """Achieved GFLOP/s against the matmul roof, with the arithmetic that gives it."""
    roof, m = res["roof_gflops"], res["machine"]
    key = ROOF_KEY[res["precision_used"]]
    emulated = res["roof_device"] == "cpu" and not m["cpu_bf16_flags"]
    emulated_note = " (bf16 emulated: no AMX or AVX512-BF16)" if emulated else ""
    roofs = ", ".join(f"{k} {v:,.0f}" for k, v in roof.items())
    return (
        f"hardware: {res['flops_per_image'] / 1e6:.2f} MFLOP per training image (forward + "
        f"backward) x {res['train_images_per_s']['convae']['median']:,.0f} images/s = "
        f"{res['achieved_gflops']:.1f} GFLOP/s = {res['roof_fraction']:.1%} of the {key} roof; "
        f"roof (best square matmul, {m['torch_threads']} threads): {roofs} GFLOP/s{emulated_note}"
    )


def report(res: dict[str, Any]) -> str:
    """Machine and config first, so a pasted table says where and what it measured."""
    t, m, c = res["train_images_per_s"], res["machine"], res["config"]
    labels = {"convae": f"convae {res['precision_used']} (default)",
              "convae_fp32": "convae 32-true", "plain_nchw": "plain NCHW 32-true"}  # fmt: skip
    rows = {labels[p]: {k: t[p][k] for k in ("median", "min", "max")} for p in t}
    rows["convae/plain, ratio of medians"] = {"median": res["ratio_median"]}
    rows["convae/plain, per round"] = _spread(res["ratio_paired"])
    if res["fp32_timed"]:
        rows["default/32-true, per round"] = _spread(res["speedup_vs_fp32_paired"])
    rows |= {f"inference {k}": {"median": v} for k, v in res["inference_images_per_s"].items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table.to_string(float_format="{:.2f}".format, na_rep="")
    load = ", ".join(f"{x:.2f}" for x in m["load_average"])
    return (
        f"machine: {m['cpu']}, {m['cores_available']} cores available, {m['torch_threads']} "
        f"torch threads, load average before the run {load}\nconfig: depths={c['depths']} upsample="
        f"{c['upsample']} batch_size={c['batch_size']} channels_last={c['channels_last']} "
        f"noise_std={c['noise_std']} data={c['source']}\n{precision_line(res)}\n"
        f"images/s (training: {res['steps']} steps x {res['repeats']} interleaved rounds; "
        f"inference: batch 1000, eval mode, fp32)\n{table}\n{roof_line(res)}\n"
        f"validation at {res['precision_used']} (mean over a picture cycle of "
        f"{len(res['validation_seconds_runs'])}): "
        f"{res['validation_seconds']:.3f} s = "
        f"{res['validation_fraction_of_epoch']:.3f} of a training epoch; peak RSS "
        f"{res['peak_rss_mb']:.0f} MB; {res['seconds_to_first_step']:.2f} s from process start "
        "to the first training step"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="convae-bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the numbers here (atomically)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds of every path (>= 5)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each repeat")
    p.add_argument("overrides", nargs="*", help="convae-train overrides, e.g. experiment=...")
    args = p.parse_args(argv)
    if min(args.repeats, args.steps, args.warmup) < 1:
        p.error("--repeats, --steps and --warmup must be positive")
    if args.repeats < 5:
        print("convae-bench: fewer than 5 repeats: for tests, not for numbers", file=sys.stderr)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
    res = bench(compose_config(args.overrides), args.repeats, args.steps, args.warmup)
    print(report(res))
    if args.json:
        write_json_atomic(args.json, res)


if __name__ == "__main__":
    main()
