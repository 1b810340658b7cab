"""A checkpoint's stored config is data, never a recipe for objects: an optim or scheduler
section carrying a nested ``_target_`` (a "gadget" that hydra.utils.instantiate would
build: ``builtins.open`` creates or empties a file, ``pathlib.Path.write_text`` writes
one) is refused in one line naming the key, through every way a run resumes from a stored
config (``resume=``, ``hydra.run.dir=`` an unfinished run, ``sweep_existing=continue``),
and the marker file it would write never appears (issue #27, part 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from helpers import results, run_script, train

QUICK = ("callbacks.artifact_images_every=0", "callbacks.latent_space=false", "test=false")


def open_gadget(marker: Path) -> dict:
    return {"_target_": "builtins.open", "_args_": [str(marker), "w"]}


def write_gadget(marker: Path) -> dict:
    path = {"_target_": "pathlib.Path", "_args_": [str(marker)]}
    write = {"_target_": "pathlib.Path.write_text", "_args_": [path, "x"]}
    return {"_target_": "builtins.callable", "_args_": [write]}


GADGETS = {"open": open_gadget, "write_text": write_gadget}


def plant(ckpt_path: Path, section: str, key: str, gadget: dict) -> None:
    """The checkpoint rewritten (still weights_only-loadable) with ``gadget`` as an argument
    of ``section`` in both places a run reads it from: hparams and the stored config."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    hparams = ckpt["hyper_parameters"]
    for holder in (hparams, hparams["config"]):
        holder[section] = {**holder[section], key: gadget}
    torch.save(ckpt, ckpt_path)


def refused(proc, key: str) -> str:
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"convae-train: error: {key}=") and "is invalid" in line, line
    return line


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory) -> Path:
    """A 6-step run with a step schedule and a last.ckpt, never written to by the tests."""
    cwd = tmp_path_factory.mktemp("unfinished")
    _, run_dir = train(cwd, "trainer.max_steps=6", "scheduler=step", *QUICK)
    return run_dir


def test_the_gadgets_would_write_the_marker_if_instantiated(tmp_path):
    """What the refusals below prevent: Hydra's instantiate builds both gadgets."""
    from hydra.utils import instantiate

    for name, gadget in GADGETS.items():
        marker = tmp_path / name
        made = instantiate(gadget(marker))
        if hasattr(made, "close"):
            made.close()
        assert marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("gadget", sorted(GADGETS))
@pytest.mark.parametrize("section,key", [("optim", "capturable"), ("scheduler", "gamma")])
def test_resume_refuses_a_stored_config_that_would_build_objects(
    unfinished, tmp_path, gadget, section, key
):
    marker = tmp_path / "MARKER"
    run_dir = shutil.copytree(unfinished, tmp_path / "run")
    plant(run_dir / "checkpoints" / "last.ckpt", section, key, GADGETS[gadget](marker))
    before = (run_dir / "results.json").read_bytes()
    proc, _ = train(tmp_path, f"resume={run_dir}", "trainer.max_steps=12", check=False)
    refused(proc, f"{section}.{key}")
    assert not marker.exists()
    assert (run_dir / "results.json").read_bytes() == before


@pytest.mark.slow
def test_a_run_into_an_unfinished_folder_refuses_its_stored_gadget(unfinished, tmp_path):
    """hydra.run.dir= a run killed before results.json: it resumes by itself (requeue)."""
    marker = tmp_path / "MARKER"
    run_dir = shutil.copytree(unfinished, tmp_path / "run")
    (run_dir / "results.json").unlink()
    plant(run_dir / "checkpoints" / "last.ckpt", "optim", "capturable", open_gadget(marker))
    proc, _ = train(
        tmp_path, "trainer.max_steps=12", "scheduler=step", *QUICK, f"hydra.run.dir={run_dir}",
        check=False,
    )  # fmt: skip
    refused(proc, "optim.capturable")
    assert not marker.exists()


@pytest.mark.slow
def test_a_continued_sweep_refuses_a_jobs_stored_gadget_and_runs_the_others(tmp_path):
    marker = tmp_path / "MARKER"
    sweep = tmp_path / "sweep"
    common = ["data.source=bundled", "threads=1", "trainer.enable_progress_bar=false", *QUICK,
              "trainer.max_steps=4", f"hydra.sweep.dir={sweep}", "seed=0,1"]  # fmt: skip
    run_script("convae-train", "-m", *common, cwd=tmp_path)
    job = sweep / "seed=1"
    (job / "results.json").unlink()  # as if killed: continue resumes it from last.ckpt
    plant(job / "checkpoints" / "last.ckpt", "optim", "capturable", write_gadget(marker))
    proc = run_script("convae-train", "-m", *common, "sweep_existing=continue", cwd=tmp_path,
                      check=False)  # fmt: skip
    assert proc.returncode != 0 and not marker.exists()
    assert results(job)["status"] == "failed"
    assert "optim.capturable=" in results(job)["error"]
    assert results(sweep / "seed=0")["status"] == "completed"
