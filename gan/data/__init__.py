"""Training data: every dataset becomes one uint8 tensor (N, C, size, size) held in memory.

MNIST-sized sets are tiny as uint8 (60000x1x32x32 = 61 MB, CIFAR-10 150 MB), so batches are
random index draws from a seeded generator: no DataLoader workers, no per-sample Python, and a
resumed run draws exactly the batches the uninterrupted run would have drawn.

Each source is one entry of `sources.SOURCES` (its loader in a module of this package: idx.py, cifar.py, emoji.py,
folder.py; Hub datasets in hub.py). Built-in sets are found, in order, in `--data-dir` (a torchvision root, or a flat
folder holding the raw files), Debian's `dataset-fashion-mnist` folder for Fashion-MNIST, then `./data` with a
torchvision download unless `--no-download`; Noto emoji in Debian's `fonts-noto-color-emoji` font (emoji.py). 28x28
sets are padded with 2 background pixels to 32x32 (no resampling, the strokes keep their pixels); other sizes are then
resized bilinearly.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .dataset import ImageDataset, dataset_slug, pad_and_resize
from .sources import DATASETS, HUB, HUB_PREFIX, SOURCES, DataSource, hub_repo, train_tab_sources

__all__ = [
    "DATASETS",
    "HUB_PREFIX",
    "SOURCES",
    "DataSource",
    "ImageDataset",
    "dataset_slug",
    "hub_repo",
    "load_dataset",
    "train_tab_sources",
]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    image_size: int = 32,
    download: bool = True,
    channels: int = 3,
    split: str = "train",
    *,
    revision: str | None = None,
    image_column: str | None = None,
    max_images: int | None = None,
    config: str | None = None,
) -> ImageDataset:
    """Load a dataset as uint8 (N, C, image_size, image_size).

    `channels` applies to folders and Hub datasets only; `split` ("train" or "test") to the sets that have a test
    split, and any split to a Hub dataset (`hf:OWNER/NAME`), which alone takes `revision`, `config`, `image_column`
    and `max_images` (data/hub.py; needs the `datasets` library).
    """
    repo_id = hub_repo(name)
    if repo_id is not None:
        return HUB.load(repo_id, revision, split, image_column, max_images, image_size, channels, config)
    source = SOURCES.get(name)
    if source is None:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or {HUB_PREFIX}OWNER/NAME")
    if split not in ("train", "test") or (split == "test" and not source.test_split):
        *others, last = [s.name for s in SOURCES.values() if s.test_split]
        raise DataError(f"no {split!r} split for {name}: use 'train', or 'test' for {', '.join(others)} and {last}")
    data_dir = Path(data_dir).expanduser() if data_dir else None
    images, labels, found, *credit = source.load(data_dir, image_size, channels, download, split)
    if images.shape[0] == 0:
        raise DataError(f"the {name} data in {found} holds no images")
    credit = credit[0] if credit else source.credit  # a loader may name the version it found
    return ImageDataset(pad_and_resize(images, image_size), name, found, labels, credit, source.license)
