"""Projection: find the latent z whose generated image best matches a given image.

Offline and on the CPU, with nothing but the model's own two networks. Adam optimises z alone
(both networks stay frozen, their gradients are never computed) for a batch of random restarts
at once, minimising per restart

    pixel L1(G(z), target)
    + feature_weight * sum over the discriminator's hidden layers of the squared activation
      difference, each divided by the target's mean squared activation so the layers weigh alike
    + prior_weight * (|z| / sqrt(nz) - 1)^2

The feature term compares shapes and textures the way the discriminator learned to see them,
which pixel distance alone ignores. The prior keeps z on the shell where N(0, I) latents live, so
a walk from a projected z to a seed's latent looks like a walk between two seeds. The restart
with the lowest final objective wins. L1 rather than L2 on pixels: its gradient does not fade as
the error shrinks, and it measured closer reconstructions (bench/projection.py).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import LoadedModel, model_from_payload
from .decoding import UPLOAD_BUDGET, fit_files
from .errors import GanError, ImageInputError
from .images import image_to_uint8, uint8_to_model_input
from .models import Discriminator, Generator
from .sampling import generate

# The default budget, chosen with bench/projection.py for the bundled model's shape (docs/app.md has its figures):
# steps buy more accuracy than restarts.
DEFAULT_STEPS = 200
DEFAULT_RESTARTS = 3
DEFAULT_LR = 0.2
DEFAULT_FEATURE_WEIGHT = 0.1
DEFAULT_PRIOR_WEIGHT = 0.1
MAX_LATENT_FILE_BYTES = 1 << 20


class LatentError(GanError):
    """A latent file cannot be used (names the file and the problem)."""


class ProjectionStopped(Exception):
    """`should_stop` said to stop a projection after `steps` Adam steps (e.g. its client has gone)."""

    def __init__(self, steps: int):
        super().__init__(f"stopped after {steps} steps")
        self.steps = steps


@dataclass
class Projection:
    """The best match found for one image."""

    reconstruction: torch.Tensor  # uint8 (C, H, W): G(z)
    z: torch.Tensor  # float32 (nz,) on the CPU
    losses: list[float]  # the winning restart's objective after 0, 1, ..., steps Adam steps
    distance: float  # mean |target - reconstruction| over pixels, in [0, 1] units
    target: torch.Tensor  # uint8 (C, H, W): the image that was matched, as the networks see it
    notes: list[str] = field(default_factory=list)  # how an image file was converted into the target
    features: bool = True  # whether the discriminator's features were matched (not without one, nor when NaN)


class LatentAdam:
    """Adam (torch's defaults: betas 0.9 and 0.999, eps 1e-8, no weight decay) on the one tensor z, with the arithmetic
    of torch.optim.Adam's single-tensor path (what it runs on a CPU), so the steps are the same, bit for bit. Written
    here because torch.optim's first use imports torch._dynamo: 2.3 s of a cold `python -m gan project`, which is
    otherwise the optimisation itself."""

    def __init__(self, z: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.z, self.betas, self.eps = z, betas, eps
        self.average = torch.zeros_like(z, memory_format=torch.preserve_format)
        self.average_square = torch.zeros_like(z, memory_format=torch.preserve_format)
        self.steps = 0

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One update of z from z.grad, at learning rate `lr`."""
        beta1, beta2 = self.betas
        grad = self.z.grad
        self.steps += 1
        self.average.lerp_(grad, 1 - beta1)
        self.average_square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** float(self.steps)
        bias_correction2_sqrt = (1 - beta2 ** float(self.steps)) ** 0.5
        denominator = (self.average_square.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.z.addcdiv_(self.average, denominator, value=-(lr / bias_correction1))


def discriminator_features(discriminator: Discriminator, images: torch.Tensor) -> list[torch.Tensor]:
    """Activations after each LeakyReLU of `discriminator.main`, i.e. every block before the final conv."""
    features = []
    for layer in discriminator.main[:-1]:
        images = layer(images)
        if isinstance(layer, nn.LeakyReLU):
            features.append(images)
    return features


@torch.inference_mode(False)
@torch.enable_grad()
def project(
    generator: Generator,
    target: torch.Tensor,
    discriminator: Discriminator | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    restarts: int = DEFAULT_RESTARTS,
    seed: int = 0,
    lr: float = DEFAULT_LR,
    feature_weight: float = DEFAULT_FEATURE_WEIGHT,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
    should_stop: Callable[[], bool] | None = None,
) -> Projection:
    """Project a uint8 (C, H, W) image already fitted to the model. Without a discriminator, or with one whose features
    of the target are not finite (broken weights), there is no feature term, and `features` says so.

    Deterministic for a given seed on a given device: the restarts' starting latents are drawn
    from a CPU generator seeded with `seed`. `should_stop` is asked before every step (keep it
    cheap); when it says True, ProjectionStopped is raised.
    """
    config = generator.config
    expected = (config.nc, config.image_size, config.image_size)
    if tuple(target.shape) != expected or target.dtype != torch.uint8:
        raise ValueError(f"target must be uint8 of shape {expected}, got {target.dtype} {tuple(target.shape)}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps and restarts must be at least 1, got steps={steps}, restarts={restarts}")
    generator.eval()
    if discriminator is not None:
        discriminator.eval()
    device = next(generator.parameters()).device
    goal = uint8_to_model_input(target[None]).to(device)
    goal_features = []
    if discriminator is not None and feature_weight > 0:
        with torch.no_grad():
            goal_features = discriminator_features(discriminator, goal)
        if not all(torch.isfinite(f).all() for f in goal_features):
            goal_features = []
    scales = [f.square().mean().clamp_min(1e-8) for f in goal_features]

    def objective(z: torch.Tensor) -> torch.Tensor:
        """Per-restart objective (R,)."""
        images = generator(z)
        loss = (images - goal).abs().flatten(1).mean(1)
        if goal_features:
            for made, wanted, scale in zip(
                discriminator_features(discriminator, images), goal_features, scales, strict=True
            ):
                loss = loss + feature_weight * (made - wanted).square().flatten(1).mean(1) / scale
        if prior_weight > 0:
            loss = loss + prior_weight * (z.norm(dim=1) / math.sqrt(config.nz) - 1).square()
        return loss

    start = torch.randn(restarts, config.nz, generator=torch.Generator().manual_seed(seed))
    z = start.to(device).requires_grad_(True)
    optimizer = LatentAdam(z)
    history = []
    for step in range(steps):
        if should_stop is not None and should_stop():
            raise ProjectionStopped(step)
        loss = objective(z)
        history.append(loss.detach())
        z.grad = None
        loss.sum().backward(inputs=[z])  # restarts are independent: each one's gradient is its own
        optimizer.step(lr * 0.5 * (1 + math.cos(math.pi * step / steps)))  # cosine decay: large moves, then settle
    with torch.no_grad():
        loss = objective(z)
    history.append(loss)
    best = int(loss.argmin())
    z = z[best].detach().float().cpu()
    reconstruction = generate(generator, z[None])[0]  # exactly what the saved z regenerates
    target = target.cpu()
    distance = (reconstruction.float() - target.float()).abs().mean().item() / 255.0
    losses = torch.stack(history)[:, best].tolist()
    return Projection(reconstruction, z, losses, distance, target.clone(), features=bool(goal_features))


def project_file(model: LoadedModel, path: str | os.PathLike, name: str | None = None, **options) -> Projection:
    """Decode an image file and fit it to the model as the Score tab does (`fit_upload`: a 28x28 image for a 32x32
    model is padded like the MNIST-family training data), and project it (options: see `project`).

    Raises ImageInputError for unusable files, with the same message the Score tab shows.
    """
    name = name or Path(path).name
    config = model.config
    (fitted,) = fit_files([(name, path)], config.image_size, config.nc, UPLOAD_BUDGET)
    if fitted.error:
        raise ImageInputError(fitted.error)
    notes = fitted.notes
    target = image_to_uint8(fitted.image)
    result = project(model.generator, target, model.discriminator, **options)
    result.notes = notes
    return result


def project_in_worker(model: dict, path: str, name: str, steps: int, restarts: int) -> dict:
    """`project_file` in a GPU worker (ZeroGPU's; see gan.ui.gpu): the model as plain data
    (checkpoint.model_payload), on CUDA where there is one; the result as plain data (`projection_from_plain` turns it
    back), or {"error": one line} for a file that cannot be used."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        result = project_file(model_from_payload(model, device), path, name, steps=steps, restarts=restarts)
    except GanError as error:
        return {"error": str(error)}
    plain = {key: getattr(result, key) for key in ("losses", "distance", "notes", "features")}
    return {**plain, **{key: getattr(result, key).cpu().numpy() for key in ("reconstruction", "z", "target")}}


def projection_from_plain(plain: dict) -> Projection:
    """`project_in_worker`'s answer as a Projection (a GanError for its error line)."""
    if "error" in plain:
        raise GanError(plain["error"])
    tensors = {key: torch.from_numpy(plain[key]) for key in ("reconstruction", "z", "target")}
    return Projection(**tensors, **{key: plain[key] for key in ("losses", "distance", "notes", "features")})


def latent_bytes(z: torch.Tensor) -> bytes:
    """z as a float32 (nz,) .npy file: the format every latent file of the project has (`load_latent` reads it)."""
    buffer = io.BytesIO()
    np.save(buffer, z.detach().cpu().float().numpy().reshape(-1))
    return buffer.getvalue()


def save_latent(z: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write z as a float32 (nz,) .npy file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(latent_bytes(z))
    return path


def load_latent(path: str | os.PathLike, nz: int, name: str | None = None) -> torch.Tensor:
    """Read a latent saved by `save_latent` (or any real-valued (nz,) .npy array) as float32 (nz,).

    Never unpickles. The header is checked before any data is read, so a file claiming a huge
    shape costs nothing. Raises LatentError naming the file and the problem.
    """
    name = name or Path(path).name
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise LatentError(f"{name}: cannot read the file ({error.strerror or error})") from None
    if size > MAX_LATENT_FILE_BYTES:
        raise LatentError(f"{name}: {size:,} bytes is too large for a latent of {nz} numbers")
    not_npy = f"{name}: not a .npy array file (expected the z.npy written by projection, float32 of shape ({nz},))"
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(file)
        except (ValueError, OSError, SyntaxError, EOFError):
            raise LatentError(not_npy) from None
        if dtype.hasobject:
            raise LatentError(f"{name}: holds Python objects (a pickled array), which are refused; save z as float32")
        if dtype.kind not in "fiu":
            raise LatentError(f"{name}: holds {dtype} values; a latent holds real numbers (float32)")
        if shape != (nz,):
            raise LatentError(f"{name}: shape {shape} does not fit this model; expected ({nz},)")
        file.seek(0)
        try:
            array = np.lib.format.read_array(file, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise LatentError(f"{name}: the array data is truncated or corrupt") from None
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, rejected below
        z = torch.from_numpy(np.asarray(array, dtype=np.float32).copy())
    if not torch.isfinite(z).all():
        bad = int((~torch.isfinite(z)).sum())
        raise LatentError(f"{name}: {bad} of {nz} values are NaN or infinite (or too large for float32)")
    return z
