"""One dataset in memory: its images as a uint8 tensor, where they came from, and what an export records of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

DEFAULT_DATA_ROOT = Path("data")  # where torchvision datasets are looked for (and downloaded), as torchvision does


@dataclass
class ImageDataset:
    """Images as uint8 (N, C, H, W) plus where they came from."""

    images: torch.Tensor
    name: str
    source: str
    labels: torch.Tensor | None = None  # class indices, where the dataset has them
    credit: str | None = None  # who made it (its source's, or a Hub dataset card's)
    license: str | None = None  # its terms, as config.json records them; None: not stated
    hub: dict | None = None  # a Hub dataset: repo_id, revision (the commit), config, split, image_column

    def __len__(self) -> int:
        return self.images.shape[0]

    def metadata(self) -> dict:
        """What an export's config.json says of its data: the dataset, its credit and licence; for a Hub dataset
        also its repo id, the commit, the config, the split and the image column."""
        if self.hub is None:
            return {"dataset": self.name, "dataset_credit": self.credit, "dataset_license": self.license}
        repo_id = self.hub["repo_id"]
        return {
            "dataset": self.name,
            "dataset_credit": self.credit,
            "dataset_license": self.license
            or f"not stated in the dataset card of {repo_id}: check the dataset's terms",
            **{f"dataset_{key}": value for key, value in self.hub.items()},
        }

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The images at `indices` (and their labels), from the same source."""
        labels = None if self.labels is None else self.labels[indices]
        return dataclasses.replace(self, images=self.images[indices], labels=labels)

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def pad_and_resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
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
