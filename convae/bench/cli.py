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
import logging
import os
import resource
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from convae.bench.decoders import all_decoders, decoders_table
from convae.bench.roofline import flops_per_image, roof_gflops, roofline
from convae.bench.startup import startup_report, startup_times
from convae.bench.text import report
from convae.bench.timing import (
    PROCESS_START,
    convae_paths,
    inference_rate,
    plain_loop,
    precision_numbers,
    timed_rounds,
    validation_costs,
)
from convae.config.compose import compose_train
from convae.config.convert import to_container
from convae.config.precision import uses_gpu
from convae.config.validate import validate
from convae.data.noise import to_unit
from convae.hardware import available_cores, cpu_bf16_flags, default_threads
from convae.runs.results import write_json_atomic
from convae.training.build import build_datamodule, build_module


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    return {"cpu": model, "cores_available": available_cores(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16_flags": cpu_bf16_flags(), "load_average": os.getloadavg()}  # fmt: skip


def compose_config(overrides: list[str]) -> DictConfig:
    return compose_train(overrides)  # composed and validated as convae-train does


def bench(cfg: DictConfig, repeats: int, steps: int, warmup: int = 3) -> dict[str, Any]:
    torch.set_num_threads(cfg.threads or default_threads())
    host = machine()  # the load average before this process adds its own
    default = validate(cfg)  # the precision convae-train would resolve for this config
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="convae-bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the numbers here (atomically)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds of every path (>= 5)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each repeat")
    p.add_argument("--startup", action="store_true",
                   help="time the commands' answers before training (--help, a refused "
                   "override) against import pytorch_lightning, and stop")  # fmt: skip
    p.add_argument("--all-decoders", action="store_true",
                   help="bench every decoder at both depths and print one table")  # fmt: skip
    p.add_argument("overrides", nargs="*", help="convae-train overrides, e.g. experiment=...")
    args = p.parse_args(argv)
    if args.startup:
        times = startup_times(args.repeats)
        print(startup_report(times))
        if args.json:
            write_json_atomic(args.json, {"startup_seconds": times, **machine()})
        return
    if min(args.repeats, args.steps, args.warmup) < 1:
        p.error("--repeats, --steps and --warmup must be positive")
    if args.repeats < 5:
        print("convae-bench: fewer than 5 repeats: for tests, not for numbers", file=sys.stderr)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
    if args.all_decoders:
        rows = all_decoders(args.overrides, lambda o: bench(compose_config(o), args.repeats,
                                                            args.steps, args.warmup))  # fmt: skip
        print(decoders_table(rows))
        if args.json:
            write_json_atomic(args.json, {"decoders": rows, **machine()})
        return
    res = bench(compose_config(args.overrides), args.repeats, args.steps, args.warmup)
    print(report(res))
    if args.json:
        write_json_atomic(args.json, res)


if __name__ == "__main__":
    main()
