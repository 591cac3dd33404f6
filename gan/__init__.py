"""DCGAN Studio: train, export, sample, interpolate and score classic DCGANs.

The names below load their modules (and torch) when first used, so that importing one light module of the package
(gan.images in the image-decoding children, gan.cli for --help) does not load torch with it.
"""

from importlib import import_module
from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "models"
# the exports that ship with the project, each listed by the app's picker; the first is what it serves by default
BUNDLED_MODELS = (MODELS / "dcgan-fashion-mnist", MODELS / "dcgan-noto-emoji")
BUNDLED_MODEL = BUNDLED_MODELS[0]

_WHERE = {
    "Discriminator": "models",
    "Generator": "models",
    "ModelConfig": "models",
    "LoadedModel": "checkpoint",
    "export_model": "checkpoint",
    "load_model": "checkpoint",
    "load_generator": "hub.load",
}

__all__ = [
    "BUNDLED_MODEL",
    "BUNDLED_MODELS",
    "Discriminator",
    "Generator",
    "LoadedModel",
    "ModelConfig",
    "export_model",
    "load_generator",
    "load_model",
]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
