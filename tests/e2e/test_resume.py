"""SIGTERM mid-training, then resume=: same folder, same TensorBoard run, same numbers."""

import csv
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers import BIN, THREADS, events, results, run_script, scalars, train, wait_for

pytestmark = pytest.mark.slow  # every test here runs convae-train in a subprocess

ARGS = ["data.source=bundled", "data=noisy", "trainer.max_steps=100",
        "callbacks.artifact_images_every=3", f"threads={THREADS}",
        "trainer.enable_progress_bar=false"]  # fmt: skip


def signal_in_second_epoch(command: list[str], cwd: Path, signum: int) -> int:
    """Starts ``command`` in ``cwd`` and sends ``signum`` as soon as the first epoch's
    checkpoint save has begun (its temporary file or a checkpoint is in ``checkpoints/``);
    returns the exit code. The run stops at the end of the first training batch after the
    signal (GracefulInterrupt), and the first after that save is the second epoch's first:
    the stop lands there (step 21 of ARGS' 20-step epochs, 11 in the DDP test's 10-step
    ones), or a batch or two later should this process be slow to send, whatever the
    machine's speed. A fixed sleep after the save could reach the next epoch's boundary."""
    with tempfile.TemporaryFile() as err:  # not a pipe: a full one would block the run
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(
                lambda: list(cwd.glob("outputs/runs/*/*/checkpoints/*")),
                proc,
                detail=lambda: err.seek(0) or err.read().decode(errors="replace"),
            )
            proc.send_signal(signum)
            return proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def kill_in_second_epoch(cwd: Path, *args: str) -> tuple[Path, dict]:
    """convae-train stopped by SIGTERM in its second epoch: the run folder and results.json."""
    cwd.mkdir()
    command = [str(BIN / "convae-train"), *args]
    assert signal_in_second_epoch(command, cwd, signal.SIGTERM) == 143
    run_dir = next(cwd.glob("outputs/runs/*/*"))
    interrupted = json.loads((run_dir / "results.json").read_text())
    assert interrupted["status"] == "interrupted"
    return run_dir, interrupted


def test_a_run_killed_with_sigterm_resumes_to_the_same_metrics_and_lr_schedule(tmp_path):
    """With scheduler=cosine: the schedule's state is in the checkpoint too."""
    args = [*ARGS, "scheduler=cosine"]
    killed = tmp_path / "killed"
    run_dir, interrupted = kill_in_second_epoch(killed, *args)
    assert 20 <= interrupted["global_step"] < 100
    # The training time before the kill is in the checkpoint (Lightning's Timer): make it
    # an hour, and the resumed run's train_time_s counts it.
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    (timer,) = [state for key, state in ckpt["callbacks"].items() if key.startswith("Timer")]
    assert 0 < timer["time_elapsed"]["train"] <= interrupted["train_time_s"]
    timer["time_elapsed"]["train"] = 3600.0
    torch.save(ckpt, last)

    train(killed, f"resume={run_dir}")
    assert 3600 < results(run_dir)["train_time_s"] < 3600 + results(run_dir)["wall_time_s"]
    # The run's own config files stay; the resume's composition goes beside them.
    assert "resume=" not in (run_dir / ".hydra" / "overrides.yaml").read_text()
    (resumed,) = (run_dir / ".hydra").glob("resume-*/overrides.yaml")
    assert f"resume={run_dir}" in resumed.read_text()
    _, straight = train(tmp_path, *args[:4], "scheduler=cosine")

    assert results(run_dir)["metrics"] == results(straight)["metrics"]
    assert [p.name for p in killed.glob("outputs/runs/*/*")] == [run_dir.name]
    acc = events(run_dir)
    assert [s for s, _ in scalars(acc, "train/loss")] == list(range(100))
    assert scalars(acc, "train/loss") == scalars(events(straight), "train/loss")
    # The picture counter is in the checkpoint: pictures land on the straight run's steps
    # (step 0, the 3rd validation, also the first past the middle, the last validation and
    # the test split), not restarted from the resume.
    steps = [e.step for e in acc.Images("artifacts/spectrum")]
    straight_steps = [e.step for e in events(straight).Images("artifacts/spectrum")]
    assert steps == straight_steps == [0, 59, 99, 100]
    # metrics.csv (logger=tensorboard_csv, the default) keeps the rows from before the kill
    assert csv_column(run_dir, "train/loss") == csv_column(straight, "train/loss")
    assert csv_column(run_dir, "val/loss") == csv_column(straight, "val/loss")
    lrs = scalars(acc, "lr")
    assert lrs == scalars(events(straight), "lr") and len(lrs) == 100
    assert lrs[0][1] == pytest.approx(1e-3) and lrs[-1][1] < 1e-6  # cosine over 100 steps


def csv_column(run_dir, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a tag in the run's metrics.csv, in file order."""
    with (run_dir / "metrics.csv").open(newline="") as file:
        return [(int(r["step"]), float(r[tag])) for r in csv.DictReader(file) if r[tag]]


def test_a_ddp_run_killed_mid_epoch_resumes_to_the_straight_runs_metrics(tmp_path):
    """Two CPU processes, 10 steps an epoch: each resumes on its own share of the epoch."""
    args = ["data.source=bundled", "trainer=ddp", "trainer.devices=2", "threads=1",
            "trainer.max_steps=40", "callbacks.artifact_images_every=0",
            "trainer.enable_progress_bar=false"]  # fmt: skip
    run_dir, interrupted = kill_in_second_epoch(tmp_path / "killed", *args)
    assert interrupted["global_step"] % 10 != 0  # mid-epoch, not at a boundary
    run_script("convae-train", *args, f"resume={run_dir}", cwd=tmp_path / "killed")
    (tmp_path / "straight").mkdir()
    run_script("convae-train", *args, cwd=tmp_path / "straight")
    straight = next((tmp_path / "straight").glob("outputs/runs/*/*"))
    assert results(run_dir)["global_step"] == results(straight)["global_step"] == 40
    assert results(run_dir)["metrics"] == results(straight)["metrics"]


def test_a_requeued_job_resumes_from_the_last_checkpoint_in_its_folder(tmp_path):
    """What a SLURM requeue does: the same command again, into the same folder."""
    args = ["upsample=bilinear", "callbacks.artifact_images_every=0"]
    (tmp_path / "job").mkdir()
    (tmp_path / "straight").mkdir()
    _, run_dir = train(tmp_path / "job", *args, "trainer.max_steps=40")
    (run_dir / "results.json").unlink()  # killed before it could write anything
    train(tmp_path / "job", *args, "trainer.max_steps=60", f"hydra.run.dir={run_dir}")
    _, straight = train(tmp_path / "straight", *args, "trainer.max_steps=60")
    res = results(run_dir)
    assert res["resumed_from"] == "checkpoints/last.ckpt" and res["global_step"] == 60
    assert res["metrics"] == results(straight)["metrics"]
    assert [s for s, _ in scalars(events(run_dir), "train/loss")] == list(range(60))


LAUNCHER = """
import signal, sys
from pathlib import Path

def requeue(signum, frame):  # what submitit's USR2 handler does: requeue, then exit
    Path("requeued").write_text("yes")
    sys.exit(3)

signal.signal(signal.SIGUSR2, requeue)
from convae.train import main
sys.argv[0] = "convae-train"
main()
"""


def test_a_launchers_usr2_handler_runs_after_the_exact_step_is_saved(tmp_path):
    """submitit at the time limit: SIGUSR2, whose handler requeues the job and exits."""
    (tmp_path / "launch.py").write_text(LAUNCHER)
    command = [str(BIN / "python"), "launch.py", *ARGS]
    assert signal_in_second_epoch(command, tmp_path, signal.SIGUSR2) == 3
    assert (tmp_path / "requeued").read_text() == "yes"
    last = torch.load(next(tmp_path.glob("outputs/runs/*/*/checkpoints/last.ckpt")),
                      weights_only=True)  # fmt: skip
    assert 20 < last["global_step"] < 40  # the step USR2 arrived at, not the epoch's start


# 4,000 bundled training digits in batches of 2,000: two steps an epoch, six epochs.
EPOCHS = ["data.batch_size=2000", "callbacks.artifact_images_every=0", "test=false"]


@pytest.fixture(scope="module")
def six_epochs_straight(tmp_path_factory) -> Path:
    _, run_dir = train(tmp_path_factory.mktemp("straight"), *EPOCHS, "trainer.max_epochs=6")
    return run_dir


@pytest.mark.parametrize(
    ("first", "then"),
    [
        # the case: max_steps set, max_epochs the limit that stops, stopped at an
        # epoch's end (what a kill right after that epoch's checkpoint leaves)
        (["trainer.max_steps=1000", "trainer.max_epochs=2"], ["trainer.max_epochs=6"]),
        # a finished epoch-limited run extended
        (["trainer.max_epochs=2"], ["trainer.max_epochs=6"]),
        # a step-limited run whose limit is raised, then max_epochs stops it
        (["trainer.max_steps=5", "trainer.max_epochs=6"], ["trainer.max_steps=1000"]),
    ],
    ids=["max_steps_set_max_epochs_stops", "max_epochs_raised", "max_steps_raised"],
)
def test_a_resume_reaches_the_straight_runs_step_and_metrics_whichever_limit_stops_it(
    tmp_path, six_epochs_straight, first, then
):
    straight = six_epochs_straight
    _, run_dir = train(tmp_path, *EPOCHS, *first)
    train(tmp_path, *EPOCHS, *then, f"resume={run_dir}")

    assert results(straight)["global_step"] == 12
    assert results(run_dir)["global_step"] == 12
    assert results(run_dir)["metrics"] == results(straight)["metrics"]
    losses = scalars(events(run_dir), "train/loss")
    assert [s for s, _ in losses] == list(range(12))
    assert losses == scalars(events(straight), "train/loss")


def test_a_run_with_extra_optimizer_arguments_resumes_with_them(tmp_path):
    """optim is the one extension point: +optim.<kwarg> survives the checkpoint's config."""
    args = ["optim._target_=torch.optim.SGD", "+optim.momentum=0.9", *EPOCHS]
    _, run_dir = train(tmp_path, *args, "trainer.max_steps=4")
    train(tmp_path, "trainer.max_steps=6", f"resume={run_dir}")
    res = results(run_dir)
    assert res["global_step"] == 6 and res["config"]["optim"]["momentum"] == 0.9


class _SigtermInTest(pl.Callback):
    """SIGTERM to this process as the test stage starts, as a scheduler could send it."""

    def on_test_batch_start(self, *args) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupt_in_the_test_stage_says_how_to_resume(tmp_path, compose, torch_threads):
    """The fit is over and its last.ckpt saved: the record names it, not "run it again"."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from convae.tracking.loggers import build_loggers
    from convae.training.build import build_datamodule, build_module, build_trainer
    from convae.training.run import record_interrupt

    torch_threads(1)
    cfg = compose("data.source=bundled", "trainer.max_steps=2", "data.eval_batch_size=100",
                  "callbacks.latent_space=false",
                  "trainer.enable_progress_bar=false")  # fmt: skip
    dm, module = build_datamodule(cfg), build_module(cfg)
    dm.setup()
    trainer = build_trainer(cfg, tmp_path, build_loggers(cfg.logger, tmp_path))
    trainer.fit(module, datamodule=dm)
    trainer.callbacks.append(_SigtermInTest())
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SIGTERMException):
            trainer.test(module, datamodule=dm)
    finally:
        signal.signal(signal.SIGTERM, previous)
    why = record_interrupt(cfg, tmp_path, trainer, [], train_time=1.0)
    assert f"resume with convae-train resume={tmp_path}" in why
    record = results(tmp_path)
    assert record["status"] == "interrupted" and record["checkpoint"] == "checkpoints/last.ckpt"
    assert record["resume"] == f"convae-train resume={tmp_path}"
