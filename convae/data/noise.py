"""Gaussian input noise, clipped to [0, 1]; targets stay clean. The one owner of how
``data.noise_std`` is drawn: ``training_inputs`` (the LightningModule, every step) and
``evaluation_inputs`` (the data module, once per split).

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


def training_inputs(
    targets: torch.Tensor, std: float, *, seed: int, step: int, rank: int = 0
) -> torch.Tensor:
    """``data.noise_std`` on a training batch (floats in [0, 1]): fresh at every step,
    drawn on the batch's device from (run seed, step, process rank)."""
    return add_noise(targets, std, seeded_generator(seed, TRAIN, step, rank, device=targets.device))


def evaluation_inputs(
    images: torch.Tensor, std: float, *, split_seed: int, split: int
) -> torch.Tensor | None:
    """``data.noise_std`` on a whole evaluation split (uint8 images, ``split`` VAL or TEST),
    drawn once, or None when the run is clean. Keyed by the data split seed, not the run
    seed: every run, whatever its seed, is scored on the same noisy images, so seeds differ
    only in what they train."""
    if std == 0:
        return None
    return add_noise(to_unit(images), std, seeded_generator(split_seed, split))
