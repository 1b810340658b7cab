"""The lowest test BCE any model can reach: the mean binary entropy of the test targets.

BCE(p, y) = -y log p - (1 - y) log(1 - p) is minimised at p = y, where it equals the
entropy H(y); MNIST pixels are grey levels, not 0/1, so this floor is well above zero.
"""

from __future__ import annotations

import argparse

import torch

from convae.data.datamodule import ImageDataModule
from convae.data.noise import to_unit


def bce_floor(targets: torch.Tensor) -> float:
    y = targets.double()
    return float(torch.special.entr(y).add(torch.special.entr(1 - y)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="bundled")
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    dm = ImageDataModule(source=args.source, root=args.root)
    dm.setup()
    print(f"{dm.source_used} test split ({len(dm.test_set)} digits): "
          f"BCE floor {bce_floor(to_unit(dm.test_set.images)):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
