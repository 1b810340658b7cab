"""Images/s of a whole local sweep under each launcher set-up, one after the other.

The same 4-job sweep (the tutorial's autoencoder, seeds 0-3, a fixed step budget, default
precision) is run with Hydra's basic launcher (one job at a time, every core), with joblib
at one job per core, and with joblib at more jobs than cores. Images/s = training images
of all jobs / the sweep's wall time, start-up and validation included: what a researcher
waits for.
    python experiments/launchers/measure.py [--steps 300] [--out experiments/launchers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CORES = len(os.sched_getaffinity(0))
JOBS = 4
WAYS = {  # name -> (launcher overrides, what it means)
    "basic": ([], f"one job at a time, {CORES} threads"),
    "joblib": (["hydra/launcher=joblib"], f"{CORES} jobs x 1 thread"),
    "joblib_oversubscribed": (
        ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={JOBS}"],
        f"{JOBS} jobs x 1 thread on {CORES} cores",
    ),
}


def run_sweep(name: str, launcher: list[str], steps: int, root: Path) -> dict:
    sweep = root / name
    args = [
        "-m", "experiment=seed_autoencoder", "data.source=bundled",
        f"trainer.max_steps={steps}", "trainer.max_epochs=1000", "test=false",
        "trainer.enable_progress_bar=false", f"seed={','.join(map(str, range(JOBS)))}",
        f"hydra.sweep.dir={sweep}", *launcher,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run([str(BIN / "convae-train"), *args], check=True, capture_output=True, cwd=root)
    wall = time.perf_counter() - start
    jobs = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert len(jobs) == JOBS and all(j["status"] == "completed" for j in jobs), jobs
    images = sum(j["global_step"] * j["config"]["data"]["batch_size"] for j in jobs)
    return {"wall_s": wall, "images": images, "images_per_s": images / wall,
            "precision": jobs[0].get("precision")}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = p.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="convae-launchers-") as tmp:
        for name, (launcher, meaning) in WAYS.items():
            rows[name] = {**run_sweep(name, launcher, args.steps, Path(tmp)), "set_up": meaning}
            print(f"{name:24s} {rows[name]['images_per_s']:8.0f} images/s "
                  f"({rows[name]['wall_s']:.1f} s, {meaning})", flush=True)  # fmt: skip
    base = rows["basic"]["images_per_s"]
    for row in rows.values():
        row["vs_basic"] = row["images_per_s"] / base
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"cores": CORES, "jobs": JOBS, "steps": args.steps, "ways": rows}
    (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
