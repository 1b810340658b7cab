"""convae-report: one sweep (or several) summarised as tables, charts and reconstructions.

Every job folder of a sweep is read: its results.json when finished, else it is listed as
unfinished, so a table never silently hides a crashed or still-running job. Jobs are grouped
by the config keys that vary across them, ``seed`` excepted, and each final metric is shown
as mean ± sample std over the seeds of a configuration.

Outputs (in ``--out``, default the first sweep folder), each written atomically:
``report.md``, ``report.csv`` (one row per job, raw values), ``report.tex`` (booktabs),
``report.png`` (bar charts with error bars) and ``reconstructions.png`` (the same test digits
reconstructed by every configuration).

The package: ``sweeps`` reads the folders, ``tables`` groups and formats, ``figures`` draws,
``cli`` ties them into the command. Its names are re-exported here.
"""

from __future__ import annotations

from convae.report.cli import PROG, build_report, main, markdown_report
from convae.report.figures import (
    RECON_DIGITS,
    ZOOM,
    bar_charts,
    reconstruction_rows,
    reconstructions_figure,
)
from convae.report.sweeps import (
    JOB_COLUMNS,
    RUN_COLUMNS,
    SOURCE_USED,
    Job,
    ReportError,
    expected_overrides,
    jobs_frame,
    overrides_as_values,
    read_job,
    read_sweep,
    sweep_overrides,
)
from convae.report.tables import (
    CLOSEST_TO_ZERO,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    METRIC_ORDER,
    METRIC_PREFIXES,
    SEED,
    best_mask,
    config_label,
    display_table,
    format_cell,
    metric_names,
    summarise,
    to_latex,
    to_markdown,
    varying_keys,
)

__all__ = [
    "CLOSEST_TO_ZERO",
    "HIGHER_IS_BETTER",
    "JOB_COLUMNS",
    "LOWER_IS_BETTER",
    "METRIC_ORDER",
    "METRIC_PREFIXES",
    "PROG",
    "RECON_DIGITS",
    "RUN_COLUMNS",
    "SEED",
    "SOURCE_USED",
    "ZOOM",
    "Job",
    "ReportError",
    "bar_charts",
    "best_mask",
    "build_report",
    "config_label",
    "display_table",
    "expected_overrides",
    "format_cell",
    "jobs_frame",
    "main",
    "markdown_report",
    "metric_names",
    "overrides_as_values",
    "read_job",
    "read_sweep",
    "reconstruction_rows",
    "reconstructions_figure",
    "summarise",
    "sweep_overrides",
    "to_latex",
    "to_markdown",
    "varying_keys",
]
