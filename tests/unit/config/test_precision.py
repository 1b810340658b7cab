"""trainer.precision=auto follows the hardware; metrics stay float32 whatever the training
precision; bf16 runs on the CPU are reproducible."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from helpers import results, train
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from convae.config.errors import ConfigError
from convae.config.precision import resolve_precision
from convae.config.validate import validate
from convae.data.datamodule import ImageDataModule
from convae.hardware import cpu_bf16_flags
from convae.models.upsample import TransposedConv
from convae.tracking.loggers import build_loggers
from convae.training.build import build_datamodule, build_module, build_trainer
from convae.training.module import AutoencoderModule

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {}\nmodel name\t: x\n"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("amx_bf16 amx_tile", "bf16-mixed"), ("avx512_bf16", "bf16-mixed"), ("", "32-true")],
)
def test_auto_resolves_to_bf16_only_where_the_cpu_has_native_bf16(flags, expected):
    found = cpu_bf16_flags(CPUINFO.format(flags))
    chosen = resolve_precision("auto", "cpu", cpu_flags=found)
    assert chosen.value == expected
    assert ("no native bf16" in chosen.reason) == (expected == "32-true")


def test_auto_on_a_gpu_follows_its_bf16_support():
    assert resolve_precision("auto", "gpu", gpu_bf16=True).value == "bf16-mixed"
    assert resolve_precision("auto", "gpu", gpu_bf16=False).value == "32-true"


@pytest.mark.parametrize(("given", "expected"), [("32", "32-true"), ("bf16", "bf16-mixed"),
                                                 ("32-true", "32-true")])  # fmt: skip
def test_explicit_precisions_keep_working_on_the_cpu(given, expected):
    assert resolve_precision(given, "cpu", cpu_flags=[]).value == expected


@pytest.mark.parametrize(
    ("given", "accelerator", "gpu_bf16", "says"),
    [("16-mixed", "cpu", None, "needs a GPU"), ("bf16-mixed", "gpu", False, "no bf16 support"),
     ("64-true", "cpu", None, "expected one of")],
)  # fmt: skip
def test_a_precision_the_hardware_cannot_run_is_a_one_line_error(
    given, accelerator, gpu_bf16, says
):
    with pytest.raises(ConfigError) as err:
        resolve_precision(given, accelerator, cpu_flags=[], gpu_bf16=gpu_bf16)
    message = str(err.value)
    assert message.startswith(f"trainer.precision={given!r}") and says in message
    assert "\n" not in message


TRANSPOSED = {"upsample": "transposed", "transposed_kernel_size": 3}


@pytest.mark.parametrize(
    ("requested", "model", "flags", "kept"),
    [("auto", TRANSPOSED, ["avx512_bf16"], True),  # bf16 deconv kernels slower: kept float32
     ("auto", TRANSPOSED, ["amx_bf16", "avx512_bf16"], False),
     ("auto", {**TRANSPOSED, "transposed_kernel_size": 4}, ["avx512_bf16"], False),  # even k
     ("auto", {"upsample": "nearest"}, ["avx512_bf16"], False),
     ("bf16-mixed", TRANSPOSED, ["avx512_bf16"], False)],  # asked for: all bf16
)  # fmt: skip
def test_auto_keeps_odd_kernel_transposed_convolutions_float32_without_amx(
    requested, model, flags, kept
):
    chosen = resolve_precision(requested, "cpu", model=model, cpu_flags=flags)
    assert chosen.value == "bf16-mixed" and chosen.float32_transposed == kept
    assert ("stay float32" in chosen.reason) == kept


def test_a_float32_transposed_convolution_computes_in_float32_inside_bf16_autocast():
    layer = TransposedConv(4, 3, 3, stride=2)
    x = torch.rand(2, 4, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
        layer.float32 = True
        kept = layer(x.bfloat16())
    assert kept.dtype == torch.float32 and torch.equal(kept, layer(x.bfloat16().float()))
    assert list(layer.state_dict()) == ["weight", "bias"]  # checkpoints load either way


def test_a_run_keeps_the_layers_its_precision_names_in_float32(tmp_path, compose, monkeypatch):
    monkeypatch.setattr("convae.config.precision.cpu_bf16_flags", lambda: ["avx512_bf16"])
    cfg = compose("upsample=transposed", "trainer.max_steps=2", "test=false",
                  "callbacks.artifact_images_every=0", "logger=csv")  # fmt: skip
    precision = validate(cfg)
    assert precision.float32_transposed
    module = build_module(cfg)
    trainer = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path), precision)
    trainer.fit(module, datamodule=build_datamodule(cfg))
    layers = [m for m in module.modules() if isinstance(m, TransposedConv)]
    assert layers and all(m.float32 for m in layers)


def test_bf16_validation_metrics_are_the_float32_metrics_of_the_bf16_outputs(tmp_path):
    """The metrics are computed from the bf16 forward pass's outputs, in float32: equal to
    torchmetrics' reference on those outputs, and not rounded to bf16's spacing."""
    torch.manual_seed(0)
    dm = ImageDataModule(source="bundled", eval_batch_size=250)
    module = AutoencoderModule(model={"depths": [16, 8, 8]}, optim={
        "_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    (logged,) = trainer.validate(module, datamodule=dm, verbose=False)

    targets = dm.fixed_digits(len(dm.val_set))[1]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = torch.cat([module(x) for x in targets.split(250)])
    assert logits.dtype == torch.bfloat16  # the forward pass really ran in bf16
    logits, x_hat = logits.float(), torch.sigmoid(logits.float())
    reference = {
        "val/loss": F.binary_cross_entropy_with_logits(logits, targets).item(),
        "val/psnr": peak_signal_noise_ratio(x_hat, targets, data_range=1.0, dim=(1, 2, 3)).item(),
        "val/ssim": structural_similarity_index_measure(x_hat, targets, data_range=1.0).item(),
    }
    for tag, value in reference.items():
        assert logged[tag] == pytest.approx(value, abs=1e-6), tag
        assert torch.tensor(logged[tag]).bfloat16().float().item() != logged[tag], tag


@pytest.mark.slow
def test_a_cpu_bf16_run_is_bit_identical_when_rerun_and_records_its_precision(tmp_path):
    args = ("trainer.precision=bf16-mixed", "trainer.max_steps=4",
            "callbacks.artifact_images_every=0")  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = train(tmp_path / "a", *args)
    _, second = train(tmp_path / "b", *args)
    assert results(first)["precision"] == "bf16-mixed"
    assert results(first)["metrics"] == results(second)["metrics"]
    ssim = results(first)["metrics"]["test/ssim"]
    assert torch.tensor(ssim).bfloat16().float().item() != ssim  # not summed in bf16
