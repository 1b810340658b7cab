"""Event files convae writes outside a run's SummaryWriter: the sweep's HPARAMS experiment
and custom-scalars layout (convae/sweeps/tensorboard.py) and the report's figures
(convae/report/tensorboard.py).

Plain tensorboard protos, no torch: the sweep's record is written by the process that
starts the sweep, which has not imported torch. Each kind of file carries its own suffix
and is replaced whole when written again: TensorBoard reads every event file of a folder,
so an older one left beside it would show a stale record or a second set of pictures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

EVENT_FILES = "events.out.tfevents.*"


def replace_events(folder: Path, suffix: str, summaries: Sequence[Summary], step: int = 0) -> Path:
    """Writes ``summaries`` at ``step`` into a new event file ending in ``suffix`` in
    ``folder``, then removes the older files with that suffix; returns the new file. The new
    file is complete before the old ones go, so a reader never sees neither."""
    folder.mkdir(parents=True, exist_ok=True)
    older = list(folder.glob(EVENT_FILES + suffix))
    writer = EventFileWriter(str(folder), filename_suffix=suffix)
    try:
        for summary in summaries:
            writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))
    finally:
        writer.close()
    written = sorted(set(folder.glob(EVENT_FILES + suffix)) - set(older))
    for path in older:
        path.unlink(missing_ok=True)
    return written[-1]
