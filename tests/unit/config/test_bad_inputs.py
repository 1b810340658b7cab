"""Inputs that used to be accepted, or refused with a raw error, a traceback or a page of
text (issue #16, part 6): each is refused in one short line naming the key, before anything
is written, or capped with a warning."""

import json
import logging
import os
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from helpers import events, results, run_script

from convae.config.errors import MAX_LINE_CHARS, ConfigError, one_line
from convae.config.schema import TrainConfig
from convae.config.validate import MAX_SEED, check_monitor, monitorable_tags, validate
from convae.hardware import available_cores, capped_threads
from convae.report.sweeps import read_job
from convae.runs.results import read_results
from convae.train import _remove_if_empty
from convae.train import main as train_main

LONG = "x" * 100_000
FAST = ["callbacks.artifact_images_every=0", "trainer.enable_progress_bar=false", "test=false"]


REFUSED = [
    (["+foo=1"], "foo"),
    (["+model.bar=2"], "model.bar"),
    (["+data.sorce=bundled"], "data.sorce"),
    (["+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs"),
    (["trainer.max_epochs=0"], "trainer.max_epochs"),
    (["trainer.max_steps=0"], "trainer.max_steps"),
    (["trainer.max_steps=-2"], "trainer.max_steps"),
    (["trainer.fast_dev_run=-1"], "trainer.fast_dev_run"),
    (["trainer.overfit_batches=1.5"], "trainer.overfit_batches"),
    (["trainer.profiler=cprofile"], "trainer.profiler"),
    (["logger.tensorboard=false", "logger.csv=false"], "logger"),
    (["model.depths=[1000000]"], "model.depths"),
    (["model.kernel_size=100001"], "model.kernel_size"),
    (["data.batch_size=100000000"], "data.batch_size"),
    (["seed=1099511627776"], "seed"),
    ([f"seed={MAX_SEED + 1}"], "seed"),
    (["data.split_seed=-1"], "data.split_seed"),
    ([f"data.source={LONG}"], "data.source"),
    ([f"data.root={LONG}", f"data.source={LONG}"], "data.source"),
    (["optim._target_=torch.optim.Adamm"], "optim._target_"),  # a typo, before data loads
    (["optim._target_=pathlib.Path.write_text"], "optim._target_"),
    (["optim._target_=torch.optim.lr_scheduler.StepLR"], "optim._target_"),
    (["+optim.capturable={_target_:builtins.open,_args_:[x,w]}"], "optim.capturable"),
    (["+optim._args_=[1]"], "optim._args_"),
    (["scheduler=step", "scheduler._target_=torch.optim.Adam"], "scheduler._target_"),
    (["scheduler=step", "+scheduler.gamma={_target_:builtins.open}"], "scheduler.gamma"),
    (["trainer.precision=fp8"], "trainer.precision"),
    (["trainer.precision=16-mixed", "trainer.accelerator=cpu"], "trainer.precision"),
    (["callbacks.checkpoint_monitor=val/los"], "callbacks.checkpoint_monitor"),
    (["callbacks.checkpoint_monitor=test/loss"], "callbacks.checkpoint_monitor"),
    (["optimized_metric=val/grid_p16"], "optimized_metric"),  # 3 stages: periods 2, 4, 8
]


@pytest.mark.parametrize("overrides,key", REFUSED, ids=[k for _, k in REFUSED])
def test_bad_inputs_are_refused_in_one_short_line_naming_the_key(compose, overrides, key):
    cfg = compose(*overrides, validate=False)  # Hydra accepts it: validate refuses it
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    line = one_line(err.value)
    assert line.startswith(f"{key}=") or line.startswith(f"{key}:"), line
    assert "\n" not in line and len(line) <= MAX_LINE_CHARS
    assert str(err.value) == line  # validate's own message is already capped


@pytest.fixture
def restored_logging():
    """Hydra configures logging for the job it runs (handlers on train.log and the console):
    run in this process, that setup is undone afterwards."""
    loggers = [logging.root, *(lg for lg in logging.Logger.manager.loggerDict.values()
                               if isinstance(lg, logging.Logger))]  # fmt: skip
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    yield
    for lg, handlers, level, propagate, disabled in saved:
        for handler in set(lg.handlers) - set(handlers):
            handler.close()
        lg.handlers[:], lg.level, lg.propagate, lg.disabled = handlers, level, propagate, disabled


@pytest.mark.parametrize("overrides,key", REFUSED, ids=[k for _, k in REFUSED])
def test_compose_train_and_convae_train_refuse_the_same_configs_with_the_same_line(
    compose, overrides, key, tmp_path, monkeypatch, capsys, restored_logging
):
    """One gate: the real convae-train entry point (in this process, so the whole table
    costs seconds) prints exactly the line compose_train raises, and exits 1."""
    with pytest.raises(ConfigError) as err:
        compose(*overrides)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # run_cli sets both; restored afterwards
    monkeypatch.setenv("_CONVAE_ONE_LINE_ERRORS", "0")
    monkeypatch.setattr("sys.argv", ["convae-train", *overrides])
    with pytest.raises(SystemExit) as exit_:
        train_main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"convae-train: error: {one_line(err.value)}\n"
    assert not (tmp_path / "outputs" / "runs").exists()  # no run folder left behind


def test_an_unknown_added_key_lists_every_key_of_the_schema(compose):
    with pytest.raises(ConfigError) as err:
        compose("+foo=1")
    # derived from the dataclass: a key added to TrainConfig is listed without more code
    for f in fields(TrainConfig):
        if f.name != "defaults":
            assert f.name in str(err.value)


def test_seeds_up_to_the_top_of_seed_everythings_range_are_accepted(compose):
    import pytorch_lightning as pl

    compose(f"seed={MAX_SEED}")  # validated
    assert pl.seed_everything(MAX_SEED, verbose=False) == MAX_SEED
    with pytest.raises(ValueError):  # what the seed check spares the user
        pl.seed_everything(MAX_SEED + 1, verbose=False)


def test_optimizer_arguments_can_still_be_added_to_optim(compose):
    import torch

    from convae.training.optimizers import build_optimizer

    cfg = compose("optim._target_=torch.optim.SGD", "+optim.momentum=0.9")  # validated
    opt = build_optimizer(cfg.optim, [torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9


def test_hydra_keys_and_unlimited_epochs_with_a_step_limit_pass(compose):
    cfg = compose("trainer.max_epochs=-1", "trainer.max_steps=10", with_hydra=True)
    assert "hydra" in cfg  # validate saw Hydra's own keys, and let them pass


def test_a_monitor_the_run_never_logs_is_refused_listing_the_logged_tags(compose):
    cfg = compose("callbacks.checkpoint_monitor=val/los", validate=False)
    with pytest.raises(ConfigError) as err:
        check_monitor(cfg)
    line = one_line(err.value)
    assert line.startswith("callbacks.checkpoint_monitor='val/los' is invalid")
    for tag in ("train/loss", "val/loss", "val/ssim", "val/cb2_incoh"):
        assert tag in line
    assert "test/" not in line  # test metrics exist only after training
    check_monitor(compose("callbacks.checkpoint_monitor=val/ssim"))


@pytest.mark.parametrize("value", ["val/los", "[val/loss,test/loss]", "[]"])
def test_an_optimized_metric_the_run_never_returns_is_refused(compose, value):
    cfg = compose(f"optimized_metric={value}", validate=False)
    with pytest.raises(ConfigError) as err:
        check_monitor(cfg)
    line = one_line(err.value)
    assert line.startswith("optimized_metric=") and "val/cb2_incoh" in line, line
    check_monitor(compose("optimized_metric=[val/loss,val/cb2_incoh]"))


def test_one_line_caps_raw_and_composition_errors(compose):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        compose(f"data.batch_size={'a' * 100_000}", validate=False)
    line = one_line(err.value)
    assert line.startswith("data.batch_size='aaa") and len(line) <= MAX_LINE_CHARS
    raw = one_line(RuntimeError(LONG))
    assert len(raw) <= MAX_LINE_CHARS and raw.endswith("(HYDRA_FULL_ERROR=1 shows the traceback)")


def test_threads_above_the_cores_are_capped_with_a_warning(caplog):
    cores = available_cores()
    with caplog.at_level(logging.WARNING, logger="convae"):
        assert capped_threads(cores) == cores
        assert not caplog.records
        assert capped_threads(1000) == cores
    (record,) = caplog.records
    assert "threads=1000" in record.getMessage() and "\n" not in record.getMessage()


SHAPES = [("null", "null"), ("[]", "a list"), ('"done"', "a string"), ("3", "a number")]


@pytest.mark.parametrize("text,name", SHAPES, ids=[s for s, _ in SHAPES])
def test_results_json_of_the_wrong_shape_is_a_run_of_unknown_state(tmp_path, caplog, text, name):
    (tmp_path / "results.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="convae"):
        assert read_results(tmp_path) == {}
        assert read_results(tmp_path) == {}
    (record,) = caplog.records  # said once, however often it is read
    assert f"results.json holds {name}, not an object" in record.getMessage()
    job = read_job(tmp_path.parent, tmp_path)
    assert (job.status, job.error) == ("unreadable", f"results.json holds {name}, not an object")


def test_a_rejected_run_folder_goes_with_its_empty_parents_but_not_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "runs" / "2026-12-03" / "10-00-00.000001"
    (run / ".hydra").mkdir(parents=True)
    (run / "train.log").write_text("")
    beside = run.parent / "10-00-00.000002"
    beside.mkdir()
    _remove_if_empty(run)
    assert not run.exists() and beside.is_dir()  # another run's date folder stays
    beside.rmdir()
    (run / ".hydra").mkdir(parents=True)
    _remove_if_empty(run)
    assert list((tmp_path / "outputs").iterdir()) == []
    kept = tmp_path / "outputs" / "runs" / "d" / "t"
    (kept / "checkpoints").mkdir(parents=True)
    _remove_if_empty(kept)  # holds more than Hydra's files: not a rejected run
    assert (kept / "checkpoints").is_dir()


# --- the real convae-train, in subprocesses ---------------------------------------------


def convae_train(cwd: Path, *overrides: str, check: bool = True):
    return run_script("convae-train", "data.source=bundled", *FAST, *overrides, cwd=cwd,
                      check=check, timeout=300)  # fmt: skip


CLI_REFUSED = [
    ("callbacks.checkpoint_monitor=val/los", "callbacks.checkpoint_monitor"),
    ("+foo=1", "foo"),
    ("model.depths=[1000000]", "model.depths"),
    (f"data.source={LONG}", "data.source"),
]


@pytest.mark.slow
@pytest.mark.parametrize("override,key", CLI_REFUSED, ids=[k for _, k in CLI_REFUSED])
def test_a_rejected_config_exits_1_in_one_line_and_leaves_no_folder(tmp_path, override, key):
    proc = convae_train(tmp_path, override, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert len(lines) == 1, proc.stderr
    prefix = "convae-train: error: "
    assert lines[0].startswith(f"{prefix}{key}") and len(lines[0]) <= len(prefix) + MAX_LINE_CHARS
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs" / "runs").exists()


@pytest.mark.slow
def test_threads_1000_runs_on_the_available_cores_and_records_them(tmp_path, compose):
    proc = convae_train(tmp_path, "threads=1000", "trainer.max_steps=2")
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "threads=1000" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")
    assert results(run)["config"]["threads"] == len(os.sched_getaffinity(0))
    # every tag checkpoint_monitor may name is one the run really logged
    logged = set(events(run).Tags()["scalars"])
    assert set(monitorable_tags(compose())) <= logged


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("finished")
    convae_train(cwd, "trainer.max_steps=2", "threads=1")
    (run,) = (cwd / "outputs" / "runs").glob("*/*")
    return run


@pytest.mark.slow
def test_convae_report_shows_a_wrongly_shaped_results_json_as_a_failed_job(finished_run, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished_run, sweep / "seed=0")
    bad = sweep / "seed=1"
    (bad / ".hydra").mkdir(parents=True)
    (bad / "results.json").write_text("null")
    proc = run_script("convae-report", str(sweep), "--out", str(tmp_path / "report"),
                      cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "`seed=1`: results.json holds null, not an object" in report


@pytest.mark.slow
def test_resume_of_a_run_whose_results_json_is_a_list_warns_once_and_goes_on(finished_run):
    (finished_run / "results.json").write_text("[]")
    proc = run_script("convae-train", f"resume={finished_run}", "trainer.max_steps=4",
                      cwd=finished_run.parents[3], check=False, timeout=300)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in output
    warned = [line for line in output.splitlines() if "holds a list, not an object" in line]
    assert len(warned) == 1
    done = json.loads((finished_run / "results.json").read_text())
    assert (done["status"], done["global_step"]) == ("completed", 4)
