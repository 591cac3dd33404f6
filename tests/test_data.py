"""Data loaders on real files: Debian's Fashion-MNIST, MNIST IDX gz, CIFAR-10 python batches, folders."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from helpers import DEBIAN_FASHION, make_idx_folder, needs_fashion_mnist
from PIL import Image

from gan.data import load_dataset
from gan.errors import DataError


@needs_fashion_mnist
@pytest.mark.parametrize("size", [32, 64])
def test_fashion_mnist_offline_from_the_debian_folder(size):
    auto = load_dataset("fashion-mnist", image_size=size, download=False)
    assert auto.source == str(DEBIAN_FASHION)
    assert auto.images.shape == (60000, 1, size, size) and auto.images.dtype == torch.uint8
    if size == 32:  # padded, not resampled: a 2-pixel black border around the original 28x28 pixels
        assert auto.images[:, :, :2].max() == 0 and auto.images[:, :, :, -2:].max() == 0
        assert auto.images.float().mean() > 50  # real clothes, not blank images
    explicit = load_dataset("fashion-mnist", data_dir=DEBIAN_FASHION, image_size=size, download=False)
    assert torch.equal(auto.images, explicit.images)


def test_mnist_idx_gz_flat_folder_and_torchvision_root(tmp_path, idx_dir):
    expected = make_idx_folder(tmp_path / "unused")  # same seed: the same images as idx_dir
    flat = load_dataset("mnist", data_dir=idx_dir, download=False)
    assert flat.images.shape == (64, 1, 32, 32)
    assert torch.equal(flat.images[:, 0, 2:30, 2:30], torch.from_numpy(expected))
    raw = tmp_path / "root" / "MNIST" / "raw"  # torchvision's own layout, uncompressed
    raw.mkdir(parents=True)
    for gz in idx_dir.glob("*.gz"):
        import gzip

        (raw / gz.stem).write_bytes(gzip.open(gz).read())
    rooted = load_dataset("mnist", data_dir=tmp_path / "root", download=False)
    assert torch.equal(rooted.images, flat.images)


def _write_cifar(folder, count_per_batch=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = []
    for i in range(1, 6):
        data = rng.integers(0, 256, (count_per_batch, 3072), dtype=np.uint8)
        batches.append(data)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(
                {"batch_label": f"training batch {i} of 5", "labels": [0] * count_per_batch, "data": data},
                f,
                protocol=2,
            )
    return np.concatenate(batches).reshape(-1, 3, 32, 32)


def test_cifar10_python_batches(tmp_path):
    expected = _write_cifar(tmp_path / "cifar-10-batches-py")
    dataset = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert torch.equal(dataset.images, torch.from_numpy(expected))
    assert load_dataset("cifar10", data_dir=tmp_path, image_size=64, download=False).images.shape == (20, 3, 64, 64)


class _Exploit:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent",))


def test_cifar_loader_refuses_code_in_pickles(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"data": _Exploit()}, f)
    with pytest.raises(DataError, match="refusing to load shutil.rmtree"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_folder_of_mixed_images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (300, 200), (255, 0, 0)).save(folder / "wide.jpg")
    Image.new("L", (50, 50), 128).save(folder / "gray.png")
    Image.new("RGBA", (64, 64), (0, 255, 0, 128)).save(folder / "sub" / "alpha.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dataset = load_dataset("folder", data_dir=folder, image_size=32, channels=3)
    assert dataset.images.shape == (3, 3, 32, 32)
    gray = load_dataset("folder", data_dir=folder, image_size=64, channels=1)
    assert gray.images.shape == (3, 1, 64, 64)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("mnist", {"download": False}, "mnist not found in data/MNIST/raw: pass --data-dir DIR"),
        ("cifar10", {"download": False}, "cifar10 not found in"),
        ("folder", {}, "--dataset folder needs --data-dir DIR"),
    ],
)
def test_missing_data_messages(name, kwargs, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_dataset(name, **kwargs)


def test_empty_folder_message(tmp_path):
    with pytest.raises(DataError, match="no images in"):
        load_dataset("folder", data_dir=tmp_path)
