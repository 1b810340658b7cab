"""convae-report: one sweep (or several) summarised as tables, charts and reconstructions.

Every job folder of a sweep is read: its results.json when finished, else it is listed as
unfinished, so a table never silently hides a crashed or still-running job. Jobs are grouped
by the config keys that vary across them, ``seed`` excepted, and each final metric is shown
as mean ± sample std over the seeds of a configuration.

A partial sweep gets a report of what completed; the other jobs are listed by state
(failed, interrupted, unfinished, unreadable, not started), and every file that cannot be
read (a results.json, metrics.csv or event file) is named in one line, on stderr and in
report.md. With no job completed, report.md and report.csv list the jobs and the command
exits 1; an output folder that takes no files is one line, exit 2, and nothing is replaced.

Outputs (in ``--out``, default the first sweep folder), each written atomically:
``report.md``, ``report.csv`` (one row per job, raw values), ``report.tex`` (booktabs),
``report.png`` (bar charts with error bars), ``reconstructions.png`` (the same test digits
reconstructed by every configuration), and ``curves.png`` with ``curves.csv`` (learning
curves, mean ± std over seeds, from metrics.csv or the event files). All are written in full
under temporary names, then renamed.

The package: ``sweeps`` reads the folders, ``tables`` groups and formats, ``figures`` draws,
``curves`` reads and draws the learning curves, ``build`` ties them into the report, and
``cli`` is the command line (``convae.report.cli:main``, also ``python -m convae.report``),
which imports the rest only once its arguments are read. Import from those modules;
this one re-exports nothing.
"""
