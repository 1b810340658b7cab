"""What TensorBoard shows of a sweep and a run, read back from the real event files with
TensorBoard's own readers: the hparams plugin's backend (the table's columns and rows),
the custom_scalars plugin's layout tag and EventAccumulator (the pictures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import events, results, run_script, train
from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars
from tensorboard.plugins.hparams import (
    api_pb2,
    backend_context,
    get_experiment,
    list_session_groups,
    metadata,
)

BASE = ["data.source=bundled", "trainer.max_steps=3", "trainer.enable_progress_bar=false",
        "callbacks.artifact_digits=100", "threads=1"]  # fmt: skip


def hparams_backend(logdir: Path) -> tuple[backend_context.Context, context.RequestContext]:
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    tb = base_plugin.TBContext(logdir=str(logdir), data_provider=provider)
    return backend_context.Context(tb), context.RequestContext()


def experiment(logdir: Path) -> api_pb2.Experiment:
    """The experiment the HPARAMS tab gets (its /experiment route)."""
    backend, ctx = hparams_backend(logdir)
    request = api_pb2.GetExperimentRequest(include_metrics=True)
    return get_experiment.Handler(ctx, backend, "", request).run()


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A 2x2 sweep given decoder first, then seed; one fixed key (data.noise_std)."""
    cwd = tmp_path_factory.mktemp("sweep")
    run_script("convae-train", "-m", *BASE, "data.noise_std=0", "seed=1,0",
               "model.upsample=transposed,nearest", cwd=cwd)  # fmt: skip
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


def test_the_sweep_folder_holds_one_experiment_record_led_by_a_loss(sweep_dir):
    backend, ctx = hparams_backend(sweep_dir)
    with_record = [
        run
        for run, tags in backend.hparams_metadata(ctx, "").items()
        if "_hparams_/experiment" in tags
    ]
    assert with_record == ["."]  # the sweep folder itself, not a job
    metrics = [m.name.tag for m in experiment(sweep_dir).metric_infos]
    assert metrics[:2] == ["test/loss", "val/loss"]
    assert metrics[2:5] == ["test/psnr", "test/ssim", "test/grid"]


def test_the_record_lists_the_swept_keys_first_in_command_line_order(sweep_dir):
    (record,) = sweep_dir.glob("events.out.tfevents.*.convae-sweep")
    acc = events(record.parent)
    # The record as written, before the plugin re-sorts it (by differs, then name).
    content = acc.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
    written = metadata.parse_experiment_plugin_data(content)
    names = [h.name for h in written.hparam_infos]
    assert names[:2] == ["seed", "model.upsample"]
    assert all(h.differs for h in written.hparam_infos)
    shown = experiment(sweep_dir)
    assert [h.name for h in shown.hparam_infos][:3] == ["model.upsample", "params", "seed"]
    domain = shown.hparam_infos[0].domain_discrete.values
    assert [v.string_value for v in domain] == ["nearest", "transposed"]


def test_constant_keys_are_not_columns_of_the_table(sweep_dir):
    names = {h.name for h in experiment(sweep_dir).hparam_infos}
    assert "data.noise_std" not in names and "callbacks.checkpoint_monitor" not in names
    assert names == {"seed", "model.upsample", "params"}


def test_every_job_is_a_row_joined_to_the_record(sweep_dir):
    backend, ctx = hparams_backend(sweep_dir)
    shown = experiment(sweep_dir)
    request = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[0, 1, 2, 3], start_index=0, slice_size=100,
        col_params=[api_pb2.ColParams(hparam=h.name) for h in shown.hparam_infos]
        + [api_pb2.ColParams(metric=m.name) for m in shown.metric_infos[:2]],
    )  # fmt: skip
    groups = list_session_groups.Handler(ctx, backend, "", request).run().session_groups
    assert len(groups) == 4
    for group in groups:
        assert group.hparams["model.upsample"].string_value in ("nearest", "transposed")
        assert {m.name.tag for m in group.metric_values} >= {"test/loss", "val/loss"}


def test_the_sweep_and_each_run_carry_the_custom_scalars_layout(sweep_dir):
    runs = [sweep_dir, *(p for p in sweep_dir.iterdir() if p.is_dir())]
    for run in runs:
        acc = events(run)
        assert custom_scalars.CONFIG_SUMMARY_TAG in acc.Tags()["tensors"], run
    (point,) = events(sweep_dir).Tensors(custom_scalars.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(point.tensor_proto.string_val[0])
    titles = [c.title for c in layout.category]
    assert titles == ["loss", "reconstruction quality", "artifact scores"]


def test_the_report_writes_its_figures_into_a_report_run_once(sweep_dir):
    for _ in range(2):  # made again: the run still holds one set of figures
        run_script("convae-report", str(sweep_dir), cwd=sweep_dir.parent)
    run = sweep_dir / "report"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    acc = events(run)
    assert set(acc.Tags()["images"]) >= {"report/metrics", "report/reconstructions"}
    for tag in acc.Tags()["images"]:
        assert len(acc.Images(tag)) == 1


def test_a_run_pictures_its_first_middle_and_last_validation(tmp_path):
    # 8 steps, a validation after each: step 0, the middle (step 4) and the last (step 8)
    _, run = train(tmp_path, "trainer.max_steps=8", "+trainer.val_check_interval=1",
                   "callbacks.artifact_digits=50", "callbacks.latent_space=false")  # fmt: skip
    acc = events(run)
    validations = sorted({e.step for e in acc.Scalars("val/loss")})
    pictured = [e.step for e in acc.Images("artifacts/zoomed")]
    assert validations[0] in pictured and validations[-1] in pictured
    assert any(3 <= step <= 4 for step in pictured)  # the middle validation's step


def test_a_run_stopped_early_pictures_its_last_validation(tmp_path):
    # mode max on a mostly falling val/loss: early stopping ends it before max_steps
    _, run = train(tmp_path, "trainer.max_steps=50", "+trainer.val_check_interval=1",
                   "callbacks.early_stopping_patience=1", "callbacks.checkpoint_mode=max",
                   "callbacks.artifact_digits=50", "callbacks.latent_space=false",
                   "test=false")  # fmt: skip
    assert results(run)["global_step"] < 50  # stopped early
    acc = events(run)
    last = max(e.step for e in acc.Scalars("val/loss"))
    assert last in [e.step for e in acc.Images("artifacts/zoomed")]
