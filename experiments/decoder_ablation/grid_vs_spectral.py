"""The decoder ablation's decoders by the grid scores beside the spectral ones, per setting.

    python experiments/decoder_ablation/grid_vs_spectral.py <sweep> > grid_vs_spectral.md

For each setting (encoder depths x clean/noisy inputs), every decoder's mean ± std over its
seeds of ``test/grid``, ``test/grid_p2`` and ``test/cb2_incoh``, the decoder each names best
(lowest) and worst, and the one-way ANOVA F over the decoders of every score.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from scipy.stats import f_oneway

SCORES = ("test/grid", "test/grid_p2", "test/grid_p4", "test/grid_p8", "test/cb2_incoh",
          "test/cb2_ratio", "test/loss", "test/psnr")  # fmt: skip
SHOWN = ("test/grid", "test/grid_p2", "test/cb2_incoh", "test/psnr")


def decoder(model: dict) -> str:
    up = model["upsample"]
    if up == "transposed":
        return f"transposed k{model['transposed_kernel_size']}"
    if up == "pixel_shuffle":
        return "pixel shuffle + ICNR" if model["icnr"] else "pixel shuffle"
    return up


def jobs(sweep: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(sweep.glob("*/results.json")):
        results = json.loads(path.read_text())
        if results.get("status") != "completed":
            continue
        config = results["config"]
        rows.append({
            "depths": "-".join(map(str, config["model"]["depths"])),
            "inputs": "noisy" if config["data"]["noise_std"] else "clean",
            "decoder": decoder(config["model"]),
            "seed": config["seed"],
            **{s: results["metrics"].get(s) for s in SCORES},
        })  # fmt: skip
    return pd.DataFrame(rows)


def cell(values: pd.Series) -> str:
    return f"{values.mean():.2g} ± {values.std():.1g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    frame = jobs(parser.parse_args().sweep)
    print(f"{len(frame)} completed jobs.\n")
    print(
        "| depths | inputs | "
        + " | ".join(f"F {s.removeprefix('test/')}" for s in SCORES)
        + " | best by grid / grid_p2 / cb2_incoh | worst by grid / grid_p2 / cb2_incoh |"
    )
    print("|---|---|" + "---|" * (len(SCORES) + 2))
    tables = []
    for (depths, inputs), setting in frame.groupby(["depths", "inputs"]):
        groups = setting.groupby("decoder")
        f = [f_oneway(*(g[s].dropna().to_numpy() for _, g in groups)).statistic for s in SCORES]
        means = groups[list(SHOWN[:3])].mean()
        best = " / ".join(means[s].idxmin() for s in SHOWN[:3])
        worst = " / ".join(means[s].idxmax() for s in SHOWN[:3])
        print(
            f"| {depths} | {inputs} | "
            + " | ".join(f"{v:.1f}" for v in f)
            + f" | {best} | {worst} |"
        )
        table = [f"### {depths}, {inputs} inputs", "",
                 "| decoder | " + " | ".join(s.removeprefix("test/") for s in SHOWN) + " |",
                 "|---|" + "---|" * len(SHOWN)]  # fmt: skip
        for name, g in groups:
            table.append(f"| {name} | " + " | ".join(cell(g[s]) for s in SHOWN) + " |")
        tables.append("\n".join(table))
    print("\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
