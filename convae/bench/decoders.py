"""``convae-bench --all-decoders``: every decoder at both depth presets, one table.

Each configuration is benched as ``convae-bench <overrides> upsample=<u> model=<d>`` alone
would bench it (its default precision, 32-true beside it, the plain loop), one after the
other in this process: the ratios inside a row are paired measurements, the images/s of
different rows come from different minutes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

DECODERS = ("nearest", "bilinear", "transposed", "transposed_k4", "pixel_shuffle",
            "pixel_shuffle_icnr")  # fmt: skip  # conf/upsample/
DEPTHS = ("depth_16_8_8", "depth_32_32_16")  # conf/model/


def all_decoders(
    overrides: Sequence[str], bench_one: Callable[[list[str]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per decoder and depth; ``bench_one(overrides)``: convae-bench's numbers."""
    rows = []
    for depth in DEPTHS:
        for decoder in DECODERS:
            res = bench_one([*overrides, f"upsample={decoder}", f"model={depth}"])
            train = res["train_images_per_s"]
            rows.append({
                "decoder": decoder,
                "depths": depth.removeprefix("depth_").replace("_", "-"),
                "precision": res["precision_used"],
                "float32_transposed": "stay float32" in res["precision_reason"],
                "default_images_per_s": train["convae"]["median"],
                "fp32_images_per_s": train.get("convae_fp32", train["convae"])["median"],
                "plain_images_per_s": train["plain_nchw"]["median"],
                "speedup_vs_fp32": res["speedup_vs_fp32"],
                "convae_vs_plain": res["ratio_median"],
                "roof_fraction": res["roof_fraction"],
            })  # fmt: skip
    return rows


def decoders_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (f"{'decoder':19s} {'depths':9s} {'default':12s} {'img/s':>7s} {'32-true':>7s} "
            f"{'plain':>7s} {'vs fp32':>7s} {'vs plain':>8s} {'roof':>6s}")  # fmt: skip
    lines = [head]
    for r in rows:
        default = r["precision"] + ("*" if r["float32_transposed"] else "")
        lines.append(
            f"{r['decoder']:19s} {r['depths']:9s} {default:12s} "
            f"{r['default_images_per_s']:7.0f} {r['fp32_images_per_s']:7.0f} "
            f"{r['plain_images_per_s']:7.0f} {r['speedup_vs_fp32']:6.2f}x "
            f"{r['convae_vs_plain']:7.2f}x {r['roof_fraction']:6.1%}"
        )
    if any(r["float32_transposed"] for r in rows):
        lines.append("* transposed convolutions kept in float32 (convae/config/precision.py)")
    return "\n".join(lines)
