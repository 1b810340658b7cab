"""What only a GPU can check: trainer=gpu end to end, auto precision there, metrics in
float32 from bf16 GPU outputs. Skipped, with the reason, where torch sees no CUDA device;
scripts/gpu-check.sh runs them with convae-bench on the GPU."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from helpers import results, train
from torchmetrics.functional.image import structural_similarity_index_measure

from convae.config.precision import resolve_precision
from convae.data.datamodule import ImageDataModule
from convae.training.module import AutoencoderModule

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_auto_precision_on_this_gpu_follows_its_bf16_support():
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    assert resolve_precision("auto", "gpu").value == expected


def test_bf16_gpu_validation_metrics_are_float32_metrics_of_its_outputs(tmp_path):
    torch.manual_seed(0)
    dm = ImageDataModule(source="bundled", eval_batch_size=250)
    module = AutoencoderModule(model={"depths": [16, 8, 8]}, optim={
        "_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})  # fmt: skip
    trainer = pl.Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    (logged,) = trainer.validate(module, datamodule=dm, verbose=False)
    targets = dm.fixed_digits(len(dm.val_set))[1].cuda()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        x_hat = torch.sigmoid(torch.cat([module(x) for x in targets.split(250)]).float())
    ssim = structural_similarity_index_measure(x_hat, targets, data_range=1.0).item()
    assert logged["val/ssim"] == pytest.approx(ssim, abs=1e-5)
    assert torch.tensor(logged["val/ssim"]).bfloat16().float().item() != logged["val/ssim"]


@pytest.mark.slow
def test_a_gpu_run_trains_tests_and_records_its_precision(tmp_path):
    _, run = train(tmp_path, "trainer=gpu", "trainer.max_steps=30", "trainer.max_epochs=2")
    res = results(run)
    assert res["status"] == "completed" and res["accelerator"] == "CUDAAccelerator"
    assert res["precision"] == resolve_precision("auto", "gpu").value
    assert 0 < res["metrics"]["test/loss"] < 0.7
