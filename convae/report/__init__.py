"""convae-report: one sweep (or several) summarised as tables, charts and reconstructions.

Every job folder of a sweep is read: its results.json when finished, else it is listed as
unfinished, so a table never silently hides a crashed or still-running job. Jobs are grouped
by the config keys that vary across them, ``seed`` excepted, and each final metric is shown
as mean ± sample std over the seeds of a configuration.

Outputs (in ``--out``, default the first sweep folder), each written atomically:
``report.md``, ``report.csv`` (one row per job, raw values), ``report.tex`` (booktabs),
``report.png`` (bar charts with error bars), ``reconstructions.png`` (the same test digits
reconstructed by every configuration), and ``curves.png`` with ``curves.csv`` (learning
curves, mean ± std over seeds, from the event files).

The package: ``sweeps`` reads the folders, ``tables`` groups and formats, ``figures`` draws,
``curves`` reads and draws the learning curves, ``cli`` ties them into the command
(``convae.report.cli:main``, also ``python -m convae.report``). Import from those modules;
this one re-exports nothing.
"""
