"""The convae-report command line. It answers ``--help`` and usage errors before pandas,
matplotlib or torch are imported: the report's work (convae/report/build.py) is imported
once the arguments are read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convae.metrics.catalogue import DEFAULT_CURVES

if TYPE_CHECKING:
    from convae.report.sweeps import BadFile

PROG = "convae-report"
NO_JOB_COMPLETED = 1  # the exit status when there is nothing to tabulate; 2: a usage error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Summarise convae-train sweeps: mean ± std over seeds per configuration.",
    )
    parser.add_argument(
        "sweeps", nargs="+", type=Path, help="sweep folder(s): outputs/multirun/<date>/<time>"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: the first sweep)")
    parser.add_argument(
        "--metrics",
        action="extend",
        type=lambda text: [m for m in text.split(",") if m],
        metavar="M[,M...]",
        help="metric columns to show, in this order; globs allowed, e.g. 'test/*,val/loss'; "
        "'all': every val/*, test/* and test_clean/* metric (default: test loss, psnr, ssim, "
        "grid, cb2_incoh, hf_tail_db)",
    )
    parser.add_argument(
        "--curves",
        action="extend",
        type=lambda text: [t for t in text.split(",") if t],
        metavar="TAG[,TAG...]",
        help=f"scalar tags drawn against step in curves.png (default: {','.join(DEFAULT_CURVES)})",
    )
    args = parser.parse_args(argv)
    from convae.report.build import Report, ReportError, build_report

    out = args.out or args.sweeps[0]
    report = Report()
    try:
        build_report(args.sweeps, out, args.metrics, args.curves or DEFAULT_CURVES, report)
    except ReportError as err:
        _warn(report.bad_files)
        failed = (
            f"no job completed ({report.tally()}); "
            if report.counts and not report.completed
            else ""
        )
        print(f"{PROG}: error: {failed}{' '.join(str(err).split())}", file=sys.stderr)
        return 2
    _warn(report.bad_files)
    if not report.completed:
        print(
            f"{PROG}: error: no job completed ({report.tally()}); listed them in "
            f"{out / 'report.md'} and {out / 'report.csv'}",
            file=sys.stderr,
        )
        return NO_JOB_COMPLETED
    print(f"{PROG}: wrote {', '.join(str(p) for p in report.paths)}")
    return 0


def _warn(bad_files: Sequence[BadFile]) -> None:
    for bad in bad_files:
        print(f"{PROG}: warning: {bad.line()}", file=sys.stderr)
