"""Training data: every dataset becomes one uint8 tensor (N, C, size, size) held in memory.

MNIST-sized sets are tiny as uint8 (60000x1x32x32 = 61 MB, CIFAR-10 150 MB), so batches are
random index draws from a seeded generator: no DataLoader workers, no per-sample Python, and a
resumed run draws exactly the batches the uninterrupted run would have drawn.

Sources, in order: `--data-dir` (a torchvision root, or a flat folder holding the raw files),
Debian's `dataset-fashion-mnist` folder for Fashion-MNIST, then `./data` with a torchvision
download unless `--no-download`. 28x28 sets are padded with 2 background pixels to 32x32
(no resampling, the strokes keep their pixels); other sizes are then resized bilinearly.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .errors import DataError, ImageInputError
from .files import atomic_write, cache_dir
from .images import decode_image, fit_image, image_to_uint8, list_image_files

DATASETS = ("mnist", "fashion-mnist", "cifar10", "folder")
HUB_PREFIX = "hf:"  # --dataset hf:OWNER/NAME: a dataset repo on the Hub (gan.hub.dataset)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_ROOT = Path("data")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

CREDITS = {
    "mnist": ("MNIST (LeCun, Cortes and Burges)", "CC BY-SA 3.0"),
    "fashion-mnist": ("Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando Research)", "MIT"),
    "cifar10": ("CIFAR-10 (Krizhevsky 2009)", "see https://www.cs.toronto.edu/~kriz/cifar.html"),
    "folder": ("a folder of the user's own images", "the images' own licence"),
}


@dataclass
class ImageDataset:
    """Images as uint8 (N, C, H, W) plus where they came from."""

    images: torch.Tensor
    name: str
    source: str
    labels: torch.Tensor | None = None  # class indices, where the dataset has them
    credit: str | None = None  # who made it and its licence, where CREDITS lacks them (a Hub dataset)
    license: str | None = None  # None: not stated
    hub: dict | None = None  # a Hub dataset: repo_id, revision (the commit), config, split, image_column

    def __len__(self) -> int:
        return self.images.shape[0]

    def metadata(self) -> dict:
        """What an export's config.json says of its data: the dataset, its credit and licence; for a Hub dataset
        also its repo id, the commit, the config, the split and the image column."""
        if self.hub is None:
            credit, licence = CREDITS[self.name]
            return {"dataset": self.name, "dataset_credit": credit, "dataset_license": licence}
        repo_id = self.hub["repo_id"]
        return {
            "dataset": self.name,
            "dataset_credit": self.credit,
            "dataset_license": self.license
            or f"not stated in the dataset card of {repo_id}: check the dataset's terms",
            **{f"dataset_{key}": value for key, value in self.hub.items()},
        }

    @property
    def channels(self) -> int:
        return self.images.shape[1]


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


def _load_idx(name: str, data_dir: Path | None, download: bool, train: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    cls = _idx_class(name)
    folder_name = cls.__name__
    if data_dir is not None:
        candidates = [data_dir / folder_name / "raw", data_dir / "raw", data_dir]
    else:
        candidates = [DEFAULT_DATA_ROOT / folder_name / "raw"]
        if name == "fashion-mnist":
            candidates.append(DEBIAN_FASHION_MNIST)
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


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles: allow numpy arrays and plain containers, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(batch["labels"], dtype=np.int64)
    except Exception as error:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({error})") from None


def _load_cifar10(data_dir: Path | None, download: bool, train: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    root = data_dir or DEFAULT_DATA_ROOT
    candidates = [root / "cifar-10-batches-py", root]
    found = next((c for c in candidates if all((c / b).exists() for b in CIFAR_TRAIN_BATCHES)), None)
    if found is None:
        if not download:
            raise DataError(
                f"cifar10 not found in {root}: expected {', '.join(CIFAR_TRAIN_BATCHES)} in "
                f"{root}/cifar-10-batches-py/; pass --data-dir DIR, or drop --no-download to download it"
            )
        from torchvision import datasets

        try:
            datasets.CIFAR10(str(root), train=True, download=True)  # downloads and verifies checksums
        except Exception as error:
            raise DataError(
                f"could not download cifar10 into {root} ({error}); use --data-dir and --no-download offline"
            ) from None
        found = root / "cifar-10-batches-py"
    batches = [_read_cifar_batch(found / b) for b in (CIFAR_TRAIN_BATCHES if train else ("test_batch",))]
    images, labels = (torch.from_numpy(np.concatenate(parts)) for parts in zip(*batches, strict=True))
    return images, labels, str(found)


def _load_folder(data_dir: Path | None, image_size: int, channels: int) -> tuple[torch.Tensor, str]:
    if data_dir is None:
        raise DataError("--dataset folder needs --data-dir DIR, a folder of images (searched recursively)")
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    files = list_image_files(data_dir)
    if not files:
        raise DataError(
            f"no images in {data_dir} "
            f"(looked for {', '.join(sorted({'.png', '.jpg', '.jpeg', '.webp'}))} and more, recursively)"
        )
    images, skipped = [], []
    for path in tqdm(files, desc="reading images", unit="img", leave=False, disable=len(files) < 500):
        try:
            images.append(image_to_uint8(fit_image(decode_image(path)[0], image_size, channels)))
        except ImageInputError as error:
            skipped.append(str(error))
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}")
    if not images:
        raise DataError(f"none of the {len(files)} image files in {data_dir} could be read, e.g. {skipped[0]}")
    return torch.stack(images), str(data_dir)


def _resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Pad 28x28 to 32x32 with background, then resize bilinearly to the target size if needed."""
    if images.shape[-1] == 28:
        images = F.pad(images, (2, 2, 2, 2), value=0)
    if images.shape[-1] != image_size:
        resized = F.interpolate(
            images.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def dataset_slug(name: str) -> str:
    """A dataset name fit for a folder or model name: `hf:owner/name` -> `hf-owner-name`."""
    return name.replace(":", "-").replace("/", "-")


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

    `channels` applies to folders and Hub datasets only; `split` ("train" or "test") to the MNIST family and CIFAR-10,
    and any split to a Hub dataset (`hf:OWNER/NAME`), which alone takes `revision`, `config`, `image_column` and
    `max_images`
    (gan.hub.dataset; needs the `datasets` library).
    """
    if name.startswith(HUB_PREFIX):
        from .hub.dataset import load_hub_dataset

        return load_hub_dataset(
            name[len(HUB_PREFIX) :], revision, split, image_column, max_images, image_size, channels, config
        )
    data_dir = Path(data_dir).expanduser() if data_dir else None
    if split not in ("train", "test") or (split == "test" and name == "folder"):
        raise DataError(f"no {split!r} split for {name}: use 'train', or 'test' for mnist, fashion-mnist and cifar10")
    labels = None
    if name in ("mnist", "fashion-mnist"):
        images, labels, source = _load_idx(name, data_dir, download, split == "train")
        images = images.unsqueeze(1)
    elif name == "cifar10":
        images, labels, source = _load_cifar10(data_dir, download, split == "train")
    elif name == "folder":
        images, source = _load_folder(data_dir, image_size, channels)
    else:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or {HUB_PREFIX}OWNER/NAME")
    if images.shape[0] == 0:
        raise DataError(f"the {name} data in {source} holds no images")
    return ImageDataset(_resize(images, image_size), name, source, labels)
