"""Calibration table of the grid scores (convae/metrics/grid.py): what 1e-3 means.

Known lattice patterns (tests/unit/metrics/test_grid_calibration.py: constant checker,
per-phase gain as pixel shuffle makes, transposed-conv overlap; periods 2, 4, 8) go into
artifact-free reconstructions of real images (blurred, sigma 0.6): 500 MNIST digits and
1,440 grey 32 x 32 patches of scikit-image's photographs, the tests' own sets. Printed, and
written as markdown: amplitude -> score per kind and period, the artifact-free baselines
(with a bootstrap sd and on the real validation splits), blur / contrast / sharpening, the
old target-based scores (clean image as target) on the same images, definitions compared on
the tests' checks, and the cost per 1,000 images.
    python experiments/grid_calibration.py experiments/grid_calibration.md
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_grid_calibration as cal  # tests/ holds the patterns and the checks

from convae.data.datamodule import ImageDataModule
from convae.data.photos import load_photos
from convae.data.sources import load_bundled
from convae.metrics import grid
from convae.metrics.checkerboard import checkerboard_scores

AMPS = (0.0, *cal.AMPLITUDES)
READING = """\
How to read it. `grid_pP` is the RMS amplitude, in [0, 1] intensity units, of the output's
part that repeats with period P on the decoder's lattice (new at P: a period-2 grid does not
count again at 4 and 8); `grid` is their sum. Amplitudes below are RMS
deviations: a +-a additive checker, or a per-phase gain of RMS a (then the score is about
a x RMS(image): 0.4 on these digits, 0.48 on these patches). So `grid_pP` = 1e-3 is a +-0.1%
checker, or a ~0.25% per-phase gain, at period P.

* Photo patches (cut at random positions): every kind at every period is detected from
  0.1-0.25%; blur, contrast and sharpening stay under 5e-4, inside the 3-sd thresholds.
* Centred MNIST digits: period 2 as on photos, but at periods 4 and 8 the mean digit itself
  is a phase pattern over the 20-pixel interior (~3e-3 and ~5e-2, as large on all 5,000
  digits): there a target-free score cannot see a 0.25-1% grid, and `grid` on MNIST is
  mostly that floor. Blur lowers it and sharpening raises it, like content.
* The old scores (clean image as target): `cb2_incoh` 1e-3 is a +-1% period-2 checker on
  digits, +-1.5% on photos; it is blind to period-4 checkers (1e-20) and scores 0.25%
  period-8 checkers and 0.25% gains at periods 4 and 8 at <= 5e-8. `cb4_incoh` sees
  essentially period 4 only, `cb2_ratio` period 2 only.""".splitlines()
OLD = ("cb2_incoh", "cb4_incoh", "cb2_ratio")


def fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.2e}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def datasets() -> dict[str, torch.Tensor]:
    digits = load_bundled().images[::10].double() / 255.0
    photos = load_photos(patch_size=32, counts=(1440, 1, 1), grayscale=True, seed=0).images
    return {
        "MNIST digits (500, 1 x 28 x 28)": cal.gaussian_blur(digits, 0.6),
        "photo patches (1,440, grey 32 x 32)": cal.gaussian_blur(photos.double() / 255.0, 0.6),
    }


def amplitude_rows(x: torch.Tensor, score: Callable[[torch.Tensor, int], str]) -> list[list[str]]:
    return [
        [kind, str(p), *(score(cal.inject(x, kind, p, a), p) for a in AMPS)]
        for kind in cal.KINDS
        for p in cal.PERIODS
    ]


def grid_section(name: str, x: torch.Tensor) -> list[str]:
    out = [f"### {name}", "", "`grid_pP` at the pattern's own period (amplitude 0 = baseline):", ""]
    out += table(
        ["kind", "P", *(f"{a:.2%}" for a in AMPS)],
        amplitude_rows(x, lambda y, p: fmt(cal.grid_at(y, p))),
    )
    rows = []
    for p in cal.PERIODS:
        base, sd = cal.grid_at(x, p), cal.bootstrap_sd(cal.grid_at, x, p)
        filt = [fmt(cal.grid_at(f(x), p)) for f in cal.FILTERS.values()]
        rows.append([str(p), fmt(base), fmt(sd), fmt(base + 3 * sd), *filt])
    out += ["", "Artifact-free baseline, its bootstrap sd (30 resamples), the detection threshold",
            "(+3 sd) and the filtered artifact-free images:", ""]  # fmt: skip
    out += table(["P", "baseline", "sd", "threshold", *cal.FILTERS], rows)
    out += ["", "Old scores (clean image as target) on the same images:", ""]
    old = {
        (kind, p, a): checkerboard_scores(cal.inject(x, kind, p, a), x)
        for kind in cal.KINDS
        for p in cal.PERIODS
        for a in AMPS
    }
    for key in OLD:
        rows = [
            [kind, str(p), *(fmt(old[kind, p, a][key]) for a in AMPS)]
            for kind in cal.KINDS
            for p in cal.PERIODS
        ]
        out += [f"`{key}`:", "", *table(["kind", "P", *(f"{a:.2%}" for a in AMPS)], rows), ""]
    return out


def split_baselines() -> list[str]:
    rows = []
    sets = {
        "MNIST bundled val split (500), as loaded": ImageDataModule(source="bundled"),
        "photos val split (2,000 colour 32 x 32), as loaded": ImageDataModule(
            source="photos", image_size=32, photo_patches=(1, 2000, 1)
        ),
    }
    for name, dm in sets.items():
        dm.setup()
        x = dm.val_set.images.double() / 255.0
        for label, y in (("raw", x), ("blurred 0.6", cal.gaussian_blur(x, 0.6))):
            s = grid.grid_scores(y, cal.PERIODS)
            rows.append([name, label, *(fmt(v) for v in s.values())])
    return table(["images", "", *grid.grid_names(cal.PERIODS)], rows)


def at_the_mean(x: torch.Tensor, p: int) -> float:
    """The issue's wording: the per-phase response at the mean intensity, one estimate."""
    stats = grid.grid_statistics(x, p, grid.grid_border(cal.PERIODS)).sum(0)
    mu1 = stats[..., 1].sum() / stats[..., 0].sum()
    a, b = grid._deviations(stats)
    return (a + b * mu1).square().mean().sqrt().item()


def not_debiased(x: torch.Tensor, p: int) -> float:
    stats = grid.grid_statistics(x, p, grid.grid_border(cal.PERIODS))
    return grid.scores_from_statistics(stats, debias=False).clamp_min(0).sqrt().item()


def variants(data: dict[str, torch.Tensor]) -> list[str]:
    """Each definition on the tests' checks, with its artifact-free floor and what a 0.25%
    gain pattern scores: the floor is what a definition adds to every model's score."""
    scores = {
        "**grid** (RMS over intensities, two halves)": cal.grid_at,
        "same, one estimate (not debiased)": not_debiased,
        "response at the mean intensity, one estimate (the issue's wording)": at_the_mean,
        "broken: per-phase means, no fit": cal.phase_means_only,
        "broken: outer 4-pixel ring only": cal.border_only,
    }
    digits, photos = data.values()
    rows = []
    for label, fn in scores.items():
        failed = cal.calibration_failures(fn, digits, (2,))
        failed += cal.calibration_failures(fn, photos, cal.PERIODS)
        floors = [fmt(fn(digits, 2)), *(fmt(fn(photos, p)) for p in cal.PERIODS)]
        gains = [fmt(fn(cal.inject(digits, "gain", 2, 0.0025), 2)),
                 fmt(fn(cal.inject(photos, "gain", 8, 0.0025), 8))]  # fmt: skip
        rows.append([label, *floors, *gains, "; ".join(failed) or "none"])
    header = ["score", "digits floor P2", "photos floor P2", "P4", "P8",
              "digits 0.25% gain P2", "photos 0.25% gain P8", "failed checks"]  # fmt: skip
    return table(header, rows)


def untrained_decoders() -> list[str]:
    """Randomly initialised 3-stage models (seeds 0, 1; mean): outputs near 0.5 with little
    content, so their lattice patterns stand alone (val patches and digits)."""
    from convae.models import ConvAutoencoder

    photos = load_photos(patch_size=32, counts=(1, 500, 1), grayscale=False, seed=0)
    sets = {"photos": photos.val_images, "digits": load_bundled().images[::10]}
    rows, keys = [], [*grid.grid_names(cal.PERIODS), "cb2_incoh", "cb2_ratio"]
    for decoder in ("nearest", "bilinear", "transposed", "pixel_shuffle", "pixel_shuffle+icnr"):
        for name, images in sets.items():
            x = images.float() / 255.0
            runs = []
            for seed in (0, 1):
                torch.manual_seed(seed)
                model = ConvAutoencoder(
                    depths=[16, 8, 8], upsample=decoder.split("+")[0], icnr="icnr" in decoder,
                    in_channels=x.shape[1], image_size=x.shape[-1],
                ).eval()  # fmt: skip
                with torch.no_grad():
                    y = torch.sigmoid(model(x))
                runs.append({**grid.grid_scores(y, cal.PERIODS), **checkerboard_scores(y, x)})
            rows.append([decoder, name, *(fmt(sum(r[k] for r in runs) / 2) for k in keys)])
    return table(["decoder", "images", *keys], rows)


def timing() -> list[str]:
    rows = []
    for shape in ((2000, 1, 28, 28), (2000, 3, 32, 32)):
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        metric = grid.GridScore(cal.PERIODS)

        def run(x=x, metric=metric) -> None:
            metric.reset()
            for batch in x.split(500):
                metric.update(batch)
            metric.compute()

        def old(x=x) -> None:
            checkerboard_scores(x[:500], x[:500])

        best = [min(seconds(f) for _ in range(5)) for f in (run, old)]
        rows.append(["x".join(map(str, shape[1:])), f"{best[0] * 1000 / 2:.0f}",
                     f"{best[1] * 1000 / 0.5:.0f}"])  # fmt: skip
    return table(["image", "GridScore, ms / 1,000", "checkerboard_scores, ms / 1,000"], rows)


def seconds(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", help="markdown file to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = datasets()
    lines = ["# Grid score calibration", "", "Written by `python experiments/grid_calibration.py "
             "experiments/grid_calibration.md` (CPU, one thread).", "", *READING, ""]  # fmt: skip
    lines += ["## Calibration: amplitude -> score", ""]
    for name, x in data.items():
        lines += [*grid_section(name, x), ""]
    lines += ["## Baselines on the validation splits", "", *split_baselines(), ""]
    lines += ["## Untrained decoders (random init, mean of seeds 0 and 1)", ""]
    lines += [*untrained_decoders(), ""]
    lines += ["## Definitions compared on the same checks", ""]
    lines += [*variants(data), ""]
    lines += ["## Cost (CPU, one thread; batches of 500)", "", *timing(), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
