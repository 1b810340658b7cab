"""The event files convae writes outside a run's SummaryWriter, read back with
TensorBoard's EventAccumulator: the sweep's experiment record (which columns, in which
order), a file replaced whole, and the report's PNGs as images."""

from __future__ import annotations

import io

from helpers import events
from matplotlib.figure import Figure
from tensorboard.plugins.hparams import api_pb2, metadata

from convae.report.tensorboard import png_size, write_report_images
from convae.sweeps.tensorboard import swept_keys
from convae.tracking.events import replace_events
from convae.tracking.experiment import experiment_summary, metric_order

JOBS = [
    {"seed": s, "model.upsample": u, "model.depths": "[16, 8, 8]", "data.source": "bundled"}
    for u in ("transposed", "nearest")
    for s in (1, 0)
]


def written_experiment(tmp_path, *args, **kwargs) -> api_pb2.Experiment:
    summary = experiment_summary(*args, **kwargs)
    replace_events(tmp_path, ".test", [summary])
    content = events(tmp_path).SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
    return metadata.parse_experiment_plugin_data(content)


def test_swept_keys_keep_the_command_line_order():
    line = ["data.source=bundled", "seed=0,1", "model.upsample=nearest,transposed", "seed=2,3"]
    assert swept_keys(line) == ["seed", "model.upsample"]


def test_the_record_holds_only_differing_keys_swept_first(tmp_path):
    exp = written_experiment(tmp_path, JOBS, ["model.upsample", "seed"], ["val/loss"])
    assert [h.name for h in exp.hparam_infos] == ["model.upsample", "seed", "params"]
    upsample, seed = exp.hparam_infos[:2]
    assert upsample.type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in upsample.domain_discrete.values] == ["nearest", "transposed"]
    assert seed.type == api_pb2.DATA_TYPE_FLOAT64
    assert [v.number_value for v in seed.domain_discrete.values] == [0.0, 1.0]
    assert all(h.differs for h in exp.hparam_infos)


def test_a_swept_group_leads_with_the_keys_it_changes(tmp_path):
    jobs = [{**job, "model.depths": f"[{job['seed']}]"} for job in JOBS]
    exp = written_experiment(tmp_path, jobs, ["model", "seed"], ["val/loss"])
    assert [h.name for h in exp.hparam_infos][:3] == ["model.upsample", "model.depths", "seed"]


def test_no_record_when_no_key_differs():
    assert experiment_summary(JOBS[:1], [], ["val/loss"]) is None


def test_the_metrics_lead_with_the_losses_then_psnr_ssim_and_grid():
    tags = ["epoch", "latent/cb2_ratio_recon", "val/grid", "test/cb2_incoh", "val/loss",
            "test/loss", "val/psnr", "test/ssim", "test/psnr", "test/grid"]  # fmt: skip
    assert metric_order(tags) == [
        "test/loss", "val/loss", "test/psnr", "test/ssim", "test/grid", "val/psnr", "val/grid",
        "epoch", "latent/cb2_ratio_recon", "test/cb2_incoh",
    ]  # fmt: skip


def figure_png(width: float) -> bytes:
    buffer = io.BytesIO()
    Figure(figsize=(width, 1)).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def test_report_figures_become_images_of_a_report_run_replaced_on_each_report(tmp_path):
    first = {"report.png": figure_png(3), "report.md": "text"}
    assert png_size(first["report.png"]) == (300, 100)
    write_report_images([tmp_path], first)
    write_report_images([tmp_path], {"report.png": figure_png(2)})
    run = tmp_path / "report"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    acc = events(run)
    assert acc.Tags()["images"] == ["report/metrics"]
    (image,) = acc.Images("report/metrics")
    assert (image.width, image.height) == (200, 100)  # the second report's figure
