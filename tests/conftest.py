"""Fixtures every test file may use; plain helpers are in helpers.py.

Torch threads: the session runs with THREADS (every core this process may use: under
pytest-xdist, the worker's own share, helpers.py), set once here, and console scripts run by
the tests get the same. A test that needs another count takes the ``torch_threads``
fixture, which puts the session's count back afterwards; a test that changes it without
restoring it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from helpers import THREADS
from omegaconf import DictConfig

from convae.config.compose import compose_train

torch.set_num_threads(THREADS)


@pytest.fixture(autouse=True)
def _threads_are_restored() -> Iterator[None]:
    yield
    leaked = torch.get_num_threads()
    if leaked != THREADS:
        torch.set_num_threads(THREADS)
        pytest.fail(
            f"the test left torch at {leaked} threads, not the session's {THREADS}: "
            "use the torch_threads fixture",
            pytrace=False,
        )


@pytest.fixture
def torch_threads() -> Iterator[Callable[[int], None]]:
    """``torch_threads(n)`` runs the rest of the test on ``n`` torch threads; the session's
    count is restored after it."""
    yield torch.set_num_threads
    torch.set_num_threads(THREADS)


@pytest.fixture(scope="session")
def compose() -> Callable[..., DictConfig]:
    """``compose(*overrides, validate=True, with_hydra=False)``: conf/train.yaml composed as
    convae-train composes it (convae.config.compose.compose_train), validated unless told not to."""

    def composed(*overrides: str, validate: bool = True, with_hydra: bool = False) -> DictConfig:
        return compose_train(overrides, validate=validate, with_hydra=with_hydra)

    return composed


@pytest.fixture(scope="session")
def bundled_digits() -> torch.Tensor:
    """500 real digits (the bundled validation split) as floats in [0, 1]."""
    from convae.data.datamodule import ImageDataModule

    dm = ImageDataModule(source="bundled")
    dm.setup()
    return dm.fixed_digits(500)[1]
