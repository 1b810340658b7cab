"""The latent space at the end of training: the codes of the fixed validation digits for
TensorBoard's embedding projector, decoded interpolations between pairs of digits, and
decoded random codes.

Decoders show their artifacts most clearly off the data manifold, on codes the encoder
never produced. ``latent/cb2_ratio_{recon,interp,random}`` put a number on it: the share of
the outputs' structure on the stride-2 frequencies (convae/metrics/checkerboard.py, the
target-free score) for decodes of the digits' own codes, of midpoints between two digits'
codes, and of random codes drawn uniformly from the codes' own per-dimension range;
``latent/grid_{recon,interp,random}`` are the phase-locked grid scores of the same decodes
(convae/metrics/grid.py), which need no target either.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid

from convae.callbacks.common import tb_step, tb_writer
from convae.metrics.checkerboard import checkerboard_scores
from convae.metrics.grid import grid_scores, model_grid_periods

PROJECTOR_TAG = "latent/codes"
IMAGE_TAGS = ("latent/interpolations", "latent/random")
SCORES = ("cb2_ratio_recon", "cb2_ratio_interp", "cb2_ratio_random",
          "grid_recon", "grid_interp", "grid_random")  # fmt: skip


class LatentSpace(pl.Callback):
    """``n`` validation digits (the artifact batch); ``pairs`` interpolation rows of
    ``steps`` decodes each, from digit i to digit i + pairs; ``shown`` random decodes in the
    picture (``n`` in the score). ``scores`` holds the last scores for results.json."""

    def __init__(
        self, n: int = 500, pairs: int = 8, steps: int = 10, shown: int = 64, seed: int = 0
    ) -> None:
        self.n, self.pairs, self.steps, self.shown, self.seed = n, pairs, steps, shown, seed
        self.scores: dict[str, float] = {}

    @torch.no_grad()
    def on_train_end(self, trainer: pl.Trainer, module: Any) -> None:
        if not trainer.is_global_zero:
            return
        inputs, targets = trainer.datamodule.fixed_digits(self.n, "val")
        labels = trainer.datamodule.fixed_labels(self.n, "val")
        net, layout = module.net, module.memory_format

        def decode(codes: torch.Tensor) -> torch.Tensor:
            logits = net.decoder(codes.to(module.device).contiguous(memory_format=layout))
            return torch.sigmoid(logits.float()).cpu()

        codes = net.encoder(inputs.to(module.device).contiguous(memory_format=layout))
        codes = codes.float().cpu()
        half = len(codes) // 2
        decoded = {
            "recon": decode(codes),
            "interp": decode((codes[:half] + codes[half : 2 * half]) / 2),
            "random": decode(self._random_codes(codes)),
        }
        self.scores = {
            f"latent/cb2_ratio_{k}": checkerboard_scores(x, x)["cb2_ratio"]
            for k, x in decoded.items()
        }
        periods = model_grid_periods(module.hparams.model)  # no target needed: any decoding
        self.scores.update(
            {f"latent/grid_{k}": grid_scores(x, periods)["grid"] for k, x in decoded.items()}
        )
        step = tb_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(self.scores, step=step)
        writer = tb_writer(trainer)
        if writer is None:
            return
        writer.add_embedding(
            codes.flatten(1),
            metadata=None if labels is None else labels.tolist(),
            label_img=targets,
            global_step=step,
            tag=PROJECTOR_TAG,
        )
        writer.add_image(IMAGE_TAGS[0], self._interpolations(codes, decode), step)
        shown = make_grid(decoded["random"][: self.shown], nrow=8, padding=1, pad_value=0.5)
        writer.add_image(IMAGE_TAGS[1], shown, step)
        writer.flush()

    def _random_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Uniform in [min, max] of each code dimension over the digits, seeded."""
        flat = codes.flatten(1)
        low, high = flat.min(0).values, flat.max(0).values
        g = torch.Generator().manual_seed(self.seed)
        return (low + (high - low) * torch.rand(flat.shape, generator=g)).view_as(codes)

    def _interpolations(self, codes: torch.Tensor, decode: Any) -> torch.Tensor:
        """A row per pair: digit i, then the decodes along the straight line, digit i+pairs."""
        pairs = min(self.pairs, len(codes) // 2)
        a, b = codes[:pairs], codes[pairs : 2 * pairs]
        t = torch.linspace(0, 1, self.steps).view(1, -1, 1, 1, 1)
        line = ((1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)).flatten(0, 1)
        return make_grid(decode(line), nrow=self.steps, padding=1, pad_value=0.5)
