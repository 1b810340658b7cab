"""A sweep's console: one line per job, a closing table, the rest in each job's train.log
(convae/sweeps/console.py, convae/tracking/console.py)."""

from __future__ import annotations

import re

from helpers import run_script

TINY = ["data.source=bundled", "trainer.max_steps=4", "callbacks.artifact_digits=100"]


def sweep(tmp_path, *args: str, **env: str):
    proc = run_script("convae-train", "-m", "upsample=nearest,transposed", *TINY, *args,
                      cwd=tmp_path, **env)  # fmt: skip
    (folder,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    return proc, folder, (proc.stdout + proc.stderr).splitlines()


def job_names(folder) -> list[str]:
    """The sweep's job folders, as the console names the jobs."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_a_2_job_sweep_prints_a_line_per_job_and_a_closing_table_in_at_most_50_lines(tmp_path):
    # the joblib launcher's console: test_sweeps.py's test_parallel_launchers_...
    proc, folder, lines = sweep(tmp_path, "threads=1")
    assert len(lines) <= 50, "\n".join(lines)
    jobs = job_names(folder)
    assert len(jobs) == 2
    for name in jobs:  # its line when it ends: name, state, key metrics, time
        (line,) = [ln for ln in lines if re.match(rf"\[[12]/2\] {re.escape(name)}  ", ln)]
        assert re.fullmatch(rf"\[[12]/2\] {re.escape(name)}  completed  test/loss \S+  "
                            r"test/psnr \S+  test/grid \S+  \d+ s", line), line  # fmt: skip
    out = proc.stdout.splitlines()
    assert out[-1] == f"Sweep folder: {folder.relative_to(tmp_path)}"
    assert out[-5] == "2 jobs: 2 completed"
    assert out[-4].split() == ["job", "state", "test/loss", "test/psnr", "test/grid", "time"]
    assert [row.split()[:2] for row in out[-3:-1]] == [[name, "completed"] for name in jobs]
    # the full config, Lightning's lines and the test results: in train.log, not on the console
    for name in jobs:
        log = (folder / name / "train.log").read_text()
        assert "Composed config:" in log and "sweep_existing: refuse" in log
        assert "Trainable params" in log and "GPU available" in log and "Results in" in log
    console = "\n".join(lines)
    for chatter in ["Composed config", "sweep_existing:", "Trainable params", "GPU available",
                    "Test metric", "Tip:", "deprecated", "━", "Seed set to", "#0 :"]:  # fmt: skip
        assert chatter not in console, console


def test_convae_verbose_gives_a_sweep_the_full_output_back(tmp_path):
    proc, _, lines = sweep(tmp_path, "threads=1", CONVAE_VERBOSE="1")
    console = "\n".join(lines)
    assert console.count("Composed config:") == 2 and "Trainable params" in console
    assert "#1 : upsample=transposed " in console  # Hydra's launch line
    assert proc.stdout.splitlines()[-1].startswith("Sweep folder: ")  # the closing table too
