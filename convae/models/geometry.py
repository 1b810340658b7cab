"""The encoder's spatial sizes, for the model, the config check and the memory estimate:
plain arithmetic, so ``config.validate`` checks depths against the image size without torch."""

from __future__ import annotations


def encoder_sizes(image_size: int, n_stages: int) -> list[int]:
    """Spatial size after each pool, with ceil so odd sizes round up (7 -> 4)."""
    sizes = [image_size]
    for _ in range(n_stages):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes
