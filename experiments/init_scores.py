"""Step-0 (untrained) validation scores of every job in a sweep, mean ± std over seeds.

convae-report tables the final metrics; the values at initialisation live in each job's
TensorBoard events (the step-0 validation), which this reads back.
    python experiments/init_scores.py <sweep folder> [--out FILE.md]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TAGS = ("val/loss", "val/cb2_incoh", "val/cb4_incoh", "val/cb2_ratio", "val/hf_tail_db")


def step0(job: Path) -> dict[str, float]:
    acc = EventAccumulator(str(job), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag)[0].value for tag in TAGS if tag in acc.Tags()["scalars"]}


def table(sweep: Path) -> pd.DataFrame:
    rows = []
    for job in sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")):
        config = re.sub(r"(^|,)seed=\d+", "", job.name).strip(",")
        rows.append({"configuration": config, **step0(job)})
    frame = pd.DataFrame(rows)
    grouped = frame.groupby("configuration")
    mean, std = grouped.mean(), grouped.std()
    return mean.combine(std, lambda m, s: m.map("{:.3g}".format) + " ± " + s.map("{:.2g}".format))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = table(args.sweep).reset_index().to_csv(sep="|", index=False)
    lines = [f"|{line}|" for line in text.strip().splitlines()]
    lines.insert(1, "|" + "---|" * (lines[0].count("|") - 1))
    md = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
