"""Bad input is refused before any compute, in one line; failures never lose results."""

import pytest
import torch
from helpers import fake_mnist, results, train
from hydra.errors import ConfigCompositionException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convae.config.errors import MAX_LINE_CHARS, ConfigError, one_line
from convae.config.validate import validate
from convae.models import UPSAMPLERS, ConvAutoencoder

# (override, who refuses it, a key and a value its one-line error must name). "compose":
# Hydra, while composing (unknown key, wrong type, missing group option); "validate":
# convae.config.validate, before any data is loaded or model built.
BAD_CONFIGS = [
    ("model.depth=3", "compose", "model.depth", "ModelConfig has depths"),
    ("data.noise_std=abc", "compose", "data.noise_std", "'abc'"),
    ("data.noise_std=-0.5", "validate", "data.noise_std", "-0.5"),
    ("data.noise_std=inf", "validate", "data.noise_std", "inf"),
    ("model.depths=[]", "validate", "model.depths", "[]"),
    ("model.depths=[16,0,8]", "validate", "model.depths", "[16, 0, 8]"),
    ("model.upsample=cubic", "validate", "model.upsample", "cubic"),
    ("model.kernel_size=4", "validate", "model.kernel_size", "4"),
    ("data.batch_size=0", "validate", "data.batch_size", "0"),
    ("optim.lr=-0.001", "validate", "optim.lr", "-0.001"),
    ("data.source=cifar", "validate", "data.source", "cifar"),
    ("loss=l1", "validate", "loss", "l1"),
    ("seed=abc", "compose", "seed", "'abc'"),
    ("model=unet", "compose", "model/unet", "depth_16_8_8"),
]
# One of each way convae-train refuses a config, run for real: Hydra's composition error,
# its missing group option, and validate's error (whose run folder Hydra had made already).
CLI_CASES = ["model.depth=3", "model=unet", "data.noise_std=-0.5"]


def refusal(compose, override: str, refused_by: str) -> BaseException:
    """The error convae-train would report for ``override``, raised where it says."""
    if refused_by == "compose":
        with pytest.raises(ConfigCompositionException) as err:
            compose("data.source=bundled", override, validate=False)
    else:
        cfg = compose("data.source=bundled", override, validate=False)  # Hydra accepts it
        with pytest.raises(ConfigError) as err:
            validate(cfg)
    return err.value


@pytest.mark.parametrize(
    "override,refused_by,key,value", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_a_bad_config_is_refused_in_one_line_naming_the_key_and_the_value(
    compose, override, refused_by, key, value
):
    line = one_line(refusal(compose, override, refused_by))
    assert "\n" not in line and len(line) <= MAX_LINE_CHARS, line
    assert key in line and value in line, line
    assert "Traceback" not in line


@pytest.mark.slow
@pytest.mark.parametrize("override", CLI_CASES)
def test_convae_train_prints_that_line_alone_and_leaves_no_run_folder(tmp_path, compose, override):
    refused_by = next(c[1] for c in BAD_CONFIGS if c[0] == override)
    expected = one_line(refusal(compose, override, refused_by))
    proc, run_dir = train(tmp_path, override, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert lines == [f"convae-train: error: {expected}"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert run_dir is None  # nothing under outputs/runs: no checkpoints, no results


@pytest.mark.slow
def test_a_truncated_data_file_is_named_before_training(tmp_path):
    folder = fake_mnist(tmp_path / "data", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    proc, run_dir = train(tmp_path, "data.source=mnist", "data.root=data", check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert str(path.relative_to(tmp_path)) in last and "truncated" in last
    assert not (run_dir / "checkpoints").exists()
    assert results(run_dir)["status"] == "failed"


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_and_is_recorded_as_failed(tmp_path):
    proc, run_dir = train(tmp_path, "optim.lr=1e20", "trainer.max_steps=40", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "training loss is nan at step" in last and "optim.lr" in last
    res = results(run_dir)
    assert res["status"] == "failed" and "last finite loss" in res["error"]
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_divergence_after_a_checkpoint_never_overwrites_the_best(tmp_path, compose):
    """Real Lightning run: one good epoch, then the lr is blown up until the loss is NaN."""
    import pytorch_lightning as pl

    from convae.tracking.loggers import build_loggers
    from convae.training.build import build_datamodule, build_module, build_trainer
    from convae.training.module import TrainingDiverged

    class BlowUpLr(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                for group in trainer.optimizers[0].param_groups:
                    group["lr"] = 1e20

    cfg = compose(
        "data.source=bundled", "trainer.max_epochs=3", "trainer.enable_progress_bar=false"
    )
    trainer = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path))
    trainer.callbacks.append(BlowUpLr())
    with pytest.raises(TrainingDiverged):
        trainer.fit(build_module(cfg), datamodule=build_datamodule(cfg))
    best = trainer.checkpoint_callback.best_model_path
    assert best.endswith("best-epoch000-step20.ckpt")
    weights = torch.load(best, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best-epoch000-step20.ckpt", "last.ckpt"]  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depths=st.lists(st.integers(1, 64), min_size=1, max_size=4),
    kernel_size=st.sampled_from([1, 3, 5, 7]),
    upsample=st.sampled_from(sorted(UPSAMPLERS)),
    transposed_kernel_size=st.integers(2, 5),
    icnr=st.booleans(),
)
def test_any_valid_model_maps_28x28_to_a_finite_28x28(
    depths, kernel_size, upsample, transposed_kernel_size, icnr
):
    model = ConvAutoencoder(depths=depths, kernel_size=kernel_size, upsample=upsample,
                            transposed_kernel_size=transposed_kernel_size, icnr=icnr)  # fmt: skip
    with torch.no_grad():
        out = model(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28)
    assert torch.isfinite(out).all()
