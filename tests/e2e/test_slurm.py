"""Sweeps on a real one-node SLURM cluster (scripts/slurm-local.sh), through the real sbatch,
scancel and srun: no stand-in launcher. One cluster for the module, skipped with the
script's one-line reason where it cannot start (not root, no apt), torn down after the last
test whatever the outcome. The cluster's ports are fixed: a lock keeps a second one (another
pytest-xdist worker's) from starting until this one is down."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import BIN, ROOT, events, results, run_script, scalars
from omegaconf import OmegaConf

from convae.runs.checkpoint import global_step, read_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = ROOT / "scripts" / "slurm-local.sh"
# What every job here asks of the one-node cluster: one CPU each (cpus_per_task also sets
# the job's torch threads), no GPU (the preset asks for one: a CPU-only cluster refuses it).
LAUNCHER = ["hydra/launcher=submitit_slurm", "hydra.launcher.gpus_per_task=null",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10"]  # fmt: skip
QUICK = ["data.source=bundled", "test=false", "trainer.enable_progress_bar=false"]
# Long enough to be signalled mid-run: small batches, a checkpoint every 20 steps.
SIGNALLED = ["data.source=bundled", "test=false", "data.batch_size=16", "trainer.max_steps=300",
             "trainer.val_check_interval=20", "trainer.limit_val_batches=2",
             "callbacks.artifact_images_every=0"]  # fmt: skip


def slurm_local(command: str, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLURM_LOCAL_DIR": str(folder)}
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster for this module; the path to its slurm.conf."""
    with open(Path(tempfile.gettempdir()) / "convae-slurm-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder = tmp_path_factory.mktemp("slurm") / "cluster"
        up = slurm_local("up", folder)
        if up.returncode == 2:
            pytest.skip(up.stderr.strip())
        assert up.returncode == 0, up.stderr
        pids = [int((folder / f"{d}.pid").read_text()) for d in ("munged", "slurmctld", "slurmd")]
        try:
            yield str(folder / "slurm.conf")
        finally:
            down = slurm_local("down", folder)
            assert down.returncode == 0, down.stderr
            for pid in pids:  # the daemons are gone, not only their files
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
            assert not folder.exists()


def sweep(cwd: Path, slurm_conf: str, *overrides: str, check: bool = True):
    """``convae-train -m`` through sbatch, waited for; (process, sweep folder)."""
    proc = run_script("convae-train", "-m", *LAUNCHER, *overrides, cwd=cwd, check=check,
                      SLURM_CONF=slurm_conf)  # fmt: skip
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return proc, folder


def start_sweep(cwd: Path, slurm_conf: str, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "convae-train"), "-m", *LAUNCHER, *overrides],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SLURM_CONF": slurm_conf, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def signal_after_first_checkpoint(
    proc: subprocess.Popen, cwd: Path, signal: str, slurm_conf: str, job: str = "*"
) -> tuple[str, Path]:
    """``scancel --signal=<signal>`` to the array task that trains sweep job ``job`` (its
    folder's name; the only job by default) once that job saved its first checkpoint;
    returns the task's id and the job's folder."""
    deadline = time.time() + 300
    while not (saved := list(cwd.glob(f"outputs/multirun/*/*/{job}/checkpoints/best-*.ckpt"))):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.1)
    folder = saved[0].parent.parent
    task = job_ids(cwd)[folder.name]
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    subprocess.run(["scancel", f"--signal={signal}", task], env=env, check=True, timeout=60)
    return task, folder


def job_ids(cwd: Path) -> dict[str, str]:
    """Sweep job folder name -> its SLURM job id: 12_1 for job #1 of array job 12, or 12 for
    a one-job sweep (no array), from submitit's folders named after them and the job number
    Hydra records in each job folder."""
    (sweep_dir,) = (cwd / "outputs" / "multirun").glob("*/*")
    ids = [f.name for f in sweep_dir.glob(".submitit/*") if f.is_dir()]
    tasks = {int(i.split("_")[1]): i for i in ids if "_" in i} or {0: ids[0]}
    return {job.parent.parent.name: tasks[OmegaConf.load(job).hydra.job.num]
            for job in sweep_dir.glob("*/.hydra/hydra.yaml")}  # fmt: skip


def submitit_log(sweep_dir: Path, task: str) -> str:
    """What submitit logged on the node for ``task``, both attempts of a requeued one."""
    return "".join(p.read_text() for p in sorted(sweep_dir.glob(f".submitit/{task}/*_log.*")))


def test_a_submitit_slurm_sweep_runs_every_job_through_sbatch(tmp_path, slurm_conf):
    _, folder = sweep(tmp_path, slurm_conf, "seed=0,1", *QUICK, "trainer.max_steps=4",
                      "trainer.val_check_interval=2")  # fmt: skip
    jobs = sorted(folder.glob("seed=*"))
    assert [j.name for j in jobs] == ["seed=0", "seed=1"]
    for job in jobs:
        res = results(job)
        assert res["status"] == "completed" and res["global_step"] == 4
        assert list(job.glob("events.out.tfevents.*"))
        assert "torch threads 1;" in (job / "train.log").read_text()  # cpus_per_task
    # One array job through sbatch; on the node, Lightning saw SLURM's environment.
    (script,) = folder.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --array=0-1" in script.read_text()
    logs = [p.read_text() for p in folder.glob(".submitit/*_*/*_log.err")]
    assert len(logs) == 2  # Lightning's lines of a quiet sweep job go to its train.log:
    assert all("SLURM auto-requeueing enabled" in (j / "train.log").read_text() for j in jobs)
    report = run_script("convae-report", str(folder), "--out", str(tmp_path / "report"),
                        cwd=tmp_path, OMP_NUM_THREADS="1")  # fmt: skip
    assert report.returncode == 0
    assert "jobs: 2 (2 completed)" in (tmp_path / "report" / "report.md").read_text()


def test_a_job_signalled_for_its_time_limit_is_requeued_and_ends_as_if_never_stopped(
    tmp_path, slurm_conf
):
    """What SLURM sends before a time limit (the preset's signal_delay_s): SIGUSR2, to one of
    two jobs that train the same thing (they differ only in their progress bar). submitit
    requeues it; it resumes in its folder from the exact step."""
    proc = start_sweep(tmp_path, slurm_conf, *SIGNALLED, "trainer.enable_progress_bar=false,true")
    signalled = "enable_progress_bar=False"  # Hydra's spelling of the value, key shortened
    task, _ = signal_after_first_checkpoint(proc, tmp_path, "USR2", slurm_conf, signalled)
    # SLURM holds the requeued job for cred_expire + 1 s (11 s on the local cluster)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    (folder,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    requeued, straight = folder / signalled, folder / "enable_progress_bar=True"
    log = submitit_log(folder, task)
    assert "Caught signal SIGUSR2" in log and f"Requeued job {task}" in log
    res = results(requeued)
    assert res["status"] == "completed" and res["global_step"] == 300
    assert res["resumed_from"] == "checkpoints/last.ckpt"
    assert res["metrics"] == results(straight)["metrics"]
    losses = scalars(events(requeued), "train/loss")
    assert [s for s, _ in losses] == list(range(300))  # no step lost or logged twice
    assert losses == scalars(events(straight), "train/loss")


def test_a_job_preempted_with_sigterm_leaves_a_resumable_checkpoint(tmp_path, slurm_conf):
    proc = start_sweep(tmp_path, slurm_conf, *SIGNALLED, "trainer.enable_progress_bar=false")
    _, job = signal_after_first_checkpoint(proc, tmp_path, "TERM", slurm_conf)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1  # the job's error, not a sweep waiting for it
    res = results(job)
    assert res["status"] == "interrupted" and 20 <= res["global_step"] < 300
    assert res["checkpoint"] == "checkpoints/last.ckpt"
    assert global_step(read_checkpoint(job / res["checkpoint"])) == res["global_step"]
    step = res["global_step"]
    assert (
        stderr.strip()
        .splitlines()[-1]
        .endswith(f"{job} interrupted at step {step}; resume with convae-train resume={job}")
    )
    run_script("convae-train", f"resume={job}", "threads=1", cwd=tmp_path)
    resumed = results(job)
    assert resumed["status"] == "completed" and resumed["global_step"] == 300


def test_a_failing_job_is_recorded_and_the_other_job_completes(tmp_path, slurm_conf):
    # without the up-front check (convae/sweeps/preflight.py), which would refuse the sweep
    proc, folder = sweep(tmp_path, slurm_conf, *QUICK, "trainer.max_steps=4",
                         "data.noise_std=0.5,-1.0", "~hydra.callbacks.sweep_preflight",
                         check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "data.noise_std=-1.0 is invalid: expected a finite float >= 0 (0 = clean)"
    )
    assert results(folder / "noise_std=0.5")["status"] == "completed"
    failed = results(folder / "noise_std=-1.0")
    assert failed["status"] == "failed" and failed["error"].startswith("data.noise_std=-1.0")
    run_script("convae-report", str(folder), "--out", str(tmp_path / "report"), cwd=tmp_path,
               OMP_NUM_THREADS="1")  # fmt: skip
    report = (tmp_path / "report" / "report.md").read_text()
    (tally,) = (line for line in report.splitlines() if line.startswith("- jobs: "))
    assert tally in ("- jobs: 2 (1 completed, 1 failed)", "- jobs: 2 (1 failed, 1 completed)")
    assert "data.noise_std=-1.0" in report


def test_ddp_over_two_slurm_tasks_trains_with_rank_zero_writing_the_results(tmp_path, slurm_conf):
    """srun starts both processes (tasks_per_node=2); Lightning takes ranks and the
    rendezvous from SLURM's environment instead of launching them itself."""
    _, folder = sweep(tmp_path, slurm_conf, *QUICK, "hydra.launcher.tasks_per_node=2",
                      "trainer=ddp", "trainer.devices=2", "trainer.max_steps=6")  # fmt: skip
    (job,) = (f.parent for f in folder.glob("*/.hydra"))
    res = results(job)
    assert res["status"] == "completed" and res["global_step"] == 6
    log = (job / "train.log").read_text()
    assert "effective batch size 400 (data.batch_size 200 x 2 processes)" in log
    assert log.count("Results in ") == 1  # rank 0's; both ranks log to the job's train.log
    assert "latent/cb2_ratio_recon" in res["metrics"]  # rank 0 alone computes these
    (job_id,) = job_ids(tmp_path).values()
    for rank in (0, 1):  # one process per SLURM task, its rank from SLURM_PROCID
        task_log = (folder / ".submitit" / job_id / f"{job_id}_{rank}_log.err").read_text()
        # Lightning's line: on the task's console, or in train.log in a quiet sweep job
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in task_log + log
