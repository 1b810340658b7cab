"""A run folder names its own files relative to itself (results.json, eval.json, the
checkpoint callback's state), so a copied or moved run resumes, evaluates and reports from
its own files, not the original's, and works once the original is gone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import THREADS, results, run_script, train
from pytorch_lightning.callbacks import ModelCheckpoint

from convae.callbacks.checkpointing import RelocatableModelCheckpoint
from convae.runs import results as run_results
from convae.runs.checkpoint import CheckpointError, read_checkpoint

QUICK = ("callbacks.artifact_images_every=0",)
# Best = highest val/loss: the first epoch's checkpoint stays the best as training goes on,
# so a resume that forgot its best score would pick (and test) a later one.
KEEP_FIRST = ("callbacks.checkpoint_mode=max",)
FIRST_BEST = "checkpoints/best-epoch000-step20.ckpt"


def checkpoint_state(ckpt: Path) -> dict:
    (state,) = [v for k, v in read_checkpoint(ckpt)["callbacks"].items() if "Checkpoint{" in k]
    return state


def fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def spoil(run_dir: Path) -> None:
    """The original's checkpoints, truncated: a reader that still used them would fail."""
    for ckpt in run_dir.glob("checkpoints/*.ckpt"):
        ckpt.write_bytes(ckpt.read_bytes()[:100])


# --- the checkpoint callback's state -----------------------------------------------------


def test_callback_state_names_files_relative_to_its_folder(tmp_path):
    here = tmp_path / "run" / "checkpoints"
    cb = RelocatableModelCheckpoint(dirpath=here, monitor="val/loss")
    cb.best_model_path = str(here.resolve() / "best-epoch001-step40.ckpt")
    cb.best_k_models = {cb.best_model_path: torch.tensor(0.5)}
    cb.kth_best_model_path = cb.best_model_path
    cb.last_model_path = str(here.resolve() / "last.ckpt")
    state = cb.state_dict()
    assert state["best_model_path"] == state["kth_best_model_path"] == "best-epoch001-step40.ckpt"
    assert state["last_model_path"] == "last.ckpt" and state["dirpath"] == "."
    assert list(state["best_k_models"]) == ["best-epoch001-step40.ckpt"]
    # the same key as Lightning's ModelCheckpoint: either restores the other's state
    assert cb.state_key == ModelCheckpoint(dirpath=here, monitor="val/loss").state_key


@pytest.mark.parametrize("recorded", ["relative", "absolute, in the current folder"])
def test_callback_state_resolves_against_the_current_folder(tmp_path, recorded):
    original = tmp_path / "original" / "checkpoints"
    copy = tmp_path / "copy" / "checkpoints"
    for folder in (original, copy):
        folder.mkdir(parents=True)
        (folder / "best-epoch000-step20.ckpt").write_bytes(b"x")
    name = "best-epoch000-step20.ckpt"
    where = Path() if recorded == "relative" else copy
    path, last = str(where / name), str(where / "last.ckpt")
    score = torch.tensor(0.7)
    state = {"monitor": "val/loss", "best_model_score": score, "dirpath": str(original),
             "best_model_path": path, "kth_best_model_path": path, "kth_value": score,
             "best_k_models": {path: score}, "last_model_path": last}  # fmt: skip
    cb = RelocatableModelCheckpoint(dirpath=copy, monitor="val/loss")
    cb.load_state_dict(state)
    own = str(copy.resolve() / name)
    assert cb.best_model_path == cb.kth_best_model_path == own
    assert cb.best_model_score == torch.tensor(0.7) and list(cb.best_k_models) == [own]
    assert cb.last_model_path == str(copy.resolve() / "last.ckpt")


def test_callback_state_whose_best_file_is_not_here_starts_tracking_afresh(tmp_path):
    """e.g. ckpt_path= of another run's checkpoint into a new folder: no missing best."""
    cb = RelocatableModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val/loss")
    cb.load_state_dict({"best_model_score": torch.tensor(0.7), "dirpath": ".",
                        "best_model_path": "best-epoch000-step20.ckpt",
                        "best_k_models": {"best-epoch000-step20.ckpt": torch.tensor(0.7)},
                        "last_model_path": "last.ckpt"})  # fmt: skip
    assert cb.best_model_path == "" and cb.best_model_score is None and cb.best_k_models == {}


def test_callback_state_whose_best_file_is_in_another_folder_starts_tracking_afresh(tmp_path):
    """An absolute path into the original run: its file exists, but it is not this run's."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    for folder in (original, copy):
        folder.mkdir()
        (folder / "best-epoch000-step20.ckpt").write_bytes(b"x")
    path = str(original / "best-epoch000-step20.ckpt")
    cb = RelocatableModelCheckpoint(dirpath=copy, monitor="val/loss")
    cb.load_state_dict({"best_model_score": torch.tensor(0.7), "dirpath": str(original),
                        "best_model_path": path, "best_k_models": {path: torch.tensor(0.7)},
                        "last_model_path": "last.ckpt"})  # fmt: skip
    assert cb.best_model_path == "" and cb.best_model_score is None and cb.best_k_models == {}


def test_a_best_checkpoint_recorded_outside_the_run_is_refused(tmp_path):
    """results.json is read from this folder only, even while the original's file exists."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    for run in (original, copy):
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "best-epoch000-step20.ckpt").write_bytes(b"x")
    elsewhere = {"best_checkpoint": str(original / FIRST_BEST)}
    with pytest.raises(CheckpointError, match="outside the run folder"):
        run_results.tested_checkpoint(copy, elsewhere)
    assert run_results.tested_checkpoint(copy, {"best_checkpoint": FIRST_BEST}) == copy / FIRST_BEST
    inside = {"best_checkpoint": str(copy / FIRST_BEST)}
    assert run_results.tested_checkpoint(copy, inside) == copy / FIRST_BEST


# --- real runs, copied -------------------------------------------------------------------


@pytest.mark.slow
def test_a_copied_run_resumes_from_its_own_files_once_the_original_is_moved(tmp_path):
    _, original = train(fresh(tmp_path / "a"), "trainer.max_steps=20", *KEEP_FIRST, *QUICK)
    copy = shutil.copytree(original, tmp_path / "elsewhere" / "run")
    moved = original.rename(original.with_name("moved-away"))
    run_script("convae-train", "data.source=bundled", f"threads={THREADS}",
               "trainer.enable_progress_bar=false", f"resume={copy}", "trainer.max_steps=40",
               cwd=tmp_path)  # fmt: skip
    _, straight = train(fresh(tmp_path / "straight"), "trainer.max_steps=40", *KEEP_FIRST, *QUICK)

    res = results(copy)
    assert res["status"] == "completed" and res["global_step"] == 40
    assert res["resumed_from"] == "checkpoints/last.ckpt"
    # the best score survived the move: the first epoch's checkpoint is still the tested one
    assert res["best_checkpoint"] == results(straight)["best_checkpoint"] == FIRST_BEST
    assert res["best_monitor"] == results(straight)["best_monitor"]
    assert res["metrics"] == results(straight)["metrics"]
    state = checkpoint_state(copy / "checkpoints" / "last.ckpt")
    assert state["best_model_path"] == Path(FIRST_BEST).name and state["dirpath"] == "."
    assert str(original) not in (copy / "results.json").read_text()
    original_files = sorted(p.name for p in (moved / "checkpoints").iterdir())
    assert original_files == ["best-epoch000-step20.ckpt", "last.ckpt"]  # untouched


@pytest.mark.slow
def test_convae_eval_of_a_copy_uses_the_copys_checkpoint(tmp_path):
    _, original = train(fresh(tmp_path / "a"), "trainer.max_steps=20", *QUICK)
    copy = shutil.copytree(original, tmp_path / "elsewhere" / "run")
    spoil(original)
    run_script("convae-eval", f"ckpt={copy}", "eval.noise_stds=[0]", "threads=1", cwd=tmp_path)
    report = json.loads((copy / "eval" / "eval.json").read_text())
    assert report["checkpoint"] == results(copy)["best_checkpoint"] == FIRST_BEST
    (clean,) = report["levels"]
    assert clean["loss"] == pytest.approx(results(copy)["metrics"]["test/loss"], rel=1e-4)
    assert not (original / "eval").exists()


@pytest.mark.slow
def test_convae_report_of_a_copied_sweep_uses_the_copys_checkpoints(tmp_path):
    run_script("convae-train", "-m", "data.source=bundled", "trainer.max_steps=20", "threads=1",
               "trainer.enable_progress_bar=false", *QUICK, "optim.lr=0.001,0.002",
               cwd=tmp_path)  # fmt: skip
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    run_script("convae-report", str(sweep), "--out", str(tmp_path / "before"), cwd=tmp_path)
    copy = shutil.copytree(sweep, tmp_path / "elsewhere" / "sweep")
    spoil(sweep)
    run_script("convae-report", str(copy), cwd=tmp_path)
    jobs = list(copy.glob("lr=*"))  # optim.lr, shortened in the job folder names
    assert len(jobs) == 2
    for job in jobs:
        assert results(job)["best_checkpoint"] == FIRST_BEST
    assert "Left out of reconstructions.png" not in (copy / "report.md").read_text()
    # the copy's weights are the original's as they were: the same pictures
    before = (tmp_path / "before" / "reconstructions.png").read_bytes()
    assert (copy / "reconstructions.png").read_bytes() == before
