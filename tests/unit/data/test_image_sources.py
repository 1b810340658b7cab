"""data.source=folder and data.source=cifar10: real PNG/JPEG files written with PIL and real
CIFAR-format pickles written with numpy and pickle, read back pixel for pixel; every bad
input fails with one line naming the file or folder."""

from __future__ import annotations

import io
import logging
import os
import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convae.data.cifar import CIFAR_FOLDER, load_cifar10
from convae.data.folder import load_folder
from convae.data.idx import DataFileError

RNG = np.random.default_rng(0)


def write_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(path)
    return pixels


def rgb(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- data.source=folder ---------------------------------------------------------------------


def test_rgb_pngs_round_trip_exactly_in_relative_path_order(tmp_path):
    b = write_png(tmp_path / "b.png", rgb(8, 8))
    a2 = write_png(tmp_path / "a" / "2.PNG", rgb(8, 8))
    a1 = write_png(tmp_path / "a" / "1.png", rgb(8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_folder(tmp_path, image_size=8, grayscale=False, resize="none")
    assert data.source == "folder" and data.images.dtype == torch.uint8
    assert data.images.shape == (3, 3, 8, 8)
    for got, want in zip(data.images, (a1, a2, b), strict=True):
        assert torch.equal(got, torch.from_numpy(want).permute(2, 0, 1))
    assert data.labels is None and data.val_images is None and data.test_images is None


def test_grayscale_gives_one_channel_with_exact_values(tmp_path):
    grey = write_png(tmp_path / "grey.png", RNG.integers(0, 256, (6, 6), dtype=np.uint8))
    colour = write_png(tmp_path / "rgb.png", rgb(6, 6))
    data = load_folder(tmp_path, image_size=6, grayscale=True, resize="none")
    assert data.images.shape == (2, 1, 6, 6)
    assert torch.equal(data.images[0, 0], torch.from_numpy(grey))
    luma = np.asarray(Image.fromarray(colour).convert("L"))
    assert torch.equal(data.images[1, 0], torch.tensor(luma))


def test_grey_file_read_as_rgb_repeats_its_values(tmp_path):
    grey = write_png(tmp_path / "grey.png", RNG.integers(0, 256, (4, 4), dtype=np.uint8))
    data = load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert torch.equal(data.images[0], torch.from_numpy(grey).expand(3, 4, 4))


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits_not_clipped(tmp_path):
    wide = np.array([[0, 32768, 65535, 1000], [40000, 256, 511, 512]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert Image.open(tmp_path / "wide.png").mode.startswith("I")
    data = load_folder(tmp_path, image_size=2, grayscale=True, resize="crop")
    assert data.images[0, 0].tolist() == [[128, 255], [1, 1]]  # centre 2x2, value >> 8


def test_palette_and_rgba_files_become_rgb(tmp_path):
    pixels = rgb(4, 4)
    write_png(tmp_path / "a_rgba.png", pixels, "RGBA")
    palette = Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "b_palette.png")
    data = load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert torch.equal(data.images[0], torch.from_numpy(pixels).permute(2, 0, 1))
    want = np.asarray(palette.convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(data.images[1], torch.tensor(want))


def test_jpeg_files_are_read_whatever_the_suffix_case(tmp_path):
    flat = np.full((8, 8, 3), (200, 40, 90), dtype=np.uint8)
    for name in ("a.jpg", "b.JPEG", "c.Jpg"):
        Image.fromarray(flat).save(tmp_path / name, format="JPEG", quality=95)
    Image.fromarray(flat).save(tmp_path / "d.gif")  # not PNG or JPEG: left out
    data = load_folder(tmp_path, image_size=8, grayscale=False, resize="none")
    assert data.images.shape == (3, 3, 8, 8)
    error = (data.images.int() - torch.tensor([200, 40, 90]).view(3, 1, 1)).abs()
    assert error.max() <= 3  # JPEG is lossy, but a flat colour survives it closely


def test_exif_orientation_is_applied_so_images_load_upright(tmp_path):
    pixels = rgb(8, 8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the viewer turns the stored pixels 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif)
    data = load_folder(tmp_path, image_size=8, grayscale=False, resize="none")
    upright = np.rot90(pixels, k=-1)  # clockwise
    assert torch.equal(data.images[0], torch.from_numpy(upright.copy()).permute(2, 0, 1))


def test_hidden_files_and_folders_are_not_read_as_images(tmp_path):
    kept = write_png(tmp_path / "a.png", rgb(8, 8))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble metadata")
    write_png(tmp_path / ".ipynb_checkpoints" / "a-checkpoint.png", rgb(8, 8))
    data = load_folder(tmp_path, image_size=8, grayscale=False, resize="none")
    assert data.images.shape == (1, 3, 8, 8)
    assert torch.equal(data.images[0], torch.from_numpy(kept).permute(2, 0, 1))


@pytest.mark.parametrize("size", [(64, 48), (48, 64), (33, 50), (20, 10), (32, 32)])
def test_resize_mode_matches_torchvision_resize_then_centre_crop(tmp_path, size):
    from torchvision import transforms

    pixels = write_png(tmp_path / "x.png", rgb(size[1], size[0]))
    data = load_folder(tmp_path, image_size=32, grayscale=False, resize="resize")
    assert data.images.shape == (1, 3, 32, 32)
    reference = transforms.Compose(
        [transforms.Resize(32, transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(32)]
    )(Image.fromarray(pixels))
    assert torch.equal(data.images[0], torch.tensor(np.asarray(reference)).permute(2, 0, 1))


def test_crop_mode_keeps_the_centre_unscaled(tmp_path):
    pixels = write_png(tmp_path / "x.png", rgb(37, 40))  # 40 wide, 37 high
    data = load_folder(tmp_path, image_size=32, grayscale=False, resize="crop")
    centre = pixels[2:34, 4:36]  # round(5 / 2) = 2 rows, 4 columns off each edge
    assert torch.equal(data.images[0], torch.from_numpy(centre).permute(2, 0, 1))


def test_train_val_test_subfolders_give_the_splits(tmp_path, caplog):
    train = [write_png(tmp_path / "train" / f"{i}.png", rgb(4, 4)) for i in range(3)]
    val = write_png(tmp_path / "val" / "deep" / "v.png", rgb(4, 4))
    test = [write_png(tmp_path / "test" / f"{i}.png", rgb(4, 4)) for i in range(2)]
    write_png(tmp_path / "stray.png", rgb(9, 9))  # would fail with resize=none if read
    write_png(tmp_path / "other" / "x.png", rgb(9, 9))
    with caplog.at_level(logging.WARNING, logger="convae.data.folder"):
        data = load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert [len(data.images), len(data.val_images), len(data.test_images)] == [3, 1, 2]
    assert torch.equal(data.images[2], torch.from_numpy(train[2]).permute(2, 0, 1))
    assert torch.equal(data.val_images[0], torch.from_numpy(val).permute(2, 0, 1))
    assert torch.equal(data.test_images[1], torch.from_numpy(test[1]).permute(2, 0, 1))
    assert data.val_labels is None and data.test_labels is None
    [warning] = caplog.messages
    assert "2 PNG/JPEG files" in warning and "ignored" in warning


def test_train_subfolder_alone_leaves_val_and_test_to_the_data_module(tmp_path):
    write_png(tmp_path / "train" / "a.png", rgb(4, 4))
    data = load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert len(data.images) == 1 and data.val_images is None and data.test_images is None


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path / "nope", image_size=4, grayscale=False, resize="none")
    assert f"data.root={tmp_path / 'nope'}: no such folder" in one_line(err)


def test_folder_without_images_is_named(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("hello")
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert one_line(err) == f"data.root={tmp_path}: no PNG or JPEG files (searched recursively)"


def test_empty_train_subfolder_is_named(tmp_path):
    (tmp_path / "train").mkdir()
    write_png(tmp_path / "test" / "a.png", rgb(4, 4))
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path, image_size=4, grayscale=False, resize="none")
    assert f"{tmp_path}/train: no PNG or JPEG files" in one_line(err)


@pytest.mark.parametrize("content", ["text", "truncated"])
def test_unreadable_file_is_named_with_the_reason(tmp_path, content):
    write_png(tmp_path / "a.png", rgb(16, 16))
    bad = tmp_path / "b.png"
    if content == "text":
        bad.write_text("this is not an image\n")
    else:
        whole = (tmp_path / "a.png").read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path, image_size=16, grayscale=False, resize="none")
    assert one_line(err).startswith(f"{bad}: not a readable PNG or JPEG image (")


def test_folder_of_mixed_sizes_without_resize_names_the_file(tmp_path):
    write_png(tmp_path / "a.png", rgb(32, 32))
    write_png(tmp_path / "b.png", rgb(48, 64))
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path, image_size=32, grayscale=False, resize="none")
    assert one_line(err) == (
        f"{tmp_path / 'b.png'}: 64x48 pixels, expected 32x32 (data.image_size); "
        "set data.resize=resize or data.resize=crop"
    )


def test_image_too_small_to_crop_is_named(tmp_path):
    write_png(tmp_path / "a.png", rgb(40, 40))
    write_png(tmp_path / "small.png", rgb(40, 31))
    with pytest.raises(DataFileError) as err:
        load_folder(tmp_path, image_size=32, grayscale=False, resize="crop")
    message = one_line(err)
    assert message.startswith(f"{tmp_path / 'small.png'}: 31x40 pixels, smaller than 32x32")


def test_progress_bar_only_for_large_folders(tmp_path, capsys):
    for i in range(501):
        write_png(tmp_path / f"{i:03d}.png", np.full((2, 2), i % 256, dtype=np.uint8))
    data = load_folder(tmp_path, image_size=2, grayscale=True, resize="none")
    assert data.images.shape == (501, 1, 2, 2)
    assert "501/501" in capsys.readouterr().err
    load_folder(tmp_path, image_size=2, grayscale=True, resize="none", progress=False)
    (tmp_path / "000.png").unlink()
    load_folder(tmp_path, image_size=2, grayscale=True, resize="none")  # 500: no bar
    assert capsys.readouterr().err == ""


# --- data.source=cifar10 --------------------------------------------------------------------


def write_batch(path: Path, data: object, labels: object) -> None:
    batch = {b"batch_label": b"a batch", b"data": data, b"labels": labels, b"filenames": []}
    path.write_bytes(pickle.dumps(batch, protocol=2))  # the protocol of the real files


def write_cifar(root: Path, train_n: int = 4, test_n: int = 3) -> tuple[np.ndarray, ...]:
    """Five train batches of ``train_n`` images and a test batch of ``test_n``; returns the
    rows and labels written, train then test."""
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True)
    rows = RNG.integers(0, 256, (5 * train_n + test_n, 3072), dtype=np.uint8)
    labels = RNG.integers(0, 10, 5 * train_n + test_n)
    for i in range(5):
        part = slice(i * train_n, (i + 1) * train_n)
        write_batch(folder / f"data_batch_{i + 1}", rows[part], labels[part].tolist())
    write_batch(folder / "test_batch", rows[5 * train_n :], labels[5 * train_n :].tolist())
    n = 5 * train_n
    return rows[:n], labels[:n], rows[n:], labels[n:]


def test_cifar_batches_are_read_as_rgb_planes_with_their_labels(tmp_path):
    rows, labels, test_rows, test_labels = write_cifar(tmp_path)
    data = load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    assert data.source == "cifar10" and data.images.dtype == torch.uint8
    assert data.images.shape == (20, 3, 32, 32) and data.test_images.shape == (3, 3, 32, 32)
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert data.test_labels.tolist() == test_labels.tolist()
    assert data.val_images is None and data.val_labels is None
    k, c, y, x = 13, 2, 5, 30  # row: 1024 red values, then green, then blue, each row-major
    assert data.images[k, c, y, x] == rows[k, c * 1024 + y * 32 + x]
    assert torch.equal(data.test_images.reshape(3, -1), torch.from_numpy(test_rows))


class Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 did (BINSTRING) and globals by their Python 2 names:
    the real batches were pickled by Python 2 and numpy 1 (numpy.core.multiarray)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        size = bytes([len(data)]) if len(data) < 256 else struct.pack("<i", len(data))
        self.write((pickle.SHORT_BINSTRING if len(data) < 256 else pickle.BINSTRING) + size)
        self.write(data)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_python2_str


def test_cifar_batches_pickled_by_python_2_and_numpy_1_load(tmp_path):
    rows, labels, *_ = write_cifar(tmp_path)
    first = tmp_path / CIFAR_FOLDER / "data_batch_1"
    buffer = io.BytesIO()
    batch = {"batch_label": "x", "data": rows[:4], "labels": labels[:4].tolist()}
    Python2Pickler(buffer, protocol=2).dump(batch)
    raw = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"_codecs" not in raw and b"numpy.core.multiarray" in raw
    first.write_bytes(raw)
    data = load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    assert torch.equal(data.images.reshape(20, -1), torch.from_numpy(rows))
    assert data.labels.tolist() == labels.tolist()


def test_cifar_without_batches_and_no_download_names_the_folder(tmp_path):
    with pytest.raises(DataFileError) as err:
        load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    folder = tmp_path / CIFAR_FOLDER
    assert one_line(err) == f"{folder}: no CIFAR-10 batches there (data_batch_1..5, test_batch)"
    assert list(tmp_path.iterdir()) == []


def test_cifar_missing_batch_is_named_and_not_downloaded(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / CIFAR_FOLDER / "data_batch_3").unlink()
    with pytest.raises(DataFileError) as err:
        load_cifar10(tmp_path, allow_download=True, timeout_s=1)
    assert one_line(err).startswith(f"{tmp_path / CIFAR_FOLDER / 'data_batch_3'}: file not found")


@pytest.mark.parametrize(
    ("data", "labels", "complaint"),
    [
        (np.zeros((4, 3000), np.uint8), [0] * 4, "shape (4, 3000), expected (n, 3072)"),
        (np.zeros((4, 3072), np.float32), [0] * 4, "not a 2-d uint8 array"),
        (np.zeros((4, 3072), np.uint8), [0] * 3, "4 images but 3 labels"),
        (np.zeros((4, 3072), np.uint8), [0, 1, 10, 2], "labels outside 0..9"),
        (np.zeros((4, 3072), np.uint8), [-1, 1, 0, 2], "labels outside 0..9"),
    ],
)
def test_inconsistent_cifar_batch_is_named(tmp_path, data, labels, complaint):
    write_cifar(tmp_path)
    bad = tmp_path / CIFAR_FOLDER / "data_batch_2"
    write_batch(bad, data, labels)
    with pytest.raises(DataFileError) as err:
        load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    assert one_line(err).startswith(f"{bad}: ") and complaint in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "not a dict", "no labels key"])
def test_corrupt_cifar_batch_is_named(tmp_path, damage):
    write_cifar(tmp_path)
    bad = tmp_path / CIFAR_FOLDER / "test_batch"
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:5000])
    elif damage == "not a dict":
        bad.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    else:
        bad.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=2))
    with pytest.raises(DataFileError) as err:
        load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    assert one_line(err).startswith(f"{bad}: ")


class _Touch:
    """Unpickling this would run ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_cifar_pickle_is_refused_without_running_it(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    bad = tmp_path / CIFAR_FOLDER / "data_batch_1"
    write_batch(bad, _Touch(marker), [0])
    with pytest.raises(DataFileError) as err:
        load_cifar10(tmp_path, allow_download=False, timeout_s=1)
    assert one_line(err).startswith(f"{bad}: refused to unpickle ")
    assert "system" in str(err.value)
    assert not marker.exists()


def test_cifar_download_moves_complete_batches_into_place(tmp_path, monkeypatch):
    import torchvision.datasets

    seen = {}

    class FakeCIFAR10:  # what torchvision leaves after a download: the unpacked batches
        def __init__(self, root: str, train: bool, download: bool) -> None:
            seen.update(timeout=socket.getdefaulttimeout(), root=root)
            write_cifar(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    (tmp_path / CIFAR_FOLDER).mkdir()  # an empty folder is filled, not nested into
    data = load_cifar10(tmp_path, allow_download=True, timeout_s=7)
    assert len(data.images) == 20 and len(data.test_images) == 3
    assert seen["timeout"] == 7 and socket.getdefaulttimeout() is None
    assert not Path(seen["root"]).exists()
    assert [p.name for p in tmp_path.iterdir()] == [CIFAR_FOLDER]
    assert len(list((tmp_path / CIFAR_FOLDER).iterdir())) == 6


def test_failed_cifar_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import torchvision.datasets

    class OfflineCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"half an archive")
            raise OSError("<urlopen error [Errno -3]\n  Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OfflineCIFAR10)
    root = tmp_path / "data"
    with pytest.raises(DataFileError) as err:
        load_cifar10(root, allow_download=True, timeout_s=1)
    assert one_line(err) == (
        f"could not download cifar10 into {root / CIFAR_FOLDER} (OSError: <urlopen error "
        "[Errno -3] Temporary failure in name resolution>); put the CIFAR-10 python batches "
        "there (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpacked) "
        "or use data.source=photos"
    )
    assert not root.exists() and socket.getdefaulttimeout() is None
