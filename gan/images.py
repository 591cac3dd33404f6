"""Safe image decoding and the conversion of any image into what the networks see.

Used by the folder and Hub datasets and by the app's uploads, so a file is read the same way in
training and in scoring. Decoding refuses oversized images from the header, before any pixel is
decoded (a 140 KB PNG can claim 12000x12000 pixels), and handles the modes Pillow can hand back:
16-bit and 32-bit integer images are rescaled to 8 bits (not clipped), palette images are
expanded, transparency is composited on black (the background of the bundled datasets),
CMYK becomes RGB, and animated images contribute their first frame.

Only the formats of IMAGE_FORMATS are opened, and only their first frame is ever read: Pillow's
`n_frames` walks every frame header (a TIFF of 100,000 chained IFDs takes over a minute), so a
file's other frames are noted, never counted. A JPEG much larger than the size it is fitted to is
decoded at a reduced scale (`draft`: 1/2 to 1/8, in libjpeg's DCT), which is what it is resized
to anyway. What a hostile file can still stretch (Pillow's parsers walk chunks, markers and runs
in Python) is bounded in time by decoding it in a child process: gan.decoding.

torch is imported by the conversions to tensors only, when first called: the decoding child
never loads it.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageInputError

if TYPE_CHECKING:
    import torch

MAX_PIXELS = 4096 * 4096
MIN_SIDE = 8
DRAFT_MARGIN = 4  # a JPEG fitted to S px is decoded at a side of at least 4 S (then resized with antialiasing)
BACKGROUND = (0, 0, 0)
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# What those files are, to Pillow (JPEG includes MPO, a camera's JPEG with more pictures); any other format is refused
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")

# Pillow warns above this many pixels (an error under decode_image's filter) and refuses twice as many.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _to_8bit(image: Image.Image) -> Image.Image:
    """Rescale 16/32-bit grayscale to 8 bits: 16-bit by its nominal range (/257), wider data by its own."""
    array = np.asarray(image)
    if image.mode.startswith("I;16") or (
        array.dtype.kind in "iu" and array.min(initial=0) >= 0 and array.max(initial=0) <= 65535
    ):
        scaled = array.astype(np.float64) / 257.0
    else:
        array = array.astype(np.float64)
        low, high = float(array.min(initial=0)), float(array.max(initial=0))
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _normalise_mode(image: Image.Image, notes: list[str]) -> Image.Image:
    """Any Pillow mode -> 'L' or 'RGB', compositing transparency on BACKGROUND; notes say what changed."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        notes.append(f"{image.mode} high-bit-depth values scaled to 8 bits")
        return _to_8bit(image)
    if image.mode in ("P", "PA"):
        notes.append("palette expanded")
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparency composited on black")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("L", "RGB"):
        return image
    notes.append(f"{image.mode} converted to RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1


def decode_image(
    path: str | os.PathLike | bytes, name: str | None = None, fitted_to: int | None = None
) -> tuple[Image.Image, list[str]]:
    """Open an image file safely: an 8-bit 'L' or 'RGB' Pillow image, and notes on each conversion made. `path` may
    also be the encoded file itself, as bytes (a Hub dataset's image cell), with `name` saying where it came from.
    `fitted_to`: the side the image will be fitted to, for a JPEG to be decoded at the smallest scale that keeps
    its shorter side at least that (decode_image's caller then fits it).

    Raises ImageInputError with a message that names the file and the problem.
    """
    if isinstance(path, bytes | bytearray | memoryview):
        name, size, path = name or "image", len(path), io.BytesIO(path)
    else:
        name = name or Path(path).name
        try:
            size = os.path.getsize(path)
        except OSError as error:
            raise ImageInputError(f"{name}: cannot read the file ({error.strerror or error})") from None
    if size == 0:
        raise ImageInputError(f"{name}: the file is empty (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if min(width, height) < MIN_SIDE:
                    raise ImageInputError(
                        f"{name}: {width}x{height} pixels is too small; images need at least "
                        f"{MIN_SIDE}x{MIN_SIDE} pixels"
                    )
                if getattr(image, "is_animated", False):  # looks one frame ahead at most, unlike n_frames
                    notes.append("the first frame of several")
                if fitted_to and image.format in ("JPEG", "MPO"):
                    wanted = DRAFT_MARGIN * fitted_to
                    if image.draft(image.mode, (wanted, wanted)) is not None and image.size != (width, height):
                        notes.append(f"{width}x{height} JPEG decoded at {image.width}x{image.height}")
                image.load()
                return _normalise_mode(ImageOps.exif_transpose(image) or image, notes), notes
    except ImageInputError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageInputError(f"{name}: not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP, TIFF...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own guard fired while reading the header; its message carries the pixel count.
        count = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(count.group(1)):,} pixels" if count else "the image"
        raise ImageInputError(
            f"{name}: {size} is over the limit of {MAX_PIXELS:,} pixels (4096x4096); shrink it first"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageInputError(f"{name}: the image data is truncated or corrupt ({error})") from None


def fit_image(image: Image.Image, size: int, channels: int, notes: list[str] | None = None) -> Image.Image:
    """Center-crop to a square, resize to size x size (bicubic), convert to 1 or 3 channels."""
    if notes is not None:
        if image.width != image.height:
            side = min(image.size)
            notes.append(f"{image.width}x{image.height} center-cropped to {side}x{side}")
        if image.size != (size, size):
            notes.append(f"resized to {size}x{size}")
        if image.mode == "RGB" and channels == 1:
            notes.append("RGB converted to grayscale")
        elif image.mode == "L" and channels == 3:
            notes.append("grayscale repeated to RGB")
    image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
    return image.convert("L" if channels == 1 else "RGB")


# The MNIST family (MNIST, Fashion-MNIST) is 28x28, and training pads it with 2 black pixels on each side to
# 32x32 (gan.data): an object fills 28/32 of the frame. Resizing a 28x28 upload to 32x32 would draw it ~14%
# larger than anything the model learned, so uploads of exactly that size are padded the same way instead.
PADDED_SIDE, PADDED_TO = 28, 32


def fit_upload(image: Image.Image, size: int, channels: int, notes: list[str] | None = None) -> Image.Image:
    """`fit_image` for an uploaded image (the app's Score and Project tabs, projection's `project_file`), with one
    rule more: a 28x28 image for a 32x32 model is padded with 2 black pixels on each side, like the MNIST-family
    training data, rather than resized. Folder datasets keep `fit_image` (they resize, in training as here)."""
    if image.size == (PADDED_SIDE, PADDED_SIDE) and size == PADDED_TO:
        border = (PADDED_TO - PADDED_SIDE) // 2
        image = ImageOps.expand(image, border=border, fill=0 if image.mode == "L" else BACKGROUND)
        if notes is not None:
            notes.append(f"{PADDED_SIDE}x{PADDED_SIDE} padded to {PADDED_TO}x{PADDED_TO} like the training data")
    return fit_image(image, size, channels, notes)


def image_to_uint8(image: Image.Image) -> torch.Tensor:
    """'L'/'RGB' image -> uint8 tensor (C, H, W)."""
    import torch

    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def uint8_to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) in [0, 255] -> float in [-1, 1], the range the generator's tanh produces."""
    return images.float().div_(127.5).sub_(1.0)


def model_output_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (N, C, H, W) in [-1, 1] -> uint8 (N, C, H, W), rounding to nearest."""
    return images.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).byte()


def list_image_files(folder: Path) -> list[Path]:
    """Image files under folder (recursively, sorted, hidden files skipped)."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not path.name.startswith(".")
    )
