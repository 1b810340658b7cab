"""One test per function of convae/compat.py: each checks the framework internal it relies on
against the installed Lightning, TensorBoard, Hydra and torchmetrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image import StructuralSimilarityIndexMeasure

from convae import compat, hydra_compat


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch).square().mean()
        self.log("loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Probe(pl.Callback):
    """Runs ``at_batch(trainer, batch_idx)`` after every training batch and keeps what it
    returns."""

    def __init__(self, at_batch: Any) -> None:
        self.at_batch, self.seen, self.exceptions = at_batch, [], []

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, out: Any, batch: Any, i: int):
        self.seen.append(self.at_batch(trainer, i))

    def on_exception(self, trainer: pl.Trainer, module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)


def fit(tmp_path: Path, probe: pl.Callback, **trainer_kwargs: Any) -> pl.Trainer:
    torch.manual_seed(0)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[probe],
        **{"max_epochs": 2, **trainer_kwargs},
    )  # fmt: skip
    trainer.fit(Tiny(), DataLoader(torch.randn(12, 4), batch_size=4))  # 3 batches an epoch
    return trainer


def test_logging_step_counts_the_batches_that_stepped_and_can_be_set(tmp_path):
    def read_then_set(trainer: pl.Trainer, i: int) -> tuple[int, int]:
        step, before = trainer.global_step, compat.logging_step(trainer)
        compat.set_logging_step(trainer, 100 + step)
        after = compat.logging_step(trainer)
        compat.set_logging_step(trainer, before)
        return step - before, after - step

    probe = Probe(read_then_set)
    fit(tmp_path, probe)
    # At a batch's end the optimizer has stepped (global_step counts it); the logging step
    # still names the batch being logged, one behind.
    assert probe.seen == [(1, 100)] * 6


def test_batches_done_in_epoch_counts_from_one_each_epoch(tmp_path):
    probe = Probe(lambda trainer, i: compat.batches_done_in_epoch(trainer))
    fit(tmp_path, probe)
    assert probe.seen == [1, 2, 3, 1, 2, 3]


def test_request_sigterm_stop_raises_lightnings_sigterm_stop_after_that_batch(tmp_path):
    def stop_at_second(trainer: pl.Trainer, i: int) -> int:
        if i == 1:
            compat.request_sigterm_stop(trainer)
        return trainer.global_step

    probe = Probe(stop_at_second)
    with pytest.raises(SIGTERMException):
        fit(tmp_path, probe)
    assert probe.seen == [1, 2]
    assert [type(e) for e in probe.exceptions] == [SIGTERMException]


def test_mark_finished_epoch_completed_recognises_an_epoch_end_checkpoint(tmp_path):
    class SaveAtEpochEnd(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, module: Any) -> None:
            trainer.save_checkpoint(tmp_path / f"epoch{trainer.current_epoch}.ckpt")

    torch.manual_seed(0)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[SaveAtEpochEnd()],
        max_epochs=2, max_steps=100,
    )  # fmt: skip
    trainer.fit(Tiny(), DataLoader(torch.randn(12, 4), batch_size=4))
    ckpt = torch.load(tmp_path / "epoch0.ckpt", weights_only=True)
    loops = ckpt["loops"]["fit_loop"]
    assert loops["epoch_progress"]["current"]["completed"] == 0  # the state it mends
    assert compat.mark_finished_epoch_completed(ckpt)
    assert loops["epoch_progress"]["current"]["completed"] == 1
    assert loops["epoch_loop.batch_progress"]["current"]["processed"] == 0
    assert not compat.mark_finished_epoch_completed(ckpt)  # between epochs now: no change
    assert not compat.mark_finished_epoch_completed({"state_dict": {}})


def test_appending_csv_logger_keeps_the_rows_a_new_logger_finds(tmp_path):
    """Lightning's own CSVLogger deletes them: the rows before a resume would be lost."""
    first = compat.AppendingCSVLogger(save_dir=tmp_path, name="", version="")
    first.log_metrics({"loss": 1.0}, step=0)
    first.log_metrics({"loss": 0.5, "val/loss": 0.7}, step=1)
    first.finalize("success")
    second = compat.AppendingCSVLogger(save_dir=tmp_path, name="", version="")
    second.log_metrics({"loss": 0.25}, step=2)
    second.log_metrics({"test/loss": 0.3}, step=2)  # a new column: the file is rewritten
    second.finalize("success")
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows == ["loss,step,test/loss,val/loss",  # sorted, as Lightning writes it
                    "1.0,0,,", "0.5,1,,0.7", "0.25,2,,", ",2,0.3,"]  # fmt: skip


def test_tb_file_writer_writes_summaries_into_the_runs_own_event_file(tmp_path):
    writer = SummaryWriter(tmp_path)
    for summary in hparams({"lr": 0.1}, {"val/loss": 0.0}):
        compat.tb_file_writer(writer).add_summary(summary)
    writer.close()
    assert [p.parent for p in tmp_path.rglob("events.out.tfevents.*")] == [tmp_path]
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert "_hparams_/experiment" in acc.summary_metadata


def test_wrapped_tb_file_writers_serve_every_write_and_name_their_event_file(tmp_path):
    writer, seen = SummaryWriter(tmp_path), []

    def wrap(open_file_writer):
        file_writer = open_file_writer()
        seen.append(compat.tb_event_file(file_writer))
        return file_writer

    compat.wrap_tb_file_writers(writer, wrap)
    writer.add_scalar("x", 1.0, 0)  # add_* reach the file through the wrapped writer
    writer.close()
    (event_file,) = tmp_path.glob("events.out.tfevents.*")
    assert seen and set(seen) == {str(event_file)}


def test_basic_sweep_jobs_expands_sweep_lists_like_hydras_basic_sweeper():
    jobs = hydra_compat.basic_sweep_jobs(
        ["seed=0,1", "model.upsample=nearest,transposed", "loss=bce"]
    )
    assert jobs == [
        ["seed=0", "model.upsample=nearest", "loss=bce"],
        ["seed=0", "model.upsample=transposed", "loss=bce"],
        ["seed=1", "model.upsample=nearest", "loss=bce"],
        ["seed=1", "model.upsample=transposed", "loss=bce"],
    ]


def test_value_overrides_are_applied_as_hydra_applies_them_after_composing():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"seed": 0, "model": {"depths": [16, 8, 8]}, "gone": 1})
    parsed = OverridesParser.create().parse_overrides(["seed=3", "+model.extra=x", "~gone"])
    hydra_compat.apply_value_overrides(parsed, cfg)
    assert OmegaConf.to_container(cfg) == {"seed": 3, "model": {"depths": [16, 8, 8],
                                                                "extra": "x"}}  # fmt: skip


def test_the_optuna_search_space_splits_distributions_from_fixed_values():
    space, fixed = hydra_compat.optuna_search_space(
        ["model.upsample=choice(nearest,transposed)", "optim.lr=interval(0.0001,0.01)", "seed=1"]
    )
    assert list(space["model.upsample"].choices) == ["nearest", "transposed"]
    assert (space["optim.lr"].low, space["optim.lr"].high) == (0.0001, 0.01)
    assert fixed == {"seed": "1"}  # as the command line gave it


def test_ssim_options_are_the_constructor_arguments():
    metric = StructuralSimilarityIndexMeasure(data_range=2.0, sigma=(1.0, 2.0), k1=0.02)
    o = compat.ssim_options(metric)
    assert (o["data_range"], tuple(o["sigma"]), o["k1"], o["k2"]) == (2.0, (1.0, 2.0), 0.02, 0.03)
    assert (o["gaussian_kernel"], o["reduction"], o["full_outputs"]) == (
        True,
        "elementwise_mean",
        False,
    )
    assert compat.ssim_options(StructuralSimilarityIndexMeasure(return_full_image=True))[
        "full_outputs"
    ]


@pytest.mark.filterwarnings("ignore:The ``compute`` method")  # no update(): as designed
@pytest.mark.parametrize("reduction", ["elementwise_mean", "sum"])
def test_ssim_add_scores_gives_torchmetrics_own_result(reduction):
    g = torch.Generator().manual_seed(0)
    preds, target = torch.rand(2, 6, 1, 16, 16, generator=g).unbind()
    own = StructuralSimilarityIndexMeasure(data_range=1.0, reduction=reduction)
    own.update(preds[:4], target[:4])
    own.update(preds[4:], target[4:])
    added = StructuralSimilarityIndexMeasure(data_range=1.0, reduction=reduction)
    for part in ((preds[:4], target[:4]), (preds[4:], target[4:])):
        per_image = structural_similarity_index_measure(*part, data_range=1.0, reduction="none")
        compat.ssim_add_scores(added, per_image)
    torch.testing.assert_close(added.compute(), own.compute())
