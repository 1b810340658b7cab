"""Sweeps on a real one-node SLURM cluster (scripts/slurm-local.sh), through the real sbatch:
no stand-in launcher. Skipped, with the script's one-line reason, where the cluster cannot
start (not root, no apt); torn down after the test whatever its outcome."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import results, run_script

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"


def slurm_local(command: str, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLURM_LOCAL_DIR": str(folder)}
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster of its own for the test; the path to its slurm.conf."""
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


def test_a_submitit_slurm_sweep_runs_every_job_through_sbatch(tmp_path, slurm_conf):
    run_script("convae-train", "-m", "hydra/launcher=submitit_slurm",
               "hydra.launcher.gpus_per_task=null",  # a CPU-only cluster refuses a GPU request
               "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
               "hydra.launcher.timeout_min=10", "seed=0,1", "data.source=bundled",
               "trainer.max_steps=4", "trainer.val_check_interval=2", "test=false",
               "trainer.enable_progress_bar=false",
               cwd=tmp_path, SLURM_CONF=slurm_conf)  # fmt: skip
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(sweep.glob("seed=*"))
    assert [j.name for j in jobs] == ["seed=0", "seed=1"]
    for job in jobs:
        res = results(job)
        assert res["status"] == "completed" and res["global_step"] == 4
        assert list(job.glob("events.out.tfevents.*"))
        assert "torch threads 1;" in (job / "train.log").read_text()  # cpus_per_task
    # One array job through sbatch; on the node, Lightning saw SLURM's environment.
    (script,) = sweep.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --array=0-1" in script.read_text()
    logs = [p.read_text() for p in sweep.glob(".submitit/*_*/*_log.err")]
    assert len(logs) == 2 and all("SLURM auto-requeueing enabled" in log for log in logs)
    report = run_script("convae-report", str(sweep), "--out", str(tmp_path / "report"),
                        cwd=tmp_path, OMP_NUM_THREADS="1")  # fmt: skip
    assert report.returncode == 0
    assert "jobs: 2 (2 completed)" in (tmp_path / "report" / "report.md").read_text()
