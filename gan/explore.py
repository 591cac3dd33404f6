"""Looking inside a trained model, as Radford et al. (2015) did for DCGAN: vector arithmetic on latents, the principal
directions of the latent space (in the spirit of GANSpace, Härkönen et al. 2020), and what the discriminator's logit
is sensitive to (SmoothGrad saliency, Smilkov et al. 2017).

**Arithmetic.** Each group (A, B, C) of one to three latents is replaced by its mean, and the result is
`mean A + (mean C - mean B)`: with B equal to C the difference is exactly zero, so the result is exactly mean A.
Its neighbours add small seeded Gaussian noise to it.

**Directions.** DCGAN's first layer is a transposed convolution of the 1x1 latent, that is a linear map, followed by
BatchNorm, which in eval mode scales each channel: together one matrix A (nz x features), and the layer's
pre-ReLU activations are `z @ A` plus a constant. With z ~ N(0, I) their covariance is `A^T A`, so PCA of those
activations, each component carried back to z by regression (GANSpace's recipe), is exactly the SVD
`A = U S V^T`: the directions in z are the columns of U (already orthonormal), in order of the variance S^2 they
explain, with no sampling and no regression error. The ReLU after the layer is left out: PCA of post-ReLU activations
would need samples and give slightly different, seed-dependent directions. Signs: each direction's largest entry
(by magnitude, the first such) is positive. A direction moves z by one standard deviation of z along it per unit
(z ~ N(0, I) has variance 1 along any unit vector), so strips run from -3 to +3.

The directions are computed once per generator and cached in memory and on disk under `files.cache_dir()`
(`directions/<digest>.safetensors`), keyed by a SHA-256 digest of the generator's weights.

**Saliency.** The gradient of the discriminator's logit with respect to the input pixels, averaged over copies of
the image with Gaussian noise added (SmoothGrad: single gradients of a ReLU network are speckled by the kinks of its
activations; the average is a smoother, more stable map). It shows where small pixel changes would move the logit
most: sensitivity, not the network's reasons.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import GanError
from .files import atomic_write, cache_dir
from .images import uint8_to_model_input
from .models import Discriminator, Generator
from .sampling import generate, to_pil

MAX_GROUP = 3  # latents per arithmetic group, as in the paper's figure
DEFAULT_NEIGHBOURS = 8
DEFAULT_NOISE = 0.25  # standard deviation of the neighbours' noise, per latent entry
DIRECTIONS_FORMAT = 1  # bump when the method or the file changes: old files are then recomputed
DIRECTIONS_KEPT = 16  # models whose directions stay in memory (nz x nz floats each)
STRIP_SIGMAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
SMOOTHGRAD_SAMPLES = 16  # noisy copies per image
SMOOTHGRAD_NOISE = 0.15  # their noise's standard deviation, as a fraction of the input range ([-1, 1]: 0.3)
CELL = 96  # pixels of one image in the figures (a 32 px sample scaled 3x)


class ExploreError(GanError):
    """An exploration cannot be done on this model (names the problem)."""


# Arithmetic


@dataclass
class Arithmetic:
    """A - B + C on latents, and what the generator makes of it."""

    z: torch.Tensor  # float32 (nz,): mean A + (mean C - mean B)
    means: torch.Tensor  # float32 (3, nz): the groups' means
    image: torch.Tensor  # uint8 (C, H, W): G(z)
    mean_images: torch.Tensor  # uint8 (3, C, H, W): G(mean A), G(mean B), G(mean C)
    members: list[torch.Tensor]  # uint8 (k, C, H, W) per group: its latents' images
    neighbours: torch.Tensor  # uint8 (n, C, H, W): G(z + noise)


def combine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The result z of groups a, b, c (each (k, nz), k >= 1) and their means (3, nz).

    Computed as `mean A + (mean C - mean B)`, never `(mean A - mean B) + mean C`: in float32 the latter rounds
    (mean A - mean B) and loses bits that adding mean C back does not restore, whereas with B equal to C the
    difference here is exactly zero and the result exactly mean A (so G(result) is G(mean A) byte for byte)."""
    means = torch.stack([group.float().mean(0) for group in (a, b, c)])
    return means[0] + (means[2] - means[1]), means  # this order, not (A - B) + C: exact when B equals C


def neighbour_latents(z: torch.Tensor, count: int, noise: float, seed: int = 0) -> torch.Tensor:
    """count latents (count, nz): z plus Gaussian noise of standard deviation `noise`, drawn from a CPU generator
    seeded with `seed`."""
    stream = torch.Generator().manual_seed(seed)
    return z[None] + noise * torch.randn(count, z.shape[0], generator=stream)


def arithmetic(
    generator: Generator,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    neighbours: int = DEFAULT_NEIGHBOURS,
    noise: float = DEFAULT_NOISE,
    seed: int = 0,
) -> Arithmetic:
    """G(mean A - mean B + mean C) with the groups' images and the result's neighbours. The result and each mean are
    generated alone (a batch of one), so G(result) equals G(mean A) byte for byte when B equals C."""
    groups = (a, b, c)
    if any(group.ndim != 2 or not 1 <= len(group) <= MAX_GROUP for group in groups):
        raise ValueError(f"each group must hold 1 to {MAX_GROUP} latents (k, nz)")
    z, means = combine(a, b, c)
    image = generate(generator, z[None])[0]
    mean_images = torch.cat([generate(generator, mean[None]) for mean in means])
    members = generate(generator, torch.cat([group.float() for group in groups])).split([len(g) for g in groups])
    close = generate(generator, neighbour_latents(z, neighbours, noise, seed)) if neighbours else image[None][:0]
    return Arithmetic(z, means, image, mean_images, list(members), close)


def _font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's own font (no system fonts needed); a fresh one per figure, as FreeType faces are not thread-safe."""
    return ImageFont.load_default(size=size)


def _cell(image: torch.Tensor) -> Image.Image:
    return to_pil(image).convert("RGB").resize((CELL, CELL), Image.Resampling.NEAREST)


def _operator(draw: ImageDraw.ImageDraw, operator: str, x: int, y: int, half: int = 8) -> None:
    """Draw -, + or = centred on (x, y) as lines (the default font's minus is a short hyphen)."""
    if operator == "=":
        for dy in (-4, 4):
            draw.line((x - half, y + dy, x + half, y + dy), fill="black", width=3)
        return
    draw.line((x - half, y, x + half, y), fill="black", width=3)
    if operator == "+":
        draw.line((x, y - half, x, y + half), fill="black", width=3)


def arithmetic_figure(result: Arithmetic, labels: list[list[str]]) -> Image.Image:
    """The paper's figure: each group's images in a row with its mean below, `mean A - mean B + mean C = result`
    along the means, and the result's neighbours underneath. `labels` names each group's members."""
    gap, sign, text = 6, 36, 18
    block = MAX_GROUP * CELL + (MAX_GROUP - 1) * gap
    width = 3 * block + 3 * sign + CELL + 2 * gap
    rows = [text, CELL + text, gap, text, CELL]  # header, members and their labels, space, means' label, means
    height = sum(rows) + (2 * gap + text + CELL if len(result.neighbours) else 0) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    means_top = sum(rows[:4])
    for index, (name, members, names) in enumerate(zip("ABC", result.members, labels, strict=True)):
        left = gap + index * (block + sign)
        draw.text((left, 2), f"{name}: mean of {len(members)}", fill="black", font=font)
        offset = left + (block - (len(members) * CELL + (len(members) - 1) * gap)) // 2
        for i, (image, label) in enumerate(zip(members, names, strict=True)):
            canvas.paste(_cell(image), (offset + i * (CELL + gap), text))
            draw.text((offset + i * (CELL + gap), text + CELL + 1), label[:14], fill="black", font=font)
        draw.text((left + block // 2 - CELL // 2, means_top - text + 2), f"mean {name}", fill="black", font=font)
        canvas.paste(_cell(result.mean_images[index]), (left + block // 2 - CELL // 2, means_top))
        _operator(draw, "-+="[index], left + block + sign // 2, means_top + CELL // 2)
    right = gap + 3 * (block + sign)
    draw.text((right, means_top - text + 2), "result", fill="black", font=font)
    canvas.paste(_cell(result.image), (right, means_top))
    if len(result.neighbours):
        top = means_top + CELL + gap
        draw.text((gap, top + 2), "neighbours: the result plus small noise", fill="black", font=font)
        for i, image in enumerate(result.neighbours[: (width - gap) // (CELL + gap)]):
            canvas.paste(_cell(image), (gap + i * (CELL + gap), top + text))
    return canvas


# Directions


@dataclass
class Directions:
    """Principal directions of a generator's latent space."""

    vectors: torch.Tensor  # float32 (r, nz): orthonormal rows, most variance first
    variance: torch.Tensor  # float64 (r,): the fraction of the first layer's variance each explains (sums to 1)
    digest: str  # of the generator's weights


_digests: weakref.WeakKeyDictionary[Generator, str] = weakref.WeakKeyDictionary()
_found: OrderedDict[str, Directions] = OrderedDict()
_lock = threading.Lock()


def weights_digest(generator: Generator) -> str:
    """SHA-256 (first 32 hex digits) of the generator's weights and buffers, names and shapes included; computed once
    per generator object (a loaded model's weights do not change)."""
    with _lock:
        known = _digests.get(generator)
    if known is not None:
        return known
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    value = digest.hexdigest()[:32]
    with _lock:
        _digests[generator] = value
    return value


def directions_file(digest: str) -> Path:
    """Where the directions of the generator with this weights digest are cached."""
    return cache_dir() / "directions" / f"{digest}.safetensors"


def first_layer_map(generator: Generator) -> torch.Tensor:
    """The generator's first layer, transposed convolution then eval-mode BatchNorm, as a float64 matrix (nz, F):
    its pre-ReLU activations are `z @ A` plus a constant."""
    conv, norm = generator.main[0], generator.main[1]
    weight = conv.weight.detach().double().cpu()  # (nz, channels, 4, 4)
    scale = norm.weight.detach().double().cpu() / torch.sqrt(norm.running_var.detach().double().cpu() + norm.eps)
    return (weight * scale[None, :, None, None]).reshape(weight.shape[0], -1)


def compute_directions(generator: Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(vectors (r, nz) float32, variance fractions (r,) float64), r = min(nz, F): see the module's docstring."""
    matrix = first_layer_map(generator)
    if not torch.isfinite(matrix).all():
        raise ExploreError("the generator's first layer has weights that are not finite: it has no directions")
    u, s, _ = torch.linalg.svd(matrix, full_matrices=False)
    vectors = u.T.contiguous()  # (r, nz), rows by decreasing singular value
    largest = vectors.abs().argmax(dim=1)  # the first index of the largest magnitude
    vectors *= torch.sign(vectors.gather(1, largest[:, None]))
    power = s.square()
    if not power.sum() > 0:
        raise ExploreError("the generator's first layer is all zeros: it has no directions")
    return vectors.float(), power / power.sum()


def _read(path: Path, nz: int) -> Directions | None:
    """Cached directions, or None for a missing, unreadable or inconsistent file (then recomputed)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as file:
            if file.metadata().get("format") != str(DIRECTIONS_FORMAT):
                return None
            vectors, variance = file.get_tensor("vectors"), file.get_tensor("variance")
    except Exception:  # a torn or foreign file: computed again
        return None
    good = vectors.ndim == 2 and vectors.shape[1] == nz and variance.shape == vectors.shape[:1]
    if not good or vectors.dtype != torch.float32 or not torch.isfinite(vectors).all():
        return None
    return Directions(vectors, variance.double(), path.stem)


def principal_directions(generator: Generator) -> Directions:
    """The generator's principal directions: from memory, else from the cache file, else computed and written there
    (atomically; a cache that cannot be written is skipped)."""
    from safetensors.torch import save as save_safetensors

    digest = weights_digest(generator)
    with _lock:
        if digest in _found:
            _found.move_to_end(digest)
            return _found[digest]
    path = directions_file(digest)
    found = _read(path, generator.config.nz) if path.is_file() else None
    if found is None:
        vectors, variance = compute_directions(generator)
        found = Directions(vectors, variance, digest)
        data = save_safetensors(
            {"vectors": vectors, "variance": variance}, metadata={"format": str(DIRECTIONS_FORMAT), "method": "svd"}
        )
        try:
            atomic_write(path, lambda p: Path(p).write_bytes(data))
        except OSError:
            pass  # a read-only cache: computing again next time costs milliseconds
    with _lock:
        _found[digest] = found
        while len(_found) > DIRECTIONS_KEPT:
            _found.popitem(last=False)
    return found


def forget_directions() -> None:
    """Empty the in-memory caches (the files stay): for tests and benchmarks."""
    with _lock:
        _found.clear()
        _digests.clear()


def move(z: torch.Tensor, vectors: torch.Tensor, amounts: list[float]) -> torch.Tensor:
    """z moved by amounts[i] along direction i (the first len(amounts) directions)."""
    return z + torch.tensor(amounts, dtype=z.dtype) @ vectors[: len(amounts)]


def direction_strips(
    generator: Generator, z: torch.Tensor, vectors: torch.Tensor, sigmas: tuple[float, ...] = STRIP_SIGMAS
) -> torch.Tensor:
    """uint8 images (k * len(sigmas), C, H, W): row i is z moved along direction i by each of sigmas."""
    steps = torch.tensor(sigmas, dtype=z.dtype)
    latents = z[None, None] + steps[None, :, None] * vectors[:, None, :]  # (k, S, nz)
    return generate(generator, latents.reshape(-1, z.shape[0]))


def strips_figure(images: torch.Tensor, count: int, sigmas: tuple[float, ...] = STRIP_SIGMAS) -> Image.Image:
    """The strips as a labelled grid: a row per direction, a column per offset in standard deviations (sd)."""
    gap, label, text = 4, 28, 18
    columns = len(sigmas)
    canvas = Image.new("RGB", (label + columns * (CELL + gap), text + count * (CELL + gap)), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    for j, sigma in enumerate(sigmas):
        draw.text((label + j * (CELL + gap) + CELL // 2 - 14, 2), f"{sigma:+g} sd", fill="black", font=font)
    for i in range(count):
        top = text + i * (CELL + gap)
        draw.text((4, top + CELL // 2 - 8), str(i + 1), fill="black", font=font)
        for j in range(columns):
            canvas.paste(_cell(images[i * columns + j]), (label + j * (CELL + gap), top))
    return canvas


# Saliency


@torch.inference_mode(False)
@torch.enable_grad()
def saliency(
    discriminator: Discriminator,
    images: torch.Tensor,
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """SmoothGrad: the gradient of the discriminator's logit with respect to its input, for uint8 images
    (N, C, H, W), averaged over `samples` copies with Gaussian noise of `noise` times the input range added (drawn
    from a CPU generator seeded with `seed`; samples=1 and noise=0 give the plain gradient). Float32 (N, C, H, W),
    in logit per unit of the [-1, 1] input."""
    if samples < 1 or noise < 0:
        raise ValueError(f"samples must be at least 1 and noise at least 0, got {samples} and {noise}")
    discriminator.eval()
    device = next(discriminator.parameters()).device
    inputs = uint8_to_model_input(images.contiguous())  # decoded uploads come channels-last: slower convolutions
    stream = torch.Generator().manual_seed(seed)
    noisy = inputs[None] + (2 * noise) * torch.randn(samples, *inputs.shape, generator=stream)
    gradients = []
    for chunk in noisy.flatten(0, 1).split(batch_size):
        chunk = chunk.to(device).requires_grad_(True)
        (gradient,) = torch.autograd.grad(discriminator(chunk).float().sum(), chunk)
        gradients.append(gradient.float().cpu())
    return torch.cat(gradients).reshape(samples, *inputs.shape).mean(0)


# A perceptually ordered dark-to-bright colour map (after matplotlib's "inferno"), sampled at 9 points.
_INFERNO = np.array(
    [
        [0, 0, 4],
        [31, 12, 72],
        [85, 15, 109],
        [136, 34, 106],
        [186, 54, 85],
        [227, 89, 51],
        [249, 140, 10],
        [249, 201, 50],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


def saliency_strength(gradient: torch.Tensor) -> np.ndarray:
    """A map (C, H, W) as strengths in [0, 1] (H, W): the largest magnitude over channels, divided by its 99th
    percentile (so one extreme pixel does not darken the rest) and clipped."""
    strength = gradient.abs().amax(0).numpy()
    top = float(np.percentile(strength, 99))
    return np.clip(strength / top, 0, 1) if top > 0 else np.zeros_like(strength)


def saliency_overlay(image: torch.Tensor, gradient: torch.Tensor, scale: int = 4) -> Image.Image:
    """uint8 image (C, H, W) and its map -> one RGB picture: the image, the map in colour, and the map over the image
    (where the map is strong its colour covers the image), each scaled up `scale` times."""
    strength = saliency_strength(gradient)
    positions = strength * (len(_INFERNO) - 1)
    low = np.floor(positions).astype(int).clip(0, len(_INFERNO) - 2)
    fraction = (positions - low)[..., None]
    colour = _INFERNO[low] * (1 - fraction) + _INFERNO[low + 1] * fraction  # (H, W, 3)
    base = np.asarray(to_pil(image).convert("RGB"), dtype=np.float32)
    alpha = strength[..., None]
    over = base * (1 - alpha) + colour * alpha
    height, width = strength.shape
    picture = Image.new("RGB", (3 * width * scale + 2 * scale, height * scale), "white")
    for i, part in enumerate((base, colour, over)):
        tile = Image.fromarray(part.round().clip(0, 255).astype(np.uint8)).resize(
            (width * scale, height * scale), Image.Resampling.NEAREST
        )
        picture.paste(tile, (i * (width * scale + scale), 0))
    return picture
