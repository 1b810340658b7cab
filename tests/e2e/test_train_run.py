"""convae-train end to end: real subprocesses, real Lightning, real TensorBoard files."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, events, results, run_script, scalars, train
from tensorboard.plugins.hparams import plugin_data_pb2

from convae.config.precision import resolve_precision

pytestmark = pytest.mark.slow  # every test here runs convae-train in a subprocess

SCALARS = ["train/loss", "val/loss", "val/psnr", "val/ssim", "test/loss", "test/psnr",
           "test/ssim", "test_clean/loss", "test_clean/psnr", "test_clean/ssim"]  # fmt: skip
RUN = ("data=noisy", "seed=5", "trainer.max_steps=60", "callbacks.artifact_images_every=2")


@pytest.fixture(scope="module")
def noisy_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two identical short noisy runs (60 steps = 3 epochs of the bundled digits)."""
    _, first = train(tmp_path_factory.mktemp("first"), *RUN)
    _, second = train(tmp_path_factory.mktemp("second"), *RUN)
    return first, second


def test_run_folder_is_under_outputs_runs_of_the_working_directory(noisy_runs):
    run_dir = noisy_runs[0]
    assert run_dir.parent.parent.name == "runs" and run_dir.parent.parent.parent.name == "outputs"
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "last.ckpt"
    assert any(p.name.startswith("best-") for p in (run_dir / "checkpoints").iterdir())


def test_event_file_holds_scalars_at_step_0_and_after_training(noisy_runs):
    acc = events(noisy_runs[0])
    assert set(SCALARS) <= set(acc.Tags()["scalars"])
    assert [s for s, _ in scalars(acc, "val/loss")] == [0, 19, 39, 59]
    assert [s for s, _ in scalars(acc, "train/loss")] == list(range(60))


def test_event_file_holds_the_reconstruction_grid_at_step_0_and_every_validation(noisy_runs):
    acc = events(noisy_runs[0])
    grids = acc.Images("images/reconstructions")
    assert [g.step for g in grids] == [0, 19, 39, 59]
    # noisy run: three rows (noisy input, reconstruction, target) of 16 digits with 1px padding
    assert (grids[0].height, grids[0].width) == (3 * 29 + 1, 16 * 29 + 1)


def test_hparams_hold_the_flattened_config_without_plumbing(noisy_runs):
    content = events(noisy_runs[0]).PluginTagToContent("hparams")
    # no experiment record: TensorBoard builds one from all runs, differing keys first
    assert set(content) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info.hparams
    assert session["model.upsample"].string_value == "nearest"
    assert session["model.depths"].string_value == "[16, 8, 8]"
    assert session["data.noise_std"].number_value == 0.5
    assert session["data.source_used"].string_value == "bundled"
    assert session["params"].number_value == 4385
    assert session["trainer.precision"].string_value == "auto"
    assert session["trainer.precision_used"].string_value == resolve_precision("auto", "cpu").value
    for key in ("loss", "optim.lr", "data.batch_size", "seed", "callbacks.checkpoint_monitor"):
        assert key in session
    for key in ("callbacks.artifact_digits", "callbacks.checkpoint_mode", "data.num_workers"):
        assert key not in session


def test_results_json_records_metrics_config_source_and_versions(noisy_runs):
    res = results(noisy_runs[0])
    assert res["status"] == "completed"
    assert set(SCALARS) - {"train/loss"} <= set(res["metrics"])
    assert res["data_source"] == "bundled" and res["params"] == 4385
    assert res["config"]["data"]["noise_std"] == 0.5 and res["config"]["seed"] == 5
    assert {"torch", "pytorch_lightning", "hydra"} <= set(res["versions"])
    assert 0 < res["train_time_s"] < res["wall_time_s"] and res["global_step"] == 60
    assert res["precision"] == resolve_precision("auto", "cpu").value  # what auto chose here
    # metrics in results.json are the ones logged last in TensorBoard
    acc = events(noisy_runs[0])
    assert scalars(acc, "test/loss")[-1][1] == pytest.approx(res["metrics"]["test/loss"])


def test_same_config_and_seed_give_identical_metrics(noisy_runs):
    assert results(noisy_runs[0])["metrics"] == results(noisy_runs[1])["metrics"]


def test_a_short_training_lowers_val_loss_well_below_step_0(noisy_runs):
    curve = scalars(events(noisy_runs[0]), "val/loss")
    assert curve[-1][1] < 0.75 * curve[0][1]


def test_help_lists_the_config_groups(tmp_path):
    out = run_script("convae-train", "--help", cwd=tmp_path).stdout
    for group in ("model", "upsample", "data", "optim", "trainer", "callbacks", "experiment"):
        assert f"{group}:" in out
    assert not (tmp_path / "outputs").exists()


def test_config_is_found_after_a_regular_non_editable_install(tmp_path):
    root = ROOT
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(root)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import sys; sys.argv = ['convae-train', '--cfg', 'job', 'experiment=seed_denoiser'];"
        "import convae.train; print(convae.train.__file__); convae.train.main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(site))
    assert "- 32" in proc.stdout and "noise_std: 0.5" in proc.stdout
    # Every module of the checkout is in the install (the packages are found, not listed).
    walk = ("import importlib, pkgutil, convae; names = [m.name for m in pkgutil.walk_packages("
            "convae.__path__, 'convae.') if not m.name.endswith('__main__')]; "
            "[importlib.import_module(n) for n in names]; print(*sorted(names))")  # fmt: skip
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", walk], cwd=tmp_path, capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    here = {".".join(("convae", *p.relative_to(root / "convae").with_suffix("").parts))
            for p in (root / "convae").rglob("*.py")
            if p.name not in ("__init__.py", "__main__.py")}  # fmt: skip
    assert here <= set(proc.stdout.split())


def test_checkerboard_scores_and_pictures_are_logged_from_step_0(noisy_runs):
    from convae.callbacks.checkerboard import IMAGE_TAGS, SCORES

    acc = events(noisy_runs[0])
    for score in SCORES:
        assert [s for s, _ in scalars(acc, f"val/{score}")] == [0, 19, 39, 59]
        assert len(scalars(acc, f"test/{score}")) == 1
    # every 2nd validation (39 is also the first past half the steps), the last validation,
    # then the test split after step 60
    for tag in IMAGE_TAGS:
        assert [i.step for i in acc.Images(tag)] == [0, 39, 59, 60]
    res = results(noisy_runs[0])["metrics"]
    for score in SCORES:
        assert f"val/{score}" in res and f"test/{score}" in res
