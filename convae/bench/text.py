"""convae-bench's report: the numbers as text, machine and config first."""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from convae.bench.roofline import ROOF_KEY


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def precision_line(res: dict[str, Any]) -> str:
    """The precision trained in, why, and its speedup (or why there is none to measure)."""
    head = f"precision: {res['precision_used']} ({res['precision_reason']})"
    if not res["fp32_timed"]:
        return (
            f"{head}; the default is 32-true, so the 32-true timing was skipped: "
            "speedup_vs_fp32 is 1.0 by construction"
        )
    r = res["speedup_vs_fp32_paired"]
    return (
        f"{head}: speedup_vs_fp32 {res['speedup_vs_fp32']:.2f}x (median of {len(r)} "
        f"rounds' 32-true/default time, {min(r):.2f}-{max(r):.2f})"
    )


def roof_line(res: dict[str, Any]) -> str:
    """Achieved GFLOP/s against the matmul roof, with the arithmetic that gives it."""
    roof, m = res["roof_gflops"], res["machine"]
    key = ROOF_KEY[res["precision_used"]]
    emulated = res["roof_device"] == "cpu" and not m["cpu_bf16_flags"]
    emulated_note = " (bf16 emulated: no AMX or AVX512-BF16)" if emulated else ""
    roofs = ", ".join(f"{k} {v:,.0f}" for k, v in roof.items())
    return (
        f"hardware: {res['flops_per_image'] / 1e6:.2f} MFLOP per training image (forward + "
        f"backward) x {res['train_images_per_s']['convae']['median']:,.0f} images/s = "
        f"{res['achieved_gflops']:.1f} GFLOP/s = {res['roof_fraction']:.1%} of the {key} roof; "
        f"roof (best square matmul, {m['torch_threads']} threads): {roofs} GFLOP/s{emulated_note}"
    )


def report(res: dict[str, Any]) -> str:
    """Machine and config first, so a pasted table says where and what it measured."""
    t, m, c = res["train_images_per_s"], res["machine"], res["config"]
    labels = {"convae": f"convae {res['precision_used']} (default)",
              "convae_fp32": "convae 32-true", "plain_nchw": "plain NCHW 32-true"}  # fmt: skip
    rows = {labels[p]: {k: t[p][k] for k in ("median", "min", "max")} for p in t}
    rows["convae/plain, ratio of medians"] = {"median": res["ratio_median"]}
    rows["convae/plain, per round"] = _spread(res["ratio_paired"])
    if res["fp32_timed"]:
        rows["default/32-true, per round"] = _spread(res["speedup_vs_fp32_paired"])
    rows |= {f"inference {k}": {"median": v} for k, v in res["inference_images_per_s"].items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table.to_string(float_format="{:.2f}".format, na_rep="")
    load = ", ".join(f"{x:.2f}" for x in m["load_average"])
    return (
        f"machine: {m['cpu']}, {m['cores_available']} cores available, {m['torch_threads']} "
        f"torch threads, load average before the run {load}\nconfig: depths={c['depths']} upsample="
        f"{c['upsample']} batch_size={c['batch_size']} channels_last={c['channels_last']} "
        f"noise_std={c['noise_std']} data={c['source']}\n{precision_line(res)}\n"
        f"images/s (training: {res['steps']} steps x {res['repeats']} interleaved rounds; "
        f"inference: batch 1000, eval mode, fp32)\n{table}\n{roof_line(res)}\n"
        f"validation at {res['precision_used']} (mean over a picture cycle of "
        f"{len(res['validation_seconds_runs'])}): "
        f"{res['validation_seconds']:.3f} s = "
        f"{res['validation_fraction_of_epoch']:.3f} of a training epoch; peak RSS "
        f"{res['peak_rss_mb']:.0f} MB; {res['seconds_to_first_step']:.2f} s from process start "
        "to the first training step"
    )
