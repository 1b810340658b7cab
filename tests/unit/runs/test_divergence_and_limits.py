"""A diverged run never becomes a checkpoint and fails with one line (issue 27, item 6), and
the smaller items of 8: a failed write of a run file names it, a damaged last.ckpt with
nothing beside it restarts a sweep job instead of failing it at every attempt, and an image
declaring too many pixels is refused from its header, before any pixel is decoded."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import torch
from helpers import THREADS, results, run_on_small_tmpfs, run_script, train

from convae.data.idx import DataFileError

QUICK = ("callbacks.artifact_images_every=0",)


def diverged_line(proc) -> str:
    """The last stderr line of a diverged convae-train: the only error it reports."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    line = proc.stderr.strip().splitlines()[-1]
    assert errors == [line], proc.stderr
    assert line.startswith("convae-train: error: training diverged: "), proc.stderr
    return line


# --- item 6: NaN never becomes a checkpoint -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        # one step, no validation: the end-of-training save of last.ckpt met a model whose
        # weights are finite but whose every output overflows (was: last.ckpt written, then
        # "ValueError: cannot convert float NaN to integer" from the spectrum figure)
        ("trainer.max_steps=1",),
        # a validation after every step, pictures included: NaN outputs are drawn, then the
        # run stops before ModelCheckpoint saves a best-*.ckpt of them (was: the ValueError)
        (
            "trainer.max_steps=5",
            "trainer.val_check_interval=1",
            "callbacks.artifact_images_every=1",
        ),
        # the next training step sees the NaN loss first
        ("trainer.max_steps=40",),
    ],
    ids=["max_steps=1", "validate_every_step", "max_steps=40"],
)
def test_a_huge_learning_rate_leaves_no_checkpoint_and_one_line(tmp_path, overrides):
    proc, run_dir = train(tmp_path, "optim.lr=1e6", *overrides, check=False)
    line = diverged_line(proc)
    assert "optim.lr" in line and "step 1" in line
    assert list(run_dir.rglob("*.ckpt")) == []
    res = results(run_dir)
    assert res["status"] == "failed"
    assert res["error"] == line.removeprefix("convae-train: error: ")


def test_no_checkpoint_is_assembled_from_non_finite_weights_or_optimizer_state(compose):
    from convae.training.build import build_module
    from convae.training.module import TrainingDiverged

    module = build_module(compose("data.source=bundled"))
    module.on_save_checkpoint({})  # finite: nothing to say
    state = {"state": {0: {"exp_avg": torch.tensor([1.0, float("inf")])}}}
    with pytest.raises(TrainingDiverged, match=r"optimizer 0 param 0 exp_avg"):
        module.on_save_checkpoint({"optimizer_states": [state]})
    weight = next(module.net.parameters())
    with torch.no_grad():
        weight[0] = float("nan")
    with pytest.raises(TrainingDiverged) as err:
        module.on_save_checkpoint({})
    assert str(err.value).startswith("training diverged: the model's weights are NaN/inf")
    assert "net.encoder.0.weight" in str(err.value) and "optim.lr" in str(err.value)
    with pytest.raises(TrainingDiverged):
        module.on_validation_start()
    assert pickle.loads(pickle.dumps(err.value)).args == err.value.args


@pytest.mark.parametrize("bad", ["nan", "inf", "some_nan"])
def test_the_figures_draw_nan_and_inf_outputs(bad):
    from convae.metrics.spectrum_plots import ResidualFigure, SpectrumFigure, nice_ceiling

    targets = torch.rand(8, 1, 28, 28)
    if bad == "some_nan":
        outputs = torch.where(torch.rand_like(targets) < 0.5, targets, float("nan"))
    else:
        outputs = torch.full_like(targets, float(bad))
    for figure in (SpectrumFigure(), ResidualFigure()):
        picture = figure(outputs, targets)
        assert picture.dtype.name == "uint8" and picture.ndim == 3
        assert figure(targets, targets).shape == picture.shape  # and it draws on afterwards
    assert nice_ceiling(float("nan")) == nice_ceiling(float("inf")) == 1.0


# --- item 8: a failed write names the file -------------------------------------------------

FULL_DISK_SCRIPT = r"""
import json, os, sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from convae.config.errors import one_line
from convae.runs.results import write_json_atomic
from convae.tracking.loggers import build_loggers

mnt = Path(sys.argv[1])
run = mnt / "run"
run.mkdir()
tb, csv_logger = build_loggers(OmegaConf.create({"tensorboard": True, "csv": True}), run)
event_file = tb.experiment._get_file_writer().event_writer._file_name  # opened with room
fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
for chunk in (1 << 16, 1 << 12, 1):  # the filesystem, full to the last byte
    try:
        while True:
            os.write(fd, b"\0" * chunk)
    except OSError:
        pass
os.close(fd)
seen = {"event_file": event_file}


def attempt(name, write):
    try:
        write()
        seen[name] = None
    except Exception as err:
        seen[name] = {"type": type(err).__name__, "line": one_line(err),
                      "is_oserror": isinstance(err, OSError)}


attempt(str(run / "results.json"),
        lambda: write_json_atomic(run / "results.json", {"metrics": "x" * 100_000}))
attempt(str(run / "metrics.csv"),
        lambda: (csv_logger.log_metrics({"val/loss": 1.0}, step=0), csv_logger.save()))
attempt(event_file, lambda: (tb.experiment.add_image("x", np.random.rand(3, 256, 256), 0),
                             tb.experiment.flush()))
seen["left"] = sorted(p.name for p in run.iterdir())
print(json.dumps(seen))
"""


@pytest.mark.slow  # a Python subprocess (torch, Lightning) in a private mount namespace
def test_a_full_disk_names_the_run_file_that_could_not_be_written(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    (tmp_path / "full.py").write_text(FULL_DISK_SCRIPT)
    proc = run_on_small_tmpfs(mnt, tmp_path / "full.py", "")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr  # TensorBoard's thread says nothing
    seen = json.loads(proc.stdout.splitlines()[-1])
    event_file = seen.pop("event_file")
    assert seen.pop("left") == [Path(event_file).name, "metrics.csv"]  # no temporary file
    for path, failure in seen.items():
        assert failure is not None, path
        assert failure["type"] == "RunFileError" and failure["is_oserror"]
        assert (
            f"cannot write {path}: [Errno 28] No space left on device; free space on its "
            "filesystem" in failure["line"]
        ), failure


def test_a_run_file_error_survives_pickling():
    import errno

    from convae.runs.results import RunFileError

    err = RunFileError("/r/metrics.csv", OSError(errno.EROFS, "Read-only file system"))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RunFileError and str(back) == str(err) and back.errno == errno.EROFS
    assert str(err) == (
        "cannot write /r/metrics.csv: [Errno 30] Read-only file system; put the run on a "
        "writable filesystem"
    )


# --- item 8: a damaged last.ckpt with nothing beside it -------------------------------------


@pytest.mark.slow
def test_a_sweep_job_with_an_empty_last_checkpoint_and_no_best_starts_again(tmp_path):
    args = ("-m", "data.source=bundled", f"threads={THREADS}", "trainer.enable_progress_bar=false",
            "trainer.max_steps=5", *QUICK, "seed=0", "hydra.sweep.dir=sweep")  # fmt: skip
    run_script("convae-train", *args, cwd=tmp_path)
    (job,) = [p.parent for p in (tmp_path / "sweep").glob("*/results.json")]
    # as a job whose requeue was killed while saving its first last.ckpt after an interrupt
    record = results(job)
    (job / "results.json").write_text(json.dumps({**record, "status": "interrupted"}))
    last = job / "checkpoints" / "last.ckpt"
    last.write_bytes(b"")
    for best in job.glob("checkpoints/best-*.ckpt"):
        best.unlink()
    proc = run_script("convae-train", *args, "sweep_existing=continue", cwd=tmp_path)
    said = proc.stdout + proc.stderr + (job / "train.log").read_text()
    assert f"checkpoint {last}: empty (0 bytes)" in said and "starts again from step 0" in said
    res = results(job)
    assert res["status"] == "completed" and res["global_step"] == 5
    assert res["resumed_from"] is None


# --- item 8: image dimensions from the header ------------------------------------------------


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A valid greyscale PNG of one colour: tiny on disk, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """The issue's file: 164 KB declaring 13000x13000 pixels (0.7 GB to decode)."""
    return png_declaring(tmp_path_factory.mktemp("bomb") / "bomb.png", 13000, 13000)


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decoding fails the test."""
    from PIL import ImageFile

    def decode(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(
    bomb, tmp_path, no_decoding, recwarn
):
    from convae.data.folder import MAX_PIXELS, load_folder

    assert bomb.stat().st_size < 200_000 and MAX_PIXELS == 50_000_000
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(bomb, folder / "bomb.png")
    with pytest.raises(DataFileError) as err:
        load_folder(folder, image_size=28, grayscale=True, resize="resize", progress=False)
    assert str(err.value) == (
        f"{folder / 'bomb.png'}: 13000x13000 pixels (169 megapixels) declared in its header, "
        "more than the 50 megapixels an image may have (convae.data.folder.MAX_PIXELS); not "
        "decoded: downscale it or remove the file"
    )
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_the_cap_applies_to_every_image_convae_decodes(bomb, tmp_path, no_decoding):
    from convae.data.photos import read_photo

    with pytest.raises(DataFileError, match=r"bomb.png: 13000x13000 pixels \(169 megapixels\)"):
        read_photo(bomb, grayscale=False)
    beyond_pil = png_declaring(tmp_path / "beyond.png", 14000, 14000)  # PIL's own error
    from convae.data.folder import _read

    with pytest.raises(DataFileError, match=r"beyond.png: 196000000 pixels declared"):
        _read(beyond_pil, size=28, grayscale=True, resize="resize")


def test_an_image_at_the_cap_still_loads(tmp_path, monkeypatch):
    import convae.data.folder as folder_module

    monkeypatch.setattr(folder_module, "MAX_PIXELS", 64 * 64)
    folder = tmp_path / "images"
    folder.mkdir()
    png_declaring(folder / "a.png", 64, 64)
    arrays = folder_module.load_folder(
        folder, image_size=32, grayscale=True, resize="resize", progress=False
    )
    assert tuple(arrays.images.shape) == (1, 1, 32, 32)
    png_declaring(folder / "b.png", 65, 64)
    with pytest.raises(DataFileError, match=r"b.png: 65x64 pixels"):
        folder_module.load_folder(
            folder, image_size=32, grayscale=True, resize="resize", progress=False
        )
