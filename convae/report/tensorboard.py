"""convae-report's figures as TensorBoard images, in a ``report`` run of each sweep folder:
``convae-board <sweep>`` shows them in the IMAGES tab beside the jobs' own pictures.

The PNG files go in as they are (an image summary holds encoded PNG; nothing is decoded
or drawn again). The run holds one event file, replaced whole by each report
(convae/tracking/events.py): a report made again shows its figures once, the new ones.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary

from convae.tracking.events import replace_events

RUN = "report"  # the run's folder, inside the sweep folder
SUFFIX = ".convae-report"
# report file -> image tag
FIGURES = {
    "report.png": "report/metrics",
    "reconstructions.png": "report/reconstructions",
    "curves.png": "report/curves",
    "spectra.png": "report/spectra",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header (its IHDR chunk, always first)."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def image_summary(tag: str, png: bytes) -> Summary:
    width, height = png_size(png)
    image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def write_report_images(sweeps: Sequence[Path], outputs: Mapping[str, str | bytes]) -> list[Path]:
    """The report's figures among ``outputs`` (file name -> contents) as images of the
    ``report`` run of every sweep in ``sweeps``; returns the event files written. A sweep
    folder that takes no files (the report went elsewhere with --out) is one warning line:
    the report itself is written."""
    summaries = [
        image_summary(tag, data)
        for name, tag in FIGURES.items()
        if isinstance(data := outputs.get(name), bytes)
    ]
    written = []
    for sweep in sweeps if summaries else []:
        try:
            written.append(replace_events(sweep / RUN, SUFFIX, summaries))
        except OSError as err:
            why = err.strerror or str(err)
            print(
                f"convae-report: warning: no TensorBoard images in {sweep / RUN}: {why}",
                file=sys.stderr,
            )
    return written
