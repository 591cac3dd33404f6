"""Exported models (config.json + safetensors) and resumable training states.

An export folder is what the app, `python -m gan sample` and the Hub use:
    config.json                 format version, architecture, where the model came from
    model.safetensors           the generator used for sampling
    discriminator.safetensors   the discriminator (for scoring)
Loading rebuilds both networks from config.json alone and never unpickles anything.

A training state (`checkpoints/step_XXXXXXX.pt`) holds everything needed to continue a run
bit for bit: both networks, both optimizers, the AMP scaler, the step, every RNG state and the
run's arguments (never a token). It is written atomically and read with `weights_only=True`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .models import Discriminator, Generator, ModelConfig

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
GENERATOR_NAME = "model.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
RAW_GENERATOR_NAME = "generator_raw.safetensors"  # the live (non-EMA) generator, when EMA is on
STATE_PATTERN = re.compile(r"step_(\d+)\.pt$")


@dataclass
class LoadedModel:
    """A generator (eval mode) and, when exported, its discriminator, with the export's metadata."""

    generator: Generator
    discriminator: Discriminator | None
    config: ModelConfig
    metadata: dict = field(default_factory=dict)
    source: str = ""

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.source


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename over path, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def export_model(
    folder: str | os.PathLike,
    generator: Generator,
    discriminator: Discriminator,
    metadata: dict | None = None,
    raw_generator: Generator | None = None,
) -> Path:
    """Write an export folder; metadata (dataset, steps, metrics...) goes into config.json.

    `generator` is the one to sample from (the EMA copy when EMA is on); `raw_generator` the live one.
    """
    folder = Path(folder)
    config = {"format_version": FORMAT_VERSION, "model_type": "dcgan", **discriminator.config.to_dict(), **(metadata or {})}
    weights = {GENERATOR_NAME: generator, DISCRIMINATOR_NAME: discriminator, RAW_GENERATOR_NAME: raw_generator}
    for name, module in weights.items():
        if module is not None:
            atomic_write(folder / name, lambda p, m=module: save_file(_state_dict(m), p, metadata={"format": "pt"}))
    atomic_write(folder / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n"))
    return folder


def read_config(folder: Path) -> tuple[ModelConfig, dict]:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a model export: {CONFIG_NAME} is missing")
    try:
        data = json.loads(path.read_text())
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has format_version {version!r}; this version of DCGAN Studio reads {FORMAT_VERSION}"
            )
        config = ModelConfig.from_dict(data)
    except (json.JSONDecodeError, AttributeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path} does not describe a DCGAN ({error})") from None
    return config, data


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shape mismatch in {wrong[:3]}" if wrong else "",
            )
            if part
        )
        raise CheckpointError(f"{path} does not match {CONFIG_NAME}: {detail}")
    module.load_state_dict(tensors)


def load_model(folder: str | os.PathLike, device: str | torch.device = "cpu", source: str | None = None) -> LoadedModel:
    """Rebuild generator (and discriminator when present) from an export folder, in eval mode."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; --checkpoint takes an export folder holding {CONFIG_NAME}")
    config, metadata = read_config(folder)
    generator = Generator(config)
    if not (folder / GENERATOR_NAME).is_file():
        raise CheckpointError(f"{folder} is not a complete export: {GENERATOR_NAME} is missing")
    _load_weights(generator, folder / GENERATOR_NAME)
    discriminator = None
    if (folder / DISCRIMINATOR_NAME).is_file():
        discriminator = Discriminator(config)
        _load_weights(discriminator, folder / DISCRIMINATOR_NAME)
        discriminator.to(device).eval()
    return LoadedModel(generator.to(device).eval(), discriminator, config, metadata, source or str(folder))


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_training_state(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no training state at {path}") from None
    except Exception as error:  # torch raises UnpicklingError/RuntimeError for foreign or broken files
        raise CheckpointError(f"{path} is not a DCGAN Studio training state ({str(error).splitlines()[0]})") from None


def list_training_states(folder: Path) -> list[Path]:
    """States in folder, oldest step first."""
    if not folder.is_dir():
        return []
    states = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STATE_PATTERN.search(p.name))]
    return [p for _, p in sorted(states)]


def state_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:07d}.pt"


def prune_training_states(folder: Path, keep_last: int) -> None:
    if keep_last > 0:
        for path in list_training_states(folder)[:-keep_last]:
            path.unlink(missing_ok=True)
