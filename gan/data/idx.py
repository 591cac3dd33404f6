"""MNIST and Fashion-MNIST: the four IDX files (raw or gzipped) in `--data-dir`, in Debian's `dataset-fashion-mnist`
folder, or under ./data with a torchvision download unless `--no-download`. torchvision reads them; it is imported
when a set is loaded."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import torch

from ..errors import DataError
from ..files import atomic_write, cache_dir
from .dataset import DEFAULT_DATA_ROOT

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _copy(opener, source: Path, target: str) -> None:
    with opener(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _idx_class(name: str):
    from torchvision import datasets

    return datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST


def _find_idx_folder(candidates: list[Path]) -> Path | None:
    """The first folder holding all four IDX files, raw or gzipped."""
    for folder in candidates:
        if folder.is_dir() and all((folder / f).exists() or (folder / f"{f}.gz").exists() for f in IDX_FILES):
            return folder
    return None


def load_idx(name: str, data_dir: Path | None, download: bool, train: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    cls = _idx_class(name)
    folder_name = cls.__name__
    if data_dir is not None:
        candidates = [data_dir / folder_name / "raw", data_dir / "raw", data_dir]
    else:
        candidates = idx_folders(name)
    found = _find_idx_folder(candidates)
    if found is None:
        if data_dir is not None and not download:
            raise DataError(
                f"no {name} files in {data_dir}: expected {', '.join(IDX_FILES)} (optionally .gz) there "
                f"or under {data_dir}/{folder_name}/raw/"
            )
        if not download:
            hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
            raise DataError(
                f"{name} not found in {DEFAULT_DATA_ROOT}/{folder_name}/raw: pass --data-dir DIR{hint}, "
                "or drop --no-download to download it"
            )
        root = data_dir or DEFAULT_DATA_ROOT
        try:
            dataset = cls(str(root), train=train, download=True)
        except Exception as error:  # torchvision raises RuntimeError/URLError/OSError variants
            raise DataError(
                f"could not download {name} into {root} ({error}); use --data-dir and --no-download offline"
            ) from None
        return dataset.data, dataset.targets, f"{root}/{folder_name}/raw (downloaded)"

    if all((found / f).exists() for f in IDX_FILES) and found.name == "raw" and found.parent.name == folder_name:
        root = found.parent.parent
    else:  # gzipped or flat: unpack into the cache, where torchvision expects a root
        root = cache_dir() / "idx" / hashlib.sha1(str(found.resolve()).encode()).hexdigest()[:16]
        raw = root / folder_name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for file in IDX_FILES:
            if not (raw / file).exists():  # each process unpacks to its own temporary file (torchrun ranks race here)
                opener = open if (found / file).exists() else gzip.open
                source = found / (file if opener is open else f"{file}.gz")
                atomic_write(raw / file, lambda path, source=source, opener=opener: _copy(opener, source, path))
    try:
        dataset = cls(str(root), train=train, download=False)
    except Exception as error:
        raise DataError(f"could not read the {name} IDX files in {found} ({error})") from None
    return dataset.data, dataset.targets, str(found)


def idx_folders(name: str) -> list[Path]:
    """Where `name`'s files are looked for when no --data-dir is given, in order."""
    folder_name = "FashionMNIST" if name == "fashion-mnist" else "MNIST"
    return [DEFAULT_DATA_ROOT / folder_name / "raw", *([DEBIAN_FASHION_MNIST] if name == "fashion-mnist" else [])]


def idx_here(name: str) -> bool:
    """Whether `name`'s files are on this machine (nothing is downloaded to find out)."""
    return _find_idx_folder(idx_folders(name)) is not None


def _loader(name: str):
    def load(data_dir: Path | None, image_size: int, channels: int, download: bool, split: str):
        images, labels, source = load_idx(name, data_dir, download, split == "train")
        return images.unsqueeze(1), labels, source

    load.__name__ = load.__qualname__ = f"load_{name.replace('-', '_')}"
    load.__doc__ = f"The {name} split as uint8 (N, 1, 28, 28), its labels and where it came from."
    return load


load_mnist = _loader("mnist")
load_fashion_mnist = _loader("fashion-mnist")
