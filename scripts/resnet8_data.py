"""Image data for the ResNet8 showcase: load, upscale, normalise and split.

Only numpy and scikit-learn are used (no torch), so the tests can import this
module and recompute a model's accuracy on exactly the split the build used.
Nothing is ever downloaded: the default data set is scikit-learn's bundled
handwritten digits; a local CIFAR-10 copy (python pickle batches) is the option.

Images come out as float32 arrays of shape (N, 3, 32, 32) with values in [0, 1],
labels as int64 arrays of shape (N,).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

IMAGE_SIZE = 32
CHANNELS = 3
NUM_CLASSES = 10

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 360
DIGITS_CALIBRATION_SIZE = 200

CIFAR10_SPLIT_SEED = 0
CIFAR10_CALIBRATION_SIZE = 1000


@dataclass(frozen=True)
class ImageSplits:
    """Train / calibration / test images (N, 3, 32, 32) float32 in [0, 1], labels int64."""

    dataset: str
    split_seed: int
    train_images: np.ndarray
    train_labels: np.ndarray
    calibration_images: np.ndarray
    calibration_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def split_sizes(self) -> dict[str, int]:
        """Number of images in each split, keyed by split name."""
        return {
            "train": len(self.train_labels),
            "calibration": len(self.calibration_labels),
            "test": len(self.test_labels),
        }


def upscale_digits(images_8x8: np.ndarray) -> np.ndarray:
    """Turn (N, 8, 8) digit images with values 0..16 into (N, 3, 32, 32) float32 in [0, 1].

    Each pixel becomes a 4x4 block (nearest-neighbour upscaling) and the grey
    channel is repeated three times to give the RGB input ResNet8 expects.
    """
    factor = IMAGE_SIZE // images_8x8.shape[-1]
    upscaled = images_8x8.repeat(factor, axis=1).repeat(factor, axis=2)
    normalised = upscaled.astype(np.float32) / np.float32(16.0)
    return np.repeat(normalised[:, np.newaxis, :, :], CHANNELS, axis=1)


def load_digits_splits(split_seed: int = DIGITS_SPLIT_SEED) -> ImageSplits:
    """scikit-learn's bundled digits, upscaled, with a fixed stratified split."""
    bunch = load_digits()
    images = upscale_digits(bunch.images)
    labels = bunch.target.astype(np.int64)
    rest_images, test_images, rest_labels, test_labels = train_test_split(
        images, labels, test_size=DIGITS_TEST_SIZE, random_state=split_seed, stratify=labels
    )
    train_images, calibration_images, train_labels, calibration_labels = train_test_split(
        rest_images,
        rest_labels,
        test_size=DIGITS_CALIBRATION_SIZE,
        random_state=split_seed,
        stratify=rest_labels,
    )
    return ImageSplits(
        dataset="sklearn-digits",
        split_seed=split_seed,
        train_images=train_images,
        train_labels=train_labels,
        calibration_images=calibration_images,
        calibration_labels=calibration_labels,
        test_images=test_images,
        test_labels=test_labels,
    )


class _Cifar10Unpickler(pickle.Unpickler):
    """Unpickler that only rebuilds what CIFAR-10 batches contain (dicts, bytes, numpy arrays)."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    })

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}; refusing to load it")
        return super().find_class(module, name)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch as ((N, 3, 32, 32) float32 in [0, 1], (N,) int64 labels)."""
    with path.open("rb") as stream:
        batch = _Cifar10Unpickler(stream, encoding="bytes").load()
    pixels = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return pixels.astype(np.float32) / np.float32(255.0), labels


def load_cifar10_splits(directory: Path, split_seed: int = CIFAR10_SPLIT_SEED) -> ImageSplits:
    """A local CIFAR-10 copy: ``data_batch_*`` for training and calibration, ``test_batch`` for test."""
    batch_paths = sorted(Path(directory).glob("data_batch_*"))
    test_path = Path(directory) / "test_batch"
    if not batch_paths or not test_path.is_file():
        raise FileNotFoundError(f"{directory} holds no CIFAR-10 python batches (data_batch_*, test_batch)")
    batches = [read_cifar10_batch(path) for path in batch_paths]
    images = np.concatenate([batch_images for batch_images, _ in batches])
    labels = np.concatenate([batch_labels for _, batch_labels in batches])
    train_images, calibration_images, train_labels, calibration_labels = train_test_split(
        images, labels, test_size=CIFAR10_CALIBRATION_SIZE, random_state=split_seed, stratify=labels
    )
    test_images, test_labels = read_cifar10_batch(test_path)
    return ImageSplits(
        dataset="cifar10",
        split_seed=split_seed,
        train_images=train_images,
        train_labels=train_labels,
        calibration_images=calibration_images,
        calibration_labels=calibration_labels,
        test_images=test_images,
        test_labels=test_labels,
    )


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))
