"""resume= with overrides: how long and how a run goes on may change; what it trains may not,
and a change that cannot be honoured is refused in one line, never ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers import results, train

from convae.config.compose import compose_train
from convae.config.convert import to_container
from convae.config.errors import ConfigError
from convae.config.validate import validate
from convae.runs.checkpoint import PRECISION_KEY, read_checkpoint
from convae.runs.resume import config_for_resume, trained_precision


def started_run(tmp_path: Path, *overrides: str) -> Path:
    """A run folder as convae-train leaves it for resume=: the overrides it was started with
    in .hydra/overrides.yaml and its composed config inside checkpoints/last.ckpt."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    config = to_container(compose_train(overrides))
    ckpt = run / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": config}}, ckpt)
    return ckpt


def resume_with(ckpt: Path, *overrides: str):
    run = ckpt.parent.parent
    cfg = compose_train([f"resume={run}", *overrides])
    return config_for_resume(cfg, ckpt, [f"resume={run}", *overrides])


def test_resume_applies_a_new_step_budget_and_keeps_the_rest(tmp_path):
    ckpt = started_run(tmp_path, "model.kernel_size=5", "trainer.max_steps=100")
    cfg = resume_with(ckpt, "trainer.max_steps=300", "threads=1")
    assert (cfg.trainer.max_steps, cfg.threads, cfg.model.kernel_size) == (300, 1, 5)


def test_resume_refuses_a_group_choice_the_run_was_not_started_with(tmp_path):
    ckpt = started_run(tmp_path, "trainer.max_steps=100")
    with pytest.raises(ConfigError) as err:
        resume_with(ckpt, "upsample=bilinear")
    assert str(err.value).startswith("upsample=bilinear: a resumed run keeps what it trains")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("group", ["trainer=gpu", "data=noisy", "experiment=seed_denoiser"])
def test_resume_refuses_other_group_choices_in_one_line(tmp_path, group):
    ckpt = started_run(tmp_path, "trainer.max_steps=100")
    with pytest.raises(ConfigError) as err:
        resume_with(ckpt, group)
    assert str(err.value) == (
        f"{group}: a resumed run keeps what it trains (the run was not started with this "
        "group choice); start a new run for it, or change only trainer.max_epochs, "
        "trainer.max_steps and the like on resume"
    )


def test_resume_refuses_a_changed_model_key_naming_the_run_value(tmp_path):
    ckpt = started_run(tmp_path, "trainer.max_steps=100")
    with pytest.raises(ConfigError, match=r"^model\.kernel_size=5: .*kernel_size=3"):
        resume_with(ckpt, "model.kernel_size=5")


def test_a_requeued_job_repeating_its_own_overrides_resumes(tmp_path):
    """A requeue or sweep_existing=continue runs the job's command line again."""
    job = ["upsample=bilinear", "seed=2", "+optim.amsgrad=true"]
    ckpt = started_run(tmp_path, *job)
    cfg = resume_with(ckpt, *job)
    assert (cfg.model.upsample, cfg.seed, cfg.optim.amsgrad) == ("bilinear", 2, True)


def test_an_auto_precision_run_resumes_at_the_precision_it_trained_at(tmp_path):
    ckpt = started_run(tmp_path)
    assert trained_precision(None) is None  # a new run: auto follows the hardware
    torch.save({**torch.load(ckpt, weights_only=True), PRECISION_KEY: "32-true"}, ckpt)
    assert trained_precision(ckpt) == "32-true"
    assert validate(compose_train(), trained_precision="32-true").value == "32-true"
    explicit = compose_train(["trainer.precision=bf16-mixed"])
    assert validate(explicit, trained_precision="32-true").value == "bf16-mixed"


@pytest.mark.slow
def test_convae_train_refuses_resume_with_another_decoder_in_one_line(tmp_path):
    _, run_dir = train(tmp_path, "trainer.max_steps=2", "test=false")
    saved = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert saved[PRECISION_KEY] == results(run_dir)["precision"]
    proc, _ = train(tmp_path, f"resume={run_dir}", "upsample=bilinear", check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("convae-train: error: upsample=bilinear: a resumed run keeps")
