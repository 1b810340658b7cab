"""convae-bench: how fast is convae's Lightning path against a plain PyTorch loop?

Both paths train the same architecture on the same uint8 tensors with the same optimizer and
noise, in one process, interleaved (A/B/A/B after a warm-up round) so load drift hits both;
each repeat's convae/plain ratio is reported too, as neighbours in time they share its state.
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
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from convae.build import build_datamodule, build_logger, build_module, build_trainer
from convae.config import register_configs, to_container, validate
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.models import build_autoencoder
from convae.module import reconstruction_loss
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


def validation_costs(cfg: DictConfig, module: Any, dm: Any, root: Path) -> list[float]:
    """Seconds per validation over one whole cycle of the artifact pictures (drawn at every
    ``artifact_images_every``-th validation), after one warm-up validation, in a fit with
    convae-train's trainer and callbacks and two training batches per epoch."""
    cycle = max(1, cfg.callbacks.artifact_images_every)
    vcfg = OmegaConf.create(to_container(cfg))
    vcfg.trainer.update(
        enable_progress_bar=False, enable_model_summary=False, limit_train_batches=2,
        max_epochs=cycle + 1, check_val_every_n_epoch=1, val_check_interval=None,
    )  # fmt: skip
    root.mkdir(parents=True)
    trainer = build_trainer(vcfg, root, build_logger(root))
    timer = ValidationTimer()
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=dm)
    return timer.seconds[1:]


def compose_config(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_module(config_module="convae.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    validate(cfg)
    return cfg


def timed_trainer(cfg: DictConfig, root: Path) -> DictConfig:
    """convae-train's trainer settings, minus validation and the progress bar."""
    cfg = OmegaConf.create(to_container(cfg))  # untyped: the schema has no model-summary key
    cfg.trainer.update(
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, max_epochs=-1
    )
    return cfg


def convae_run(cfg: DictConfig, module: Any, dm: Any, root: Path, warmup: int, steps: int):
    """One fresh Trainer (as build_trainer makes it) fitting the shared module; images/s."""
    root.mkdir(parents=True)
    trainer = build_trainer(timed_trainer(cfg, root), root, build_logger(root))
    timer = StepTimer(warmup, steps)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=dm)
    return timer.images / timer.elapsed, timer.first_step_at


def plain_loop(cfg: DictConfig, images: torch.Tensor) -> tuple[torch.nn.Module, Callable]:
    """What a hand-written loop does per step: gather, noise, forward, loss, step (NCHW)."""
    torch.manual_seed(cfg.seed)
    net = build_autoencoder(**OmegaConf.to_container(cfg.model))
    opt = instantiate(cfg.optim)(params=net.parameters())
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
            "load_average": os.getloadavg()}  # fmt: skip


def bench(cfg: DictConfig, repeats: int, steps: int, warmup: int = 3) -> dict[str, Any]:
    torch.set_num_threads(cfg.threads or default_threads())
    host = machine()  # the load average before this process adds its own
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    module = build_module(cfg)
    net, plain = plain_loop(cfg, dm.train_set.images)
    rates: dict[str, list[float]] = {"convae": [], "plain_nchw": []}
    with tempfile.TemporaryDirectory(prefix="convae-bench-") as tmp:
        _, first_step = convae_run(cfg, module, dm, Path(tmp, "warmup"), warmup, steps)
        plain(warmup, steps)
        for r in range(repeats):  # interleaved: A, B, A, B, ...
            rate, _ = convae_run(cfg, module, dm, Path(tmp, f"r{r}"), warmup, steps)
            rates["convae"].append(rate)
            rates["plain_nchw"].append(plain(warmup, steps))
        val_seconds = validation_costs(cfg, module, dm, Path(tmp, "val"))
    x = to_unit(dm.train_set.images[:1000])
    infer = {name: inference_rate(net, x, fmt, repeats)
             for name, fmt in (("nchw", torch.contiguous_format),
                               ("channels_last", torch.channels_last))}  # fmt: skip
    train = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
             for k, v in rates.items()}  # fmt: skip
    epoch_s = len(dm.train_set) / train["convae"]["median"]
    return {
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


def report(res: dict[str, Any]) -> str:
    """Machine and config first, so a pasted table says where and what it measured."""
    t, m, c = res["train_images_per_s"], res["machine"], res["config"]
    rows = {p: {k: t[p][k] for k in ("median", "min", "max")} for p in t}
    rows["ratio of medians"] = {"median": res["ratio_median"]}
    r = res["ratio_paired"]
    rows["ratio per repeat pair"] = {"median": statistics.median(r), "min": min(r), "max": max(r)}
    rows |= {f"inference {k}": {"median": v} for k, v in res["inference_images_per_s"].items()}
    table = pd.DataFrame.from_dict(rows, orient="index").to_string(float_format="{:.2f}".format)
    load = ", ".join(f"{x:.2f}" for x in m["load_average"])
    return (
        f"machine: {m['cpu']}, {m['cores_available']} cores available, {m['torch_threads']} "
        f"torch threads, load average before the run {load}\nconfig: depths={c['depths']} upsample="
        f"{c['upsample']} batch_size={c['batch_size']} channels_last={c['channels_last']} "
        f"noise_std={c['noise_std']} data={c['source']}\nimages/s (training: {res['steps']} "
        f"steps x {res['repeats']} repeats; inference: batch 1000, eval mode)\n{table}\n"
        f"validation (mean over a picture cycle of {len(res['validation_seconds_runs'])}): "
        f"{res['validation_seconds']:.3f} s = "
        f"{res['validation_fraction_of_epoch']:.3f} of a training epoch; peak RSS "
        f"{res['peak_rss_mb']:.0f} MB; {res['seconds_to_first_step']:.2f} s from process start "
        "to the first training step"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="convae-bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the numbers here (atomically)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per path (>= 5)")
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
