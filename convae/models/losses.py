"""Reconstruction losses by name: the one list that ``config.validate`` checks ``loss``
against and that training, convae-eval and convae-bench compute from.

Each loss takes the network's logits and targets in [0, 1] and returns the batch mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported in the losses themselves: config.validate reads LOSSES' names first.
LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, the tutorial's: fused with the sigmoid, so stable where
    the sigmoid saturates."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits, target)


def mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the sigmoid outputs, the images themselves (PSNR's error)."""
    import torch
    import torch.nn.functional as F

    return F.mse_loss(torch.sigmoid(logits), target)


LOSSES: dict[str, LossFn] = {"bce": bce, "mse": mse}


def reconstruction_loss(name: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss ``name`` (a key of LOSSES, which ``config.validate`` has checked)."""
    return LOSSES[name](logits, target)
