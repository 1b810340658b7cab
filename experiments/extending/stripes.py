"""A data source in one file: ``data.source=stripes``, synthetic 16x16 grey images of
bars at random angles, widths and positions (docs/extending.md walks through it).

The decorator says what the source serves, from the config alone; the loader returns
uint8 arrays. torch is imported inside the loader, so registering the source (and
checking a config that names it) imports none.
"""

from __future__ import annotations

from convae.data.registry import SourceRequest, register_source

COUNTS = (600, 100, 100)  # train, val, test


@register_source("stripes", native_size=16)
def stripes(request: SourceRequest):
    """Bars at random angles, widths and positions: 600 train, 100 val, 100 test."""
    import torch

    from convae.data.noise import seeded_generator
    from convae.data.sources import ImageArrays

    side = request.size
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    splits = []
    for split, count in enumerate(COUNTS):
        g = seeded_generator(request.split_seed, split)  # the same images in every run
        angle, offset, width = torch.rand(3, count, 1, 1, generator=g)
        along = xs * torch.cos(angle * torch.pi) + ys * torch.sin(angle * torch.pi)
        bars = (along - offset * side).remainder(side / 2) < 1 + 3 * width
        splits.append((bars * 255).to(torch.uint8).unsqueeze(1))  # (count, 1, side, side)
    train, val, test = splits
    return ImageArrays("stripes", train, val_images=val, test_images=test)
