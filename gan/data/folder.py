"""A folder of the user's own images, searched recursively, each decoded by gan.images and fitted to the run's size."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import DataError, ImageInputError
from ..images import decode_image, fit_image, image_to_uint8, list_image_files


def load_folder(
    data_dir: Path | None, image_size: int, channels: int, download: bool, split: str
) -> tuple[torch.Tensor, None, str]:
    """The folder's images fitted to image_size x image_size with `channels`, and the folder."""
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
    return torch.stack(images), None, str(data_dir)
