"""The CUSTOM SCALARS tab: the curves a comparison needs, grouped, each chart one metric of
every split.

TensorBoard's custom_scalars plugin merges the layouts of every run it finds (charts of
the same category joined, duplicates dropped), so each run writes it (the same one), and a
single run, a sweep and several sweeps opened together all get it. Charts name their tags
by regular expression: the grid periods (``grid_p2`` ... ``grid_p<2^stages>``) depend on the
model and need no list here. Plain tensorboard protos, no torch (convae/tracking/events.py).
"""

from __future__ import annotations

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars

SPLITS = "(val|test|test_clean)"
# category -> [(chart title, tag regexes)]
LAYOUT: dict[str, list[tuple[str, list[str]]]] = {
    "loss": [("loss: train, val, test", [r"^(train|val|test|test_clean)/loss$"])],
    "reconstruction quality": [
        ("PSNR (dB, higher is better)", [rf"^{SPLITS}/psnr$"]),
        ("SSIM (higher is better)", [rf"^{SPLITS}/ssim$"]),
    ],
    "artifact scores": [
        ("grid (lower is better)", [rf"^{SPLITS}/grid$", r"^latent/grid_\w+$"]),
        ("grid by period", [r"^val/grid_p\d+$"]),
        ("cb2_incoh", [rf"^{SPLITS}/cb2_incoh$"]),
        ("cb4_incoh", [rf"^{SPLITS}/cb4_incoh$"]),
        ("cb2_ratio", [rf"^{SPLITS}/cb2_ratio$", r"^latent/cb2_ratio_\w+$"]),
        ("hf_tail_db (0 is right)", [rf"^{SPLITS}/hf_tail_db$"]),
    ],
}


def layout_summary() -> Summary:
    """LAYOUT as the summary the custom_scalars plugin reads (its config tag)."""
    layout = layout_pb2.Layout(
        category=[
            layout_pb2.Category(
                title=title,
                chart=[
                    layout_pb2.Chart(
                        title=name, multiline=layout_pb2.MultilineChartContent(tag=tags)
                    )
                    for name, tags in charts
                ],
            )
            for title, charts in LAYOUT.items()
        ]
    )
    tensor = TensorProto(
        dtype="DT_STRING", string_val=[layout.SerializeToString()], tensor_shape=TensorShapeProto()
    )
    return Summary(
        value=[
            Summary.Value(
                tag=custom_scalars.CONFIG_SUMMARY_TAG,
                metadata=custom_scalars.create_summary_metadata(),
                tensor=tensor,
            )
        ]
    )
