"""convae-board against a real TensorBoard server: asked over its own HTTP API, it serves
every logged image step of a run, where plain TensorBoard samples 10."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import BIN, events, run_script, scalars, train

TAG = "images/reconstructions"
VALIDATIONS = 12


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run with 12 validations (one after every second step) and the step-0 one."""
    _, folder = train(
        tmp_path_factory.mktemp("board"),
        f"trainer.max_steps={2 * VALIDATIONS}",
        "trainer.val_check_interval=2",
        "test=false",
    )
    return folder


def serve(*command: str) -> Iterator[str]:
    """Starts a TensorBoard command on a free port; yields its URL, stops it afterwards."""
    proc = subprocess.Popen(
        [*command, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline, url = time.time() + 60, None
        while url is None and time.time() < deadline and proc.stdout is not None:
            found = re.search(r"(http://localhost:\d+/)", proc.stdout.readline())
            url = found.group(1) if found else None
        assert url, "TensorBoard did not say where it serves"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def image_steps(url: str) -> list[int]:
    """The steps of TAG that the server offers, once it has loaded the run."""
    query = urllib.parse.urlencode({"run": ".", "tag": TAG})
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}data/plugin/images/images?{query}") as reply:
                steps = [entry["step"] for entry in json.load(reply)]
            if steps or time.time() > deadline:
                return steps
        except urllib.error.HTTPError:  # the run is not loaded yet
            if time.time() > deadline:
                raise
        time.sleep(0.5)


@pytest.mark.slow
def test_convae_board_serves_every_validation_step_from_step_0(run_dir: Path) -> None:
    logged = [step for step, _ in scalars(events(run_dir), "val/loss")]
    assert len(logged) == VALIDATIONS + 1 and logged[0] == 0
    for url in serve(str(BIN / "convae-board"), str(run_dir)):
        assert image_steps(url) == logged


@pytest.mark.slow
def test_plain_tensorboard_would_sample_the_steps(run_dir: Path) -> None:
    """Why convae-board exists: TensorBoard's default keeps 10 images per tag."""
    for url in serve(str(BIN / "tensorboard"), "--logdir", str(run_dir)):
        assert len(image_steps(url)) == 10


@pytest.mark.slow
def test_convae_board_refuses_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    proc = run_script("convae-board", str(tmp_path / "nope"), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is not a folder" in proc.stderr


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """Two jobs of two steps that differ in the decoder only."""
    cwd = tmp_path_factory.mktemp("sweep")
    run_script("convae-train", "-m", "model.upsample=nearest,transposed", "trainer.max_steps=2",
               "data.source=bundled",
               "test=false", "threads=1", cwd=cwd, OMP_NUM_THREADS="1")  # fmt: skip
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


def hparam_columns(url: str) -> list[dict]:
    """The HPARAMS table's columns as the server gives them to the browser, in its order."""
    request = urllib.request.Request(
        f"{url}data/plugin/hparams/experiment",
        data=json.dumps({"experimentName": ""}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.time() + 60
    while True:
        with urllib.request.urlopen(request) as reply:
            infos = json.load(reply).get("hparamInfos", [])
        if infos or time.time() > deadline:
            return infos
        time.sleep(0.5)


@pytest.mark.slow
def test_the_hparams_table_leads_with_the_keys_that_tell_runs_apart(sweep_dir: Path) -> None:
    for url in serve(str(BIN / "convae-board"), str(sweep_dir)):
        columns = hparam_columns(url)
    names = [c["name"] for c in columns]
    # The sweep's record (convae/sweeps/tensorboard.py): the keys that differ, the decoder's
    # parameter count with them; a key every job shares is no column.
    assert names == ["model.upsample", "params"]
    assert all(c.get("differs") is True for c in columns)
    assert not {"model.depths", "data.noise_std", "seed", "optim.lr"} & set(names)
