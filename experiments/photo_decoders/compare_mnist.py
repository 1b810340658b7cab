"""The six decoders on photographs beside the same six on MNIST digits, and how clearly each
metric separates them: prints markdown (README.md's comparison tables).

    python experiments/photo_decoders/compare_mnist.py > experiments/photo_decoders/mnist.md

Both runs: the 16-8-8 encoder, clean inputs, 1,000 steps, batch 200, 3 seeds. MNIST rows
come from experiments/decoder_ablation/report.csv (one row per job).

Separation of a metric: one-way ANOVA over the six decoders (3 seeds each), F = the
variance of the decoder means times the seeds per decoder, over the pooled seed variance;
about 1 when the decoders differ no more than seeds do, larger the more clearly the metric
tells them apart; and its p-value (scipy.stats.f_oneway).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent / "decoder_ablation" / "report.csv"
PHOTOS = HERE / "report.csv"
METRICS = ("test/loss", "test/psnr", "test/ssim", "test/cb2_incoh", "test/cb2_ratio",
           "test/hf_tail_db")  # fmt: skip
ORDER = ("nearest", "bilinear", "transposed k3", "transposed k4", "pixel shuffle",
         "pixel shuffle + ICNR")  # fmt: skip


def decoder(row: pd.Series) -> str:
    up = row["model.upsample"]
    if up == "transposed":
        return f"transposed k{int(row['model.transposed_kernel_size'])}"
    if up == "pixel_shuffle":
        return "pixel shuffle + ICNR" if bool(row["model.icnr"]) else "pixel shuffle"
    return str(up)


def load(path: Path, mnist: bool) -> pd.DataFrame:
    jobs = pd.read_csv(path)
    jobs = jobs[jobs["status"] == "completed"]
    if mnist:  # the ablation's clean 16-8-8 jobs
        jobs = jobs[(jobs["data.noise_std"] == 0.0) & (jobs["model.depths"] == "[16, 8, 8]")]
    jobs = jobs.assign(decoder=jobs.apply(decoder, axis=1))
    assert set(jobs["decoder"]) == set(ORDER), sorted(set(jobs["decoder"]))
    return jobs


def cell(values: pd.Series) -> str:
    return f"{values.mean():.4g} ± {values.std(ddof=1):.2g}"


def separation(jobs: pd.DataFrame, metric: str) -> str:
    """ "F (p)" of the one-way ANOVA of ``metric`` over the decoders."""
    from scipy.stats import f_oneway

    result = f_oneway(*(g.to_numpy() for _, g in jobs.groupby("decoder")[metric]))
    return f"{result.statistic:.1f} (p = {result.pvalue:.2g})"


def main() -> None:
    runs = {"photos": load(PHOTOS, mnist=False), "MNIST": load(MNIST, mnist=True)}
    print("Mean ± std over 3 seeds, test split; photos = 32x32 RGB patches, MNIST = bundled")
    print("digits. Same encoder (16-8-8), steps (1,000), batch (200), clean inputs.\n")
    for metric in METRICS:
        print(f"**{metric}**\n\n| decoder | photos | MNIST |\n|---|---|---|")
        for name in ORDER:
            cells = [cell(j.loc[j["decoder"] == name, metric]) for j in runs.values()]
            print(f"| {name} | {' | '.join(cells)} |")
        print()
    print("**Separation**: one-way ANOVA over the six decoders, F (p); F ~ 1: no more than seeds")
    print("\n| metric | photos | MNIST |\n|---|---|---|")
    for metric in METRICS:
        values = [separation(j, metric) for j in runs.values()]
        print(f"| {metric} | {' | '.join(values)} |")


if __name__ == "__main__":
    main()
