"""The classic DCGAN generator and discriminator (Radford et al. 2015), sized by a `ModelConfig`.

Both networks mirror each other: the generator starts from a 4x4 map and doubles it with
stride-2 transposed convolutions up to the image size; the discriminator halves the image with
stride-2 convolutions down to 4x4 and ends with a 4x4 convolution to one logit. Deriving the
number of blocks from the image size keeps every supported size runnable (the often-copied
32x32 discriminator that applies a 4x4 kernel to a 2x2 map is not).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

SUPPORTED_IMAGE_SIZES = (32, 64)
SUPPORTED_CHANNELS = (1, 3)
D_NORMS = ("batch", "none")
# Far above anything train.py makes in practice (default nz 100, widths 64), far below what breaks torch or memory.
MAX_LATENT = 4096  # nz
MAX_WIDTH = 4096  # ngf, ndf
MAX_PARAMETERS = 2**30  # both networks together: 4 GiB of float32 weights (ngf = ndf = 512 at 64 px is 0.35e9)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters: everything needed to rebuild both networks."""

    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    nc: int = 1
    image_size: int = 32
    d_norm: str = "batch"  # "batch" (classic) or "none" (spectral normalisation during training)

    def __post_init__(self):
        """Refuse any value but a plain int in range (not a bool, float or string) with one line naming the field,
        and a size whose weights would not fit in memory, before anything is built."""
        if not isinstance(self.d_norm, str) or self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}, got {self.d_norm!r:.40}")
        for name, allowed in (("image_size", SUPPORTED_IMAGE_SIZES), ("nc", SUPPORTED_CHANNELS)):
            value = getattr(self, name)
            if type(value) is not int or value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r:.40}")
        for name, limit in (("nz", MAX_LATENT), ("ngf", MAX_WIDTH), ("ndf", MAX_WIDTH)):
            value = getattr(self, name)
            if type(value) is not int or not 1 <= value <= limit:
                raise ValueError(f"{name} must be a whole number from 1 to {limit}, got {value!r:.40}")
        if self.parameters > MAX_PARAMETERS:
            raise ValueError(
                f"nz={self.nz}, ngf={self.ngf}, ndf={self.ndf} make {self.parameters:,} weights, over the "
                f"limit of {MAX_PARAMETERS:,}"
            )

    @property
    def num_blocks(self) -> int:
        """Stride-2 stages between the 4x4 map and the image (3 for 32 px, 4 for 64 px)."""
        return int(math.log2(self.image_size)) - 2

    @property
    def parameters(self) -> int:
        """Weights of both networks (BatchNorm included), counted from the config without building them."""
        width = self.ngf * 2 ** (self.num_blocks - 1)
        count = self.nz * width * 16 + 2 * width  # Generator: the first transposed conv and its BatchNorm
        for _ in range(self.num_blocks - 1):
            count += width * (width // 2) * 16 + width  # conv + BatchNorm (2 x width // 2)
            width //= 2
        count += width * self.nc * 16
        width = self.ndf
        count += self.nc * width * 16  # Discriminator
        for _ in range(self.num_blocks - 1):
            count += width * 2 * width * 16 + (4 * width if self.d_norm == "batch" else 2 * width)  # BatchNorm, or bias
            width *= 2
        return count + width * 16

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, nz) or (N, nz, 1, 1) -> images (N, nc, size, size) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = config.ngf * 2 ** (config.num_blocks - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(config.num_blocks - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, config.nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.config.nz, 1, 1))


class Discriminator(nn.Module):
    """images (N, nc, size, size) -> logits (N,). No sigmoid: losses use BCE-with-logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = config.ndf
        layers: list[nn.Module] = [nn.Conv2d(config.nc, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        batchnorm = config.d_norm == "batch"
        for _ in range(config.num_blocks - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batchnorm)]
            layers += [nn.BatchNorm2d(width * 2)] if batchnorm else []
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


def add_spectral_norm(discriminator: Discriminator) -> Discriminator:
    """Spectral normalisation (Miyato et al. 2018) on every conv, as a parametrization."""
    for module in discriminator.modules():
        if isinstance(module, nn.Conv2d):
            nn.utils.parametrizations.spectral_norm(module)
    return discriminator


def without_spectral_norm(discriminator: Discriminator) -> Discriminator:
    """A plain copy whose conv weights are the normalised W / sigma: what the trained network computes."""
    plain = Discriminator(discriminator.config).to(next(discriminator.parameters()).device)
    was_training = discriminator.training
    discriminator.eval()  # in training mode, reading the weight would run (and advance) a power iteration
    with torch.no_grad():
        for source, target in zip(discriminator.main, plain.main, strict=True):
            if isinstance(source, nn.Conv2d):
                target.weight.copy_(source.weight)  # reading a parametrized weight applies it
                if source.bias is not None:
                    target.bias.copy_(source.bias)
    discriminator.train(was_training)
    return plain


@functools.cache
def forward_flops(config: ModelConfig) -> int:
    """Floating-point operations of one image through G then D (torch's FLOP counter, on shapes alone): what a
    projection step costs, relative to another model's."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        generator, discriminator, latent = Generator(config), Discriminator(config), torch.zeros(1, config.nz)
    with FlopCounterMode(display=False) as counter:
        discriminator(generator(latent))
    return counter.get_total_flops()
