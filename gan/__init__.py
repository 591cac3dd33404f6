"""DCGAN Studio: train, export, sample, interpolate and score classic DCGANs."""

from pathlib import Path

from .checkpoint import LoadedModel, export_model, load_model
from .hub.load import load_generator
from .models import Discriminator, Generator, ModelConfig

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "models" / "dcgan-fashion-mnist"

__all__ = [
    "BUNDLED_MODEL",
    "Discriminator",
    "Generator",
    "LoadedModel",
    "ModelConfig",
    "export_model",
    "load_generator",
    "load_model",
]
