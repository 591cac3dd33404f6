"""Discriminator scores for image files.

The discriminator was trained to tell its generator's samples from the training set, so its
logit says how "training-set-like" an image looks to that one network at that one moment of
training. It is not a calibrated detector of generated images. What its logit is sensitive to
(saliency maps of the same files, fitted by `fit_files`) is in explore.py.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .decoding import UPLOAD_BUDGET
from .decoding import fit_files as decode_files
from .errors import ImageInputError
from .images import image_to_uint8, uint8_to_model_input
from .models import Discriminator

MAX_FILES = 64


@dataclass
class Score:
    name: str
    logit: float
    probability: float
    seen: Image.Image  # the image exactly as the discriminator sees it (size, channels)
    notes: list[str] = field(default_factory=list)


@torch.inference_mode()
def discriminator_logits(discriminator: Discriminator, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """uint8 images (N, C, H, W) at the discriminator's size -> logits (N,) on the CPU."""
    discriminator.eval()
    device = next(discriminator.parameters()).device
    chunks = [discriminator(uint8_to_model_input(chunk).to(device)).float().cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks).flatten()


def score_images(discriminator: Discriminator, images: list[Image.Image]) -> list[tuple[float, float]]:
    """(logit, sigmoid) for images already fitted to the discriminator's size and channels."""
    logits = discriminator_logits(discriminator, torch.stack([image_to_uint8(image) for image in images]))
    return [(float(logit), float(torch.sigmoid(logit))) for logit in logits]


def fit_files(
    discriminator: Discriminator, paths: list[str | os.PathLike], names: list[str] | None = None
) -> tuple[list[tuple[str, Image.Image, list[str]]], list[str]]:
    """(name, image as the discriminator sees it, conversion notes) per usable file, in order, and one error line per
    unusable file. At most MAX_FILES files, decoded within UPLOAD_BUDGET (gan.decoding)."""
    names = names or [Path(p).name for p in paths]
    if len(paths) > MAX_FILES:
        raise ImageInputError(f"{len(paths)} files is over the limit of {MAX_FILES} per request; score them in batches")
    config = discriminator.config
    prepared, errors = [], []
    for fitted in decode_files(zip(names, paths, strict=True), config.image_size, config.nc, UPLOAD_BUDGET):
        if fitted.error:
            errors.append(fitted.error)
        else:
            prepared.append((fitted.name, fitted.image, fitted.notes))
    return prepared, errors


def score_files(
    discriminator: Discriminator, paths: list[str | os.PathLike], names: list[str] | None = None
) -> tuple[list[Score], list[str]]:
    """Scores sorted from most to least real-looking (any that is not finite, from broken weights, last), and one
    error line per unusable file."""
    prepared, errors = fit_files(discriminator, paths, names)
    if not prepared:
        return [], errors
    values = score_images(discriminator, [seen for _, seen, _ in prepared])
    scores = [
        Score(name, logit, prob, seen, notes)
        for (name, seen, notes), (logit, prob) in zip(prepared, values, strict=True)
    ]
    return sorted(scores, key=lambda s: -s.logit if math.isfinite(s.logit) else math.inf), errors
