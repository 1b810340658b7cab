"""Stride-2 ConvTranspose2d, forward and backward, at bf16 autocast against float32: the
measurement behind ``trainer.precision=auto`` keeping odd-kernel transposed convolutions in
float32 on CPUs without AMX (convae/config/precision.py). Layer sizes as convae's decoders
build them (batch 200, channels_last); median of 5 rounds of 5 steps after 3 warm-up steps.

    python experiments/precision/transposed_bf16.py [threads]
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from convae.hardware import cpu_bf16_flags

LAYERS = [(8, 8, 4), (8, 16, 7), (16, 16, 14), (32, 32, 7)]  # (in, out, input side)
KERNELS = (2, 3, 4, 5)


def seconds(layer: nn.Module, x: torch.Tensor, bf16: bool) -> float:
    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(x)
        y.float().sum().backward()

    for _ in range(3):
        step()
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(5):
            step()
        rounds.append(time.perf_counter() - started)
    return statistics.median(rounds)


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"bf16 flags: {', '.join(cpu_bf16_flags()) or 'none'}")  # fmt: skip
    print(f"{'in':>3s} {'out':>3s} {'side':>4s} {'k':>2s} {'fp32 ms':>8s} {'bf16 ms':>8s} "
          f"{'bf16/fp32':>9s}")  # fmt: skip
    for cin, cout, side in LAYERS:
        for k in KERNELS:
            layer = nn.ConvTranspose2d(cin, cout, k, stride=2).to(memory_format=torch.channels_last)
            x = torch.randn(200, cin, side, side).contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            fp32, bf16 = seconds(layer, x, False), seconds(layer, x, True)
            print(f"{cin:3d} {cout:3d} {side:4d} {k:2d} {fp32 * 1e3:8.1f} {bf16 * 1e3:8.1f} "
                  f"{bf16 / fp32:9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
