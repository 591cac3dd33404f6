"""The GAN losses on the discriminator's logits (computed in float32), and the lazy R1 penalty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GanLoss:
    """One loss for both players, and the name of what its plots show."""

    label: str
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits on real, logits on fake)
    generator: Callable[[torch.Tensor], torch.Tensor]  # (logits on fake)


def bce_discriminator(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits against 1 for real and 0 for fake, written as softplus."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def bce_generator(logits_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: BCE-with-logits of fake images against 1."""
    return F.softplus(-logits_fake).mean()


def hinge_discriminator(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()


def hinge_generator(logits_fake: torch.Tensor) -> torch.Tensor:
    return -logits_fake.mean()


LOSSES = {
    "bce": GanLoss("BCE-with-logits loss", bce_discriminator, bce_generator),
    "hinge": GanLoss("hinge loss", hinge_discriminator, hinge_generator),
}


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor, weight: float, every: int) -> torch.Tensor:
    """Lazy R1 (Mescheder et al. 2018): `weight / 2` times the squared gradient of D's logits on the real images
    (which need `requires_grad`), applied every `every` steps and so scaled by `every`."""
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return weight / 2 * every * grad.float().square().sum(dim=[1, 2, 3]).mean()
