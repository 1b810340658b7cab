"""Checkpoints are read with weights_only=True everywhere: a crafted pickle is refused by
every entry point (eval, resume=, the requeue resume, report, load_module) before any of
its code runs, in one line naming the file; a truncated or empty last.ckpt falls back to
the newest loadable best-*.ckpt, and that resume is still exact."""

from __future__ import annotations

import builtins
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import ROOT, results, run_script, train

from convae.runs import results as run_results
from convae.runs.checkpoint import DAMAGED, FOREIGN, REFUSED, CheckpointError, read_checkpoint
from convae.runs.resume import usable_last
from convae.training.module import AutoencoderModule, load_module

QUICK = ("callbacks.artifact_images_every=0",)
CONVAE = ROOT / "convae"


class Payload:
    """Unpickled with weights_only=False, this writes ``marker``: code from a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


def plant(src: Path, dst: Path, marker: Path, where: str = "callbacks") -> Path:
    """``src`` (a real convae checkpoint) written to ``dst`` with the payload inside."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt[where]["payload"] = Payload(marker)
    torch.save(ckpt, dst)
    return dst


def error_line(proc, prog: str) -> str:
    """The one error line of a failed console script (nothing like a traceback around it)."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: checkpoint "), proc.stderr
    return line


def copy_run(run_dir: Path, dst: Path) -> Path:
    shutil.copytree(run_dir, dst)
    return dst


def best_of(run_dir: Path) -> Path:
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    return best


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 20-step run (one epoch), never written to by the tests."""
    cwd = tmp_path_factory.mktemp("finished")
    _, run_dir = train(cwd, "trainer.max_steps=20", *QUICK)
    return run_dir


# --- the loader itself -------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_checkpoint_loads_with_weights_only_and_needs_no_allow_list(finished):
    for path in (finished / "checkpoints").glob("*.ckpt"):
        ckpt = read_checkpoint(path)
        assert ckpt["global_step"] == 20 and ckpt["hyper_parameters"]["config"]["seed"] == 0
    module = load_module(finished / "checkpoints" / "last.ckpt")
    assert not module.training and module.hparams.config["trainer"]["max_steps"] == 20


@pytest.mark.slow
@pytest.mark.parametrize("where", ["callbacks", "hyper_parameters"])
def test_load_module_refuses_a_payload_and_names_the_global(finished, tmp_path, where):
    marker = tmp_path / "PWNED"
    evil = plant(finished / "checkpoints" / "last.ckpt", tmp_path / "evil.ckpt", marker, where)
    with pytest.raises(CheckpointError) as err:
        load_module(evil)
    assert err.value.kind == REFUSED
    assert str(err.value).startswith(f"checkpoint {evil}: refused")
    assert "exec" in str(err.value) and "only tensors and plain containers" in str(err.value)
    # Lightning's own load, as convae calls it, refuses it as well
    with pytest.raises(Exception, match="Unsupported global"):
        AutoencoderModule.load_from_checkpoint(evil, map_location="cpu", weights_only=True)
    assert not marker.exists()


@pytest.mark.slow
def test_empty_truncated_foreign_and_unreadable_files_are_named_with_the_reason(finished, tmp_path):
    data = (finished / "checkpoints" / "last.ckpt").read_bytes()
    cases = {
        "empty.ckpt": (b"", DAMAGED, "empty (0 bytes)"),
        "half.ckpt": (data[: len(data) // 2], DAMAGED, "truncated"),
        "one_byte.ckpt": (data[:1], DAMAGED, "truncated"),
    }
    for name, (raw, kind, why) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(CheckpointError, match=re.escape(why)) as err:
            read_checkpoint(tmp_path / name)
        assert err.value.kind == kind and str(tmp_path / name) in str(err.value)
        assert "\n" not in str(err.value)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="not a convae checkpoint") as err:
        read_checkpoint(tmp_path / "foreign.ckpt")
    assert err.value.kind == FOREIGN
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_no_weights_only_false_is_left_in_convae():
    offenders = [p for p in CONVAE.rglob("*.py") if "weights_only=False" in p.read_text()]
    assert offenders == []


# --- each entry point refuses the payload ------------------------------------------------


@pytest.mark.slow
def test_convae_eval_refuses_a_crafted_checkpoint_in_one_line(finished, tmp_path):
    marker = tmp_path / "PWNED"
    evil = plant(finished / "checkpoints" / "last.ckpt", tmp_path / "evil.ckpt", marker)
    proc = run_script("convae-eval", f"ckpt={evil}", "threads=1", cwd=tmp_path, check=False)
    line = error_line(proc, "convae-eval")
    assert str(evil) in line and "refused" in line and "exec" in line
    assert not marker.exists() and not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_resume_refuses_a_crafted_last_checkpoint_in_one_line(finished, tmp_path):
    marker = tmp_path / "PWNED"
    run_dir = copy_run(finished, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.ckpt"
    plant(finished / "checkpoints" / "last.ckpt", last, marker)
    before = (run_dir / "results.json").read_bytes()
    proc = train(tmp_path, f"resume={run_dir}", "trainer.max_steps=40", check=False)[0]
    line = error_line(proc, "convae-train")
    assert str(last) in line and "refused" in line
    assert not marker.exists()
    assert (run_dir / "results.json").read_bytes() == before  # the finished record stays


@pytest.mark.slow
def test_resume_refuses_a_crafted_best_checkpoint_before_testing_it(finished, tmp_path):
    """last.ckpt is clean; the best one the test stage would load is not."""
    marker = tmp_path / "PWNED"
    run_dir = copy_run(finished, tmp_path / "run")
    best = best_of(run_dir)
    plant(best, best, marker)
    proc = train(tmp_path, f"resume={run_dir}", check=False)[0]  # nothing left to train
    line = error_line(proc, "convae-train")
    assert str(best) in line and "refused" in line
    assert not marker.exists()
    assert results(run_dir)["status"] == "completed"  # the finished record stays


@pytest.mark.slow
def test_requeue_into_an_unfinished_run_refuses_a_crafted_last_checkpoint(finished, tmp_path):
    """A plain run into a folder with no results.json resumes by itself: the same check."""
    marker = tmp_path / "PWNED"
    run_dir = copy_run(finished, tmp_path / "run")
    (run_dir / "results.json").unlink()  # killed before it could write anything
    last = run_dir / "checkpoints" / "last.ckpt"
    plant(finished / "checkpoints" / "last.ckpt", last, marker)
    proc = train(tmp_path, "trainer.max_steps=40", *QUICK, f"hydra.run.dir={run_dir}", check=False)[
        0
    ]
    line = error_line(proc, "convae-train")
    assert str(last) in line and "refused" in line
    assert not marker.exists()
    assert results(run_dir)["status"] == "failed"  # recorded, and nothing was trained
    assert str(last) in results(run_dir)["error"]


@pytest.mark.slow
def test_report_leaves_out_a_job_with_a_crafted_checkpoint_without_loading_it(tmp_path):
    marker = tmp_path / "PWNED"
    proc = run_script("convae-train", "-m", "data.source=bundled", "trainer.max_steps=5",
                      "threads=1", "trainer.enable_progress_bar=false", *QUICK,
                      "optim.lr=0.001,0.002", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    evil_job = sweep / "lr=0.002"  # optim.lr, shortened in the job folder name
    best = run_results.tested_checkpoint(evil_job)  # the file the report loads for that job
    plant(best, best, marker)
    run_script("convae-report", str(sweep), cwd=tmp_path)
    report = (sweep / "report.md").read_text()
    left_out = report.split("Left out of reconstructions.png:", 1)[1]
    (note,) = [line for line in left_out.splitlines() if line.startswith("- ")]
    assert "optim.lr=0.002" in note or "0.002" in note
    assert f"checkpoint {best}: refused" in note
    assert not marker.exists()


# --- a truncated or empty last.ckpt on resume --------------------------------------------


@pytest.fixture(scope="module")
def stopped_mid_epoch(tmp_path_factory) -> Path:
    """30 steps: best-*.ckpt at step 20 (the only validation), last.ckpt at step 30."""
    cwd = tmp_path_factory.mktemp("stopped")
    _, run_dir = train(cwd, "trainer.max_steps=30", *QUICK)
    assert read_checkpoint(best_of(run_dir))["global_step"] == 20
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 30
    return run_dir


@pytest.fixture(scope="module")
def straight_40(tmp_path_factory) -> Path:
    _, run_dir = train(tmp_path_factory.mktemp("straight"), "trainer.max_steps=40", *QUICK)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_a_damaged_last_checkpoint_falls_back_to_the_best_and_resumes_exactly(
    stopped_mid_epoch, straight_40, tmp_path, keep
):
    """The requeue of a job killed while saving last.ckpt (0 bytes or half of it)."""
    run_dir = copy_run(stopped_mid_epoch, tmp_path / "run")
    (run_dir / "results.json").unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: int(last.stat().st_size * keep)])
    best = best_of(run_dir)
    proc, _ = train(tmp_path, "trainer.max_steps=40", *QUICK, f"hydra.run.dir={run_dir}")
    (warning,) = [
        line for line in proc.stdout.splitlines() if "WARNING" in line and "last.ckpt" in line
    ]
    assert f"checkpoint {last}: " in warning and f"resuming from {best.name} (step 20)" in warning
    res = results(run_dir)
    assert res["resumed_from"] == f"checkpoints/{best.name}" and res["global_step"] == 40
    assert res["metrics"] == results(straight_40)["metrics"]


@pytest.mark.slow
def test_a_damaged_last_checkpoint_without_a_best_beside_it_is_an_error(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(b"")
    best_of(run_dir).unlink()
    with pytest.raises(CheckpointError) as err:
        usable_last(last)
    assert str(err.value) == (
        f"checkpoint {last}: empty (0 bytes), e.g. a save that was killed; "
        "no loadable best-*.ckpt beside it to resume from instead"
    )


@pytest.mark.slow
def test_a_crafted_best_checkpoint_is_refused_not_skipped_in_the_fallback(finished, tmp_path):
    marker = tmp_path / "PWNED"
    run_dir = copy_run(finished, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    best = best_of(run_dir)
    plant(best, best, marker)
    with pytest.raises(CheckpointError, match="refused") as err:
        usable_last(last)
    assert err.value.path == best and not marker.exists()


@pytest.mark.slow
def test_resume_with_no_usable_checkpoint_fails_in_one_line(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path / "run")
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(b"")
    best_of(run_dir).unlink()
    proc = train(tmp_path, f"resume={run_dir}", "trainer.max_steps=40", check=False)[0]
    line = error_line(proc, "convae-train")
    assert f"checkpoint {last}: empty (0 bytes)" in line
