"""Multirun sweeps with the real launchers, and DDP on two CPU processes."""

import json
import re
from pathlib import Path

import pytest
from helpers import results, run_script

pytestmark = pytest.mark.slow  # every test here runs convae-train in a subprocess

BASE = ["data.source=bundled", "trainer.max_steps=3", "trainer.enable_progress_bar=false",
        "callbacks.artifact_digits=100"]  # fmt: skip


def sweep(cwd: Path, *args: str, check: bool = True):
    proc = run_script("convae-train", "-m", *BASE, *args, cwd=cwd, check=check)
    sweeps = sorted((cwd / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 1, proc.stderr
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    return proc, sweeps[0], jobs


def test_a_2x2_sweep_names_each_job_folder_by_its_swept_keys_in_the_order_given(tmp_path):
    # seed=7, then swept: the sweep wins, and seed still names the folders
    _, sweep_dir, jobs = sweep(tmp_path, "model.upsample=nearest,transposed", "seed=7",
                               "seed=0,1", "threads=1")  # fmt: skip
    assert (sweep_dir / "multirun.yaml").is_file()
    # model.upsample first, as given, and short: no other swept key ends in upsample
    assert [p.name for p in jobs] == [
        "upsample=nearest,seed=0", "upsample=nearest,seed=1",
        "upsample=transposed,seed=0", "upsample=transposed,seed=1"]  # fmt: skip
    for job in jobs:
        res = results(job)
        assert res["status"] == "completed"
        assert (
            job.name
            == f"upsample={res['config']['model']['upsample']},seed={res['config']['seed']}"
        )
        assert list(job.glob("events.out.tfevents.*"))
    # a job folder pastes unquoted as convae-eval's ckpt= (its name holds '=' and ',')
    proc = run_script("convae-eval", f"ckpt={jobs[0]}", "eval.noise_stds=[0]", cwd=tmp_path)
    assert (jobs[0] / "eval" / "eval.json").is_file(), proc.stderr


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_run_jobs_with_one_thread_each(tmp_path, launcher):
    proc, sweep_dir, jobs = sweep(tmp_path, f"hydra/launcher={launcher}", "seed=0,1")
    assert len(jobs) == 2
    for job in jobs:
        assert results(job)["status"] == "completed"
        assert "torch threads 1" in (job / "train.log").read_text()
    # a quiet console (tests/e2e/test_sweep_console.py): no Hydra deprecation warning about
    # convae's launcher presets, in the main process or the workers; the closing table
    said = proc.stdout + proc.stderr
    assert "ConfigStore schema" not in said and "Composed config" not in said, said
    assert len(said.splitlines()) <= 50, said
    assert proc.stdout.splitlines()[-1] == f"Sweep folder: {sweep_dir.relative_to(tmp_path)}"
    if launcher == "joblib":  # a submitit job's own line is in its log under .submitit/
        done = [
            ln for ln in said.splitlines() if re.match(r"\[[12]/2\] \S+  completed  test/loss ", ln)
        ]
        assert len(done) == 2, said


def test_failing_combinations_do_not_stop_the_others_and_the_last_line_names_each(tmp_path):
    # the up-front check (convae/sweeps/preflight.py) turned off: each job checks itself
    proc, _, jobs = sweep(tmp_path, "data.noise_std=0,-1,0.5,-2", "threads=1",
                          "~hydra.callbacks.sweep_preflight", check=False)  # fmt: skip
    assert proc.returncode != 0
    status = {json.loads((j / "results.json").read_text())["config"]["data"]["noise_std"]:
              results(j) for j in jobs}  # fmt: skip
    assert status[0.0]["status"] == status[0.5]["status"] == "completed"
    assert status[-1.0]["status"] == status[-2.0]["status"] == "failed"
    assert status[-1.0]["error"].startswith("data.noise_std=-1.0 is invalid")
    # Hydra raises the first failure alone; the line adds every job that did not complete
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("convae-train: error: data.noise_std=-1.0 is invalid")
    assert last.endswith(" [2 of 4 jobs did not complete: noise_std=-1 (failed), "
                         "noise_std=-2 (failed)]")  # fmt: skip


def test_ddp_on_two_cpu_processes_reports_the_single_process_val_loss(tmp_path):
    import pytorch_lightning as pl

    from convae.data.datamodule import ImageDataModule
    from convae.training.module import AutoencoderModule

    proc = run_script("convae-train", "data.source=bundled", "trainer=ddp", "trainer.devices=2",
                      "trainer.max_steps=20", "threads=1", "trainer.enable_progress_bar=false",
                      cwd=tmp_path)  # fmt: skip
    run_dir = next((tmp_path / "outputs" / "runs").glob("*/*"))
    assert "effective batch size 400 (data.batch_size 200 x 2 processes)" in proc.stdout
    res = results(run_dir)  # written once, by rank 0
    assert res["status"] == "completed" and res["global_step"] == 20
    assert len(list(run_dir.glob("events.out.tfevents.*"))) >= 1
    module = AutoencoderModule.load_from_checkpoint(
        run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    dm = ImageDataModule(source="bundled")
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, inference_mode=False)  # fmt: skip
    (metrics,) = single.validate(module, datamodule=dm, verbose=False)
    assert abs(metrics["val/loss"] - res["metrics"]["val/loss"]) < 1e-6


def test_the_optuna_example_minimises_the_returned_val_loss(tmp_path):
    import yaml

    _, sweep_dir, jobs = sweep(tmp_path, "experiment=optuna_search", "hydra.sweeper.n_trials=2",
                               "threads=1")  # fmt: skip
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    losses = [results(j)["metrics"]["val/loss"] for j in jobs]
    assert len(jobs) == 2 and best["best_value"] == pytest.approx(min(losses))
    assert set(best["best_params"]) == {"optim.lr", "model"}


PARETO_TEST = """
defaults:
  - train
  - override experiment: optuna_pareto
  - _self_
data: {source: bundled}
trainer: {max_steps: 2, val_check_interval: 1, enable_progress_bar: false}
callbacks: {artifact_digits: 100, artifact_images_every: 0}
test: false
threads: 1
hydra:
  sweeper:
    n_trials: 4
    params:  # the example's sampler (NSGA-II, seed 0) picks -1.0, invalid, 2nd of 4
      upsample: choice(nearest)
      optim.lr: choice(0.001)
      data.noise_std: choice(0.0, 0.1, 0.2, -1.0)
"""


def test_the_pareto_example_tolerates_a_failed_trial_and_resumes_from_its_sqlite(tmp_path):
    import optuna
    import yaml

    (tmp_path / "pareto_test.yaml").write_text(PARETO_TEST)
    # without the up-front check, which would refuse the -1.0 choice (sweeps/preflight.py)
    args = ["-m", "--config-dir", str(tmp_path), "--config-name", "pareto_test",
            "~hydra.callbacks.sweep_preflight"]  # fmt: skip
    run_script("convae-train", *args, cwd=tmp_path)  # one failure in its batch of 2: rc 0
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    study = optuna.load_study(study_name="convae_loss_artifacts",
                              storage=f"sqlite:///{sweep_dir}/optuna.db")  # fmt: skip
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    front = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["solutions"]
    by_noise = {}
    for job in sweep_dir.glob("*/results.json"):
        res = json.loads(job.read_text())
        if res["status"] == "completed":
            by_noise[res["config"]["data"]["noise_std"]] = res["metrics"]
    for solution in front:  # each objective pair is the job's val/loss and val/grid
        metrics = by_noise[solution["params"]["data.noise_std"]]
        assert solution["values"] == [metrics["val/loss"], metrics["val/grid"]]

    run_script("convae-train", *args, f"hydra.sweep.dir={sweep_dir}", "sweep_existing=continue",
               "hydra.sweeper.n_trials=2", cwd=tmp_path)  # fmt: skip
    study = optuna.load_study(study_name="convae_loss_artifacts",
                              storage=f"sqlite:///{sweep_dir}/optuna.db")  # fmt: skip
    assert [t.state.name for t in study.trials][:4] == states and len(study.trials) == 6
