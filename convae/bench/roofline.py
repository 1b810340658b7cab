"""The hardware's roof and how close convae comes to it: the FLOPs of one training image
(torch.utils.flop_counter), the best GFLOP/s of a compute-bound matrix product at each
precision, and the achieved GFLOP/s as a fraction of the roof.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from convae.config.precision import Precision
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.models.losses import reconstruction_loss


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


def roofline(
    default: Precision, flops: float, images_per_s: float, roof: dict[str, float]
) -> dict[str, Any]:
    """How close convae's default path comes to the host's matrix units: achieved
    GFLOP/s (FLOPs per image x images/s) over the roof of the precision it trains in."""
    achieved = flops * images_per_s / 1e9
    return {
        "flops_per_image": flops,
        "roof_gflops": roof,
        "achieved_gflops": achieved,
        "roof_fraction": achieved / roof[ROOF_KEY[default.value]],
    }
