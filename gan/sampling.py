"""Seeded sampling and latent interpolation.

One rule everywhere: the latent for seed k is `torch.randn(nz, generator=Generator().manual_seed(k))`
drawn on the CPU, and a grid for seed s and count n shows seeds s..s+n-1. So a seed names the same
image in the app's grid, its gallery, an interpolation endpoint, PNG metadata and the command line,
and latents are identical on CPU and GPU (pixels may differ by rounding across devices).

Truncation (optional) resamples the entries of a latent whose magnitude exceeds a threshold, drawing
the replacements from that seed's own generator stream: the first draw is the untruncated latent, so
entries already inside the threshold are unchanged, and a truncated seed is as reproducible as any.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from .images import model_output_to_uint8
from .models import Generator

MAX_SEED = 2**32 - 1
INTERPOLATION_MODES = ("lerp", "slerp")
MIN_TRUNCATION = 0.05  # below this, redrawing until every entry fits takes hundreds of draws per latent


def check_seed(seed: int) -> int:
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def check_truncation(truncation: float | None) -> float | None:
    """None or 0 = off; otherwise a threshold on |z| of at least MIN_TRUNCATION."""
    if not truncation:
        return None
    truncation = float(truncation)
    if not truncation >= MIN_TRUNCATION:  # also refuses NaN
        raise ValueError(f"truncation must be 0 (off) or at least {MIN_TRUNCATION}, got {truncation}")
    return truncation


def latent_for_seed(seed: int, nz: int, truncation: float | None = None) -> torch.Tensor:
    """The latent of a seed; with `truncation`, entries with |z| > truncation are redrawn from the same stream."""
    stream = torch.Generator().manual_seed(check_seed(seed))
    latent = torch.randn(nz, generator=stream)
    truncation = check_truncation(truncation)
    if truncation is not None:
        while (outside := latent.abs() > truncation).any():
            latent[outside] = torch.randn(int(outside.sum()), generator=stream)
    return latent


def latents_for_seeds(start: int, count: int, nz: int, truncation: float | None = None) -> torch.Tensor:
    """Latents (count, nz) for seeds start..start+count-1."""
    check_seed(start + count - 1)
    return torch.stack([latent_for_seed(start + i, nz, truncation) for i in range(count)])


@torch.inference_mode()
def generate(generator: Generator, latents: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Latents (N, nz) -> uint8 images (N, C, H, W) on the CPU, in eval mode; the generator's mode is restored
    afterwards, so sampling during training leaves a training generator training."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    chunks = [generator(chunk.to(device)) for chunk in latents.split(batch_size)]
    generator.train(was_training)
    return model_output_to_uint8(torch.cat(chunks)).cpu()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between a and b at fractions t (T,); falls back to lerp when parallel."""
    a64, b64 = a.double(), b.double()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t.double()[:, None]
    if omega.abs() < 1e-6:
        return torch.lerp(a64, b64, t).to(a.dtype)
    return ((torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)).to(a.dtype)


def interpolate_latents(a: torch.Tensor, b: torch.Tensor, frames: int, mode: str = "slerp") -> torch.Tensor:
    """frames latents from a to b inclusive."""
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    if frames < 2:
        raise ValueError(f"frames must be at least 2, got {frames}")
    t = torch.linspace(0.0, 1.0, frames)
    return slerp(a, b, t) if mode == "slerp" else torch.lerp(a[None], b[None], t[:, None])


def to_pil(image: torch.Tensor) -> Image.Image:
    """uint8 (C, H, W) -> 'L' or 'RGB' Pillow image."""
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def tile(images: torch.Tensor, columns: int, padding: int = 2) -> torch.Tensor:
    """(N, C, H, W) -> (C, rows * (H + padding) + padding, columns * (W + padding) + padding) on a black background,
    laid out as torchvision's `make_grid` does. Written here because importing torchvision.utils loads all of
    torchvision (and torch._dynamo): seconds at every start of the app and the command line. One image is
    returned as it is, as make_grid does."""
    count, channels, height, width = images.shape
    if count == 1:
        return images[0]
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    cells = images.new_zeros((rows * columns, channels, height + padding, width + padding))
    cells[:count, :, padding:, padding:] = images
    grid = cells.view(rows, columns, channels, height + padding, width + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(channels, rows * (height + padding), columns * (width + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding))


def grid_image(images: torch.Tensor, columns: int | None = None, padding: int = 2) -> Image.Image:
    """uint8 (N, C, H, W) -> one grid image; columns defaults to a near-square layout."""
    columns = columns or int(np.ceil(np.sqrt(images.shape[0])))
    return to_pil(tile(images, columns, padding))


def upscale(image: Image.Image, min_side: int = 512, max_side: int = 2048) -> Image.Image:
    """Nearest-neighbour upscaling by an integer factor, so 32 px samples are visible and crisp; the longer
    side stays within max_side (a one-row grid of 64 would otherwise be tens of thousands of pixels wide)."""
    factor = max(1, min(min_side // min(image.size), max_side // max(image.size)))
    return (
        image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST) if factor > 1 else image
    )


def png_bytes(image: Image.Image, text: dict[str, str] | None = None, compress_level: int = 6) -> bytes:
    """Encode as PNG, with text chunks (model id, seed...) as metadata. The same image, text and level always give
    the same bytes; level 1 encodes an upscaled grid about twice as fast as Pillow's default 6, ~20% larger."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, str(value))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def ping_pong(frames: list) -> list:
    """There and back: a, b, c, d -> a, b, c, d, c, b (loops without showing an end frame twice)."""
    return frames + frames[-2:0:-1]


def gif_bytes(frames: list[Image.Image], fps: float = 12.0, loop: bool = True) -> bytes:
    """Animated GIF of the frames; loop=True repeats forever, False plays once."""
    buffer = io.BytesIO()
    repeat = {"loop": 0} if loop else {}
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=max(20, round(1000 / fps)), **repeat
    )
    return buffer.getvalue()
