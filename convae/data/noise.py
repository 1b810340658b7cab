"""Gaussian input noise, clipped to [0, 1]; targets stay clean.

Training noise is fresh every step yet reproducible: its generator is seeded from
(seed, step, rank), so a resumed run draws the same noise a straight run would.
Evaluation noise is drawn once per split from the data split seed and stored, so every
epoch and every run (whatever its seed) sees the same noisy images, whatever the batch size
or number of processes.
"""

from __future__ import annotations

import numpy as np
import torch

TRAIN, VAL, TEST, SHUFFLE = 0, 1, 2, 3  # independent random streams


def seeded_generator(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator whose state depends on all ``keys`` (mixed by numpy's SeedSequence)."""
    seed = int(np.random.SeedSequence([abs(int(k)) for k in keys]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(seed)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1], done per batch so the data set stays uint8."""
    return images.float().div_(255.0)


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp_(0.0, 1.0)
