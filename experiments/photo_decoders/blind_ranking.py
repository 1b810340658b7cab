"""A blind visual ranking of the photo sweep's runs, and how each score agrees with it.

Two steps, so the ranking is made before anyone knows which panel is which decoder:

    python experiments/photo_decoders/blind_ranking.py panels <sweep> <out>
        # one panel per run (test patches from both test photographs, outputs 4x nearest
        # zoom beside their targets), named by a shuffled code A, B, ...; the key goes to
        # <out>/key.json, not to be opened before ranking
    # write <out>/ranking.txt: one code per line, least visible artifact first
    python experiments/photo_decoders/blind_ranking.py score <sweep> <out> > <out>/scores.md
    # several sweeps, each ranked on its own: score <sweep1> <out1> <sweep2> <out2> ...
    # prints each, then all runs together (rho over runs then mixes two rankings of 1..n)

``score`` decodes the ranking and prints, for every test metric, the Spearman rho of the
metric against the visual rank (over the runs, and over the decoders' mean ranks) and the
one-way ANOVA F over the six decoders (3 seeds each).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.utils import make_grid

from convae.data.datamodule import ImageDataModule
from convae.data.noise import to_unit
from convae.runs.finished_run import FinishedRun
from convae.training.module import load_module

PATCHES = 12  # spread over the whole test split: both test photographs
ZOOM = 4
SHUFFLE_SEED = 20261207
METRICS = ("test/grid", "test/grid_rss", "test/grid_p2", "test/grid_p4", "test/grid_p8",
           "test/cb2_incoh", "test/cb4_incoh", "test/cb2_ratio", "test/hf_tail_db", "test/loss",
           "test/ssim")  # fmt: skip


def runs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/results.json")
                  if FinishedRun.read(p.parent).status == "completed")  # fmt: skip


def decoder(config: dict) -> str:
    model = config["model"]
    up = model["upsample"]
    if up == "transposed":
        return f"transposed k{model['transposed_kernel_size']}"
    if up == "pixel_shuffle":
        return "pixel shuffle + ICNR" if model["icnr"] else "pixel shuffle"
    return up


def panel(run: Path) -> Image.Image:
    finished = FinishedRun.read(run)
    module = load_module(finished.checkpoint())
    config = module.hparams.config
    dm = ImageDataModule(**finished.data_arguments(config, noise_std=0.0))
    dm.setup()
    images = to_unit(dm.test_set.images)
    pick = torch.linspace(0, len(images) - 1, PATCHES).round().long()
    targets = images[pick]
    with torch.no_grad():
        outputs = module.reconstruct(targets)
    tiles = torch.cat([outputs, targets])  # outputs on top, targets below
    grid = make_grid(tiles, nrow=PATCHES, padding=2, pad_value=1.0)
    array = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    return image.resize((image.width * ZOOM, image.height * ZOOM), Image.NEAREST)


def make_panels(sweep: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    found = runs(sweep)
    codes = [chr(ord("A") + i) for i in range(len(found))]
    random.Random(SHUFFLE_SEED).shuffle(found)
    key = {}
    for code, run in zip(codes, found, strict=True):
        panel(run).save(out / f"panel_{code}.png")
        key[code] = run.name
    (out / "key.json").write_text(json.dumps(key, indent=2) + "\n")


def as_scored_now(metrics: dict[str, float]) -> dict[str, float]:
    """``test/grid`` as convae defines it now, the sum of the periods' parts, whichever code
    scored the run (the parts are unchanged; a sweep of the root-sum-square days stored
    that), and ``test/grid_rss``, the root sum square, for comparison."""
    parts = [v for k, v in metrics.items() if k.startswith("test/grid_p")]
    return {**metrics, "test/grid": sum(parts), "test/grid_rss": sum(p * p for p in parts) ** 0.5}


def ranked_runs(sweep: Path, out: Path) -> pd.DataFrame:
    key = json.loads((out / "key.json").read_text())
    order = [c.strip() for c in (out / "ranking.txt").read_text().split() if c.strip()]
    assert sorted(order) == sorted(key), "ranking.txt must list every code once"
    rows = []
    for rank, code in enumerate(order, start=1):
        results = FinishedRun.read(sweep / key[code]).results
        rows.append({"code": code, "visual_rank": rank, "decoder": decoder(results["config"]),
                     "seed": results["config"]["seed"],
                     **as_scored_now(results["metrics"])})  # fmt: skip
    return pd.DataFrame(rows)


def agreement(frame: pd.DataFrame, ranks_listed: bool = True) -> str:
    """Every score against the visual ranks: Spearman rho over the runs and over the
    decoders' mean ranks, and the one-way ANOVA F over the decoders."""
    from scipy.stats import f_oneway, spearmanr

    by_decoder = frame.groupby("decoder").mean(numeric_only=True)
    lines = [
        f"| score | Spearman rho, runs (n = {len(frame)}) | rho, decoders "
        f"(n = {len(by_decoder)}) | ANOVA F (p) |",
        "|---|---|---|---|",
    ]
    for metric in METRICS:
        if metric not in frame:
            continue
        # a lower score should mean less artifact; hf_tail_db: its distance from 0
        values = frame[metric].abs() if metric.endswith("hf_tail_db") else frame[metric]
        rho_runs = spearmanr(values, frame["visual_rank"]).statistic
        means = by_decoder[metric].abs() if metric.endswith("hf_tail_db") else by_decoder[metric]
        rho_dec = spearmanr(means, by_decoder["visual_rank"]).statistic
        anova = f_oneway(*(g.to_numpy() for _, g in frame.groupby("decoder")[metric]))
        lines.append(f"| `{metric}` | {rho_runs:.2f} | {rho_dec:.2f} | "
                     f"{anova.statistic:.1f} ({anova.pvalue:.2g}) |")  # fmt: skip
    if not ranks_listed:
        return "\n".join(lines)
    lines += ["", "Visual ranking (least visible artifact first), decoded:", "",
              "| rank | code | decoder | seed |", "|---|---|---|---|"]  # fmt: skip
    for row in frame.sort_values("visual_rank").itertuples():
        lines.append(f"| {row.visual_rank} | {row.code} | {row.decoder} | {row.seed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("panels", "score"))
    parser.add_argument("folders", type=Path, nargs="+", help="sweep out [sweep out ...]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = list(zip(args.folders[::2], args.folders[1::2], strict=True))
    if args.step == "panels":
        for sweep, out in pairs:
            make_panels(sweep, out)
        return
    frames = [ranked_runs(sweep, out) for sweep, out in pairs]
    for (sweep, _), frame in zip(pairs, frames, strict=True):
        print(f"## {sweep.name}\n\n{agreement(frame)}\n")
    if len(frames) > 1:  # each sweep ranked on its own: ranks 1..n in each
        print(f"## All {len(frames)} sweeps together\n\n{agreement(pd.concat(frames), False)}")


if __name__ == "__main__":
    main()
