"""A sweep is checked whole before its first job (convae/sweeps/preflight.py): one bad value
refuses it in one line naming the job and the key, before any job folder or results.json."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_script
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from convae.config.schema import register_configs
from convae.sweeps.preflight import Composer, check_sweep, sweep_jobs

FAST = ["data.source=bundled", "trainer.max_steps=2", "test=false", "threads=1",
        "callbacks.artifact_images_every=0", "trainer.enable_progress_bar=false",
        "hydra.sweep.dir=sweep"]  # fmt: skip
UPSAMPLERS = "expected one of bilinear, nearest, pixel_shuffle, transposed"


def refused(tmp_path: Path, *overrides: str) -> str:
    """Runs the sweep, which must be refused before any job: its one error line."""
    proc = run_script("convae-train", "-m", *FAST, *overrides, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert not (tmp_path / "sweep").exists()  # not locked, made nor written by anything
    assert not list(tmp_path.rglob("results.json"))
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


@pytest.mark.slow
def test_a_bad_value_in_the_second_job_refuses_the_sweep_before_the_first_job(tmp_path):
    line = refused(tmp_path, "model.upsample=nearest,transposed_k4")
    assert line == (
        "convae-train: error: job 2 of 2 (model.upsample=transposed_k4): "
        f"model.upsample='transposed_k4' is invalid: {UPSAMPLERS}"
    )


@pytest.mark.slow
def test_a_joblib_sweep_is_refused_the_same_way(tmp_path):
    line = refused(tmp_path, "hydra/launcher=joblib", "seed=0,1", "data.noise_std=0,-1")
    assert line == (
        "convae-train: error: job 2 of 4 (seed=0,data.noise_std=-1): data.noise_std=-1.0 is "
        "invalid: expected a finite float >= 0 (0 = clean) [2 of 4 jobs refused]"
    )


@pytest.mark.slow
def test_a_bad_choice_in_an_optuna_search_space_is_refused_up_front(tmp_path):
    line = refused(tmp_path, "experiment=optuna_search", "hydra.sweeper.n_trials=1",
                   "model.upsample=choice(nearest,transposed_k4)")  # fmt: skip
    assert line == (
        "convae-train: error: Optuna search space (model.upsample=transposed_k4): "
        f"model.upsample='transposed_k4' is invalid: {UPSAMPLERS}"
    )


# --- in process: the sweep's jobs, and each composed as Hydra composes it ----------------


@pytest.fixture
def sweep_config() -> Iterator:
    """The sweep's config (the ``hydra`` node included) as convae-train -m composes it."""
    register_configs()
    with initialize_config_module(config_module="convae.conf", version_base="1.3"):
        hydra = GlobalHydra.instance().hydra

        def composed(*overrides: str) -> DictConfig:
            return hydra.compose_config("train", list(overrides), run_mode=RunMode.MULTIRUN)

        yield composed


def test_each_job_is_composed_as_hydra_composes_it_for_the_launcher(sweep_config):
    cfg = sweep_config("upsample=nearest,transposed_k4", "model.upsample=bilinear,nearest",
                       "model=depth_16_8_8,depth_32_32_16", "optim=adamw", "seed=3",
                       "+optim.amsgrad=true", "data.source=bundled")  # fmt: skip
    loader = GlobalHydra.instance().config_loader()
    jobs = sweep_jobs(cfg, loader)
    assert len(jobs) == 8 and jobs[-1].label == (
        "job 8 of 8 (upsample=transposed_k4,model.upsample=nearest,model=depth_32_32_16)"
    )
    composer = Composer(cfg, loader)
    for job in jobs:  # a defaults tree per group choice, the values set on a copy: the same
        fast, full = composer.compose(job.overrides), composer.compose_in_full(job.overrides)
        assert OmegaConf.to_container(fast) == OmegaConf.to_container(full)
    assert check_sweep(cfg) is None


@pytest.mark.parametrize(
    "overrides,line",
    [
        (["data.noise_std=interval(-0.1,0.2)"],
         "Optuna search space, each parameter at its first value: data.noise_std=-0.1 is "
         "invalid: expected a finite float >= 0 (0 = clean) [3 of 4 configs refused]"),
        (["model.kernel_size=range(3,7,2)"],  # 3 and 5: both odd
         None),
        (["model.kernel_size=range(3,8,2)", "model.depths=[4,4]"],  # its last value is 7
         None),
        (["trainer.max_steps=range(0,10)"],
         "Optuna search space, each parameter at its first value: trainer.max_steps=0 is "
         "invalid: expected an int >= 1, or -1 for no limit [3 of 4 configs refused]"),
        (["trainer.max_steps=interval(1,10)"],  # Hydra's interval is of floats: every trial
         "Optuna search space, each parameter at its first value: trainer.max_steps=1.0 is "
         "invalid: Value '1.0' of type 'float' could not be converted to Integer "
         "[4 of 4 configs refused]"),
        (["model.kernel_size=choice(3,4)", "model.kernel_size=5"],  # a fixed value wins
         None),
    ],
)  # fmt: skip
def test_optuna_choices_and_bounds_are_checked(sweep_config, overrides, line):
    cfg = sweep_config("experiment=optuna_search", "data.source=bundled", *overrides)
    assert check_sweep(cfg) == line
