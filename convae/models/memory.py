"""How much memory a model and a training batch need at least, against the machine's:
``validate`` refuses a model that cannot fit before torch fails with a raw allocation
error naming no key."""

from __future__ import annotations

import itertools
import os

from convae.models.geometry import encoder_sizes

FLOAT_BYTES = 4


def estimated_memory(
    depths: list[int], kernel_size: int, batch_size: int, channels: int = 1, size: int = 28
) -> tuple[int, int]:
    """(parameter bytes, activation bytes for one training batch), a rough lower bound.

    With channels c_0 = ``channels`` (the data's), c_i = model.depths[i-1], kernel k and
    spatial sizes s_0 = ``size``,
    s_i = ceil(s_{i-1} / 2) (convae/models/autoencoder.py):
      parameters P = sum over the encoder convs (c_{i-1} -> c_i), the decoder stages
        (c_L -> c_L, c_L -> c_{L-1}, ..., c_2 -> c_1) and the last conv (c_1 -> c_0) of
        k^2 * in * out + out  (pixel_shuffle stages have 4x more: not counted);
      parameter memory = 4 bytes * P * 4 (weights, gradients, Adam's two moments);
      activations per image = sum_i c_i * (2 * s_{i-1}^2 + s_i^2) + c_{i+1} * s_{i-1}^2
        (encoder conv and pool outputs, decoder upsampled input and conv output; c_{L+1} =
        c_L) + 2 * c_0 * s_0^2 (input and logits), times 4 bytes * data.batch_size.
    """
    depths, k = [int(d) for d in depths], int(kernel_size)
    ch = [channels, *depths]
    sizes = encoder_sizes(size, len(depths))
    pairs = list(itertools.pairwise(ch))  # encoder
    pairs += list(zip([ch[-1], *depths[:0:-1]], depths[::-1], strict=True))  # decoder
    pairs.append((depths[0], channels))
    params = sum(k * k * cin * cout + cout for cin, cout in pairs)
    per_image = 2 * channels * size**2
    for i, c in enumerate(depths, start=1):
        upsampled_from = depths[i] if i < len(depths) else depths[-1]
        per_image += c * (2 * sizes[i - 1] ** 2 + sizes[i] ** 2)
        per_image += upsampled_from * sizes[i - 1] ** 2
    return FLOAT_BYTES * params * 4, FLOAT_BYTES * per_image * int(batch_size)


def physical_memory() -> int | None:
    """The machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_size(n: float) -> str:
    """Bytes to three significant digits in kB, MB, GB, TB or PB."""
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 999.5:
            return f"{n:.3g} {unit}"
    return f"{n / 1000:,.0f} PB"
