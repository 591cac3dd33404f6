"""CIFAR-10: its python batches in `--data-dir` (or ./data, with a torchvision download unless `--no-download`), read
by a restricted unpickler that allows numpy arrays and plain containers only."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .dataset import DEFAULT_DATA_ROOT

CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


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


def load_cifar10(
    data_dir: Path | None, image_size: int, channels: int, download: bool, split: str
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The split as uint8 (N, 3, 32, 32), its labels and where it came from."""
    train = split == "train"
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
