"""Learning curves for a report: metrics against step, one line per configuration, mean ±
sample std over its seeds, read back from each job's metrics.csv or TensorBoard events.

results.json holds final values only; how a metric got there (does a decoder's
``grid`` fall as it trains, or grow?) lives in the events.

A metrics.csv that cannot be parsed, and an event file with a damaged or truncated record,
are named in one line each (a BadFile): the curves use what could be read (the event files
in place of a bad metrics.csv; the records of an event file that pass their checksums, up
to a damaged record header or the cut where the file ends short).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from convae.report.figures import fit_texts, new_figure, png
from convae.report.panels import COLUMN_IN, FONT, PAGE_IN
from convae.report.sweeps import BadFile, one_line

CSV_NAME = "metrics.csv"  # Lightning's CSVLogger, in the run folder
CURVE_COLUMNS = ["configuration", "tag", "step", "mean", "std", "n"]
Scalars = dict[str, dict[int, float]]


def job_scalars(
    folder: Path, tags: Sequence[str], bad_files: list[BadFile] | None = None
) -> Scalars:
    """``{tag: {step: value}}`` of a job: from its metrics.csv (logger=csv or
    tensorboard_csv) when there and readable, else from its TensorBoard event files. A step
    logged twice (a resumed run replaying steps) keeps its last value, as TensorBoard draws
    it. Each file that cannot be read (or only partly) is added to ``bad_files``."""
    bad_files = [] if bad_files is None else bad_files
    csv = folder / CSV_NAME
    if csv.is_file():
        try:
            return _csv_scalars(csv, tags)
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as err:
            events = bool(_event_files(folder))
            then = "curves from its event files instead" if events else "left out of the curves"
            bad_files.append(BadFile(csv, f"{_csv_problem(csv, err)}; {then}"))
    return _event_scalars(folder, tags, bad_files)


def _csv_scalars(path: Path, tags: Sequence[str]) -> Scalars:
    """Lightning's CSV: a ``step`` column and one per tag, empty where a row did not log it."""
    frame = pd.read_csv(path)
    if "step" not in frame:
        raise KeyError("step")
    out = {}
    for tag in tags:
        if tag in frame:
            rows = frame[["step", tag]].dropna()
            out[tag] = dict(zip(rows["step"].astype(int), rows[tag].astype(float), strict=True))
    return out


def _csv_problem(path: Path, err: BaseException) -> str:
    if isinstance(err, pd.errors.EmptyDataError) or (path.is_file() and not path.stat().st_size):
        return "empty file"
    if isinstance(err, KeyError):
        return f"no {err.args[0]} column" if err.args else "a column is missing"
    if isinstance(err, UnicodeDecodeError):
        return f"not text (byte {err.start} is not UTF-8)"
    return f"unreadable ({one_line(err)})"


def _event_files(folder: Path) -> list[Path]:
    """The folder's event files in the order TensorBoard reads them (by name)."""
    try:
        return sorted(p for p in folder.iterdir() if "tfevents" in p.name and p.is_file())
    except OSError:
        return []


def _event_scalars(folder: Path, tags: Sequence[str], bad_files: list[BadFile]) -> Scalars:
    """The scalars of ``tags`` in the folder's event files, as TensorBoard's
    EventAccumulator reads them (files by name, ``simple_value`` summaries, the last value
    of a step; its purge on a SessionLog.START, which Lightning's writer never logs, aside),
    but a damaged file is named, where TensorBoard stops reading it without a word."""
    wanted = set(tags)
    out: Scalars = {}
    for path in _event_files(folder):
        problems: list[str] = []
        for data in _records(path, problems):
            try:
                event = event_pb2.Event.FromString(data)
            except DecodeError:
                problems.append("a record that is not an event left out")
                continue
            for value in event.summary.value:
                if value.tag in wanted and value.HasField("simple_value"):
                    out.setdefault(value.tag, {})[event.step] = value.simple_value
        if problems:
            bad_files.append(BadFile(path, "; ".join(dict.fromkeys(problems))))
    return {t: out[t] for t in tags if t in out}


_U64, _U32 = struct.Struct("<Q"), struct.Struct("<I")


def _records(path: Path, problems: list[str]) -> Iterator[bytes]:
    """The records of a TFRecord file (an event file): u64 length, u32 masked CRC-32C of
    the length, the data, u32 masked CRC-32C of the data. A record whose data fails its
    check is skipped; a damaged length or a truncated record ends the file. What went
    wrong is appended to ``problems``."""
    skipped = 0
    try:
        with path.open("rb") as f:
            while True:
                offset = f.tell()
                header = f.read(12)
                if not header:
                    break
                if len(header) < 12:
                    problems.append(f"cut short at byte {offset} (a partial record, left out)")
                    break
                if masked_crc32c(header[:8]) != _U32.unpack(header[8:])[0]:
                    problems.append(f"damaged at byte {offset}: the rest of the file is left out")
                    break
                (length,) = _U64.unpack(header[:8])
                data, crc = f.read(length), f.read(4)
                if len(data) < length or len(crc) < 4:
                    problems.append(f"cut short at byte {offset} (a partial record, left out)")
                    break
                if masked_crc32c(data) != _U32.unpack(crc)[0]:
                    skipped += 1
                    continue
                yield data
    except OSError as err:
        problems.append(f"unreadable: {one_line(err)}")
    if skipped:
        records = f"{skipped} damaged record{'s' if skipped > 1 else ''}"
        problems.insert(0, f"{records} (failed checksum) left out")


def curves_frame(
    summary: pd.DataFrame, tags: Sequence[str], bad_files: list[BadFile] | None = None
) -> pd.DataFrame:
    """One row per configuration, tag and step: mean, sample std (ddof=1) and n, the number
    of the configuration's jobs that logged that step. Files that cannot be read are added
    to ``bad_files``."""
    rows = []
    for _, config in summary.iterrows():
        per_job = [job_scalars(Path(p), tags, bad_files) for p in config["_paths"]]
        for tag in tags:
            series = [job[tag] for job in per_job if tag in job]
            for step in sorted({s for values in series for s in values}):
                values = [v[step] for v in series if step in v]
                std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
                rows.append([config["configuration"], tag, step, float(np.mean(values)), std,
                             len(values)])  # fmt: skip
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def curves_figure(
    curves: pd.DataFrame,
    tags: Sequence[str],
    groups: Mapping[str, tuple[str, str]] | None = None,
) -> bytes:
    """curves.png: curves_plot at 200 dpi."""
    return png(curves_plot(curves, tags, groups), dpi=200)


def curves_plot(
    curves: pd.DataFrame,
    tags: Sequence[str],
    groups: Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """A row of panels per tag (sharing its y axis) and a column per panel value; in each, a
    line per colour value with a ± std band. ``groups`` maps a configuration to its (colour,
    panel) short labels (convae.report.panels); without it every configuration is a line of
    one panel.
    Scores spanning more than a factor of 5 (the checkerboard scores, a loss from its start)
    get a log axis, where the band is left out below zero."""
    groups = groups or {c: (c, "") for c in curves["configuration"].unique()}
    panels = list(dict.fromkeys(p for _, p in groups.values())) or [""]
    colours = list(dict.fromkeys(c for c, _ in groups.values()))
    rows = max(1, len(tags))
    fig = new_figure(min(PAGE_IN, max(COLUMN_IN, 0.6 + 1.9 * len(panels))), 1.0 + 1.6 * rows)
    axes = fig.subplots(rows, len(panels), squeeze=False, sharex=True, sharey="row")
    for r, tag in enumerate(tags):
        part = curves[curves["tag"] == tag]
        positive = len(part) and (part["mean"] > 0).all()
        log = bool(positive and part["mean"].max() / part["mean"].min() > 5)
        for config, line in part.groupby("configuration", sort=False):
            colour, panel = groups.get(config, (config, ""))
            ax = axes[r, panels.index(panel) if panel in panels else 0]
            mean, std = line["mean"].to_numpy(), np.nan_to_num(line["std"].to_numpy())
            low = np.where(mean - std > 0, mean - std, np.nan) if log else mean - std
            c = f"C{colours.index(colour) % 10}" if colour in colours else None
            ax.plot(line["step"], mean, color=c, linewidth=0.9)
            ax.fill_between(line["step"], low, mean + std, alpha=0.2, linewidth=0, color=c)
        for ax in axes[r]:
            if log:
                ax.set_yscale("log")
            ax.tick_params(which="both", labelsize=FONT - 1, length=2, pad=1)
            ax.grid(alpha=0.3, linewidth=0.5)
        axes[r, 0].set_ylabel(tag if len(part) else f"{tag}\n(not logged)", fontsize=FONT)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=FONT)
    legend, ncols = None, 1
    if len(curves) and any(colours):
        handles = [Line2D([], [], color=f"C{k % 10}", label=v) for k, v in enumerate(colours)]
        ncols = min(3, len(colours))
        legend = fig.legend(handles=handles, loc="outside upper center", ncols=ncols,
                            fontsize=FONT, frameon=False, title="mean ± sample std over seeds",
                            title_fontsize=FONT)  # fmt: skip
    fit_texts(fig, list(zip(axes[0], panels, strict=True)), FONT, legend, ncols)
    return fig
