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

import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from .errors import CheckpointError
from .files import atomic_write
from .models import Discriminator, Generator, ModelConfig

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
GENERATOR_NAME = "model.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
RAW_GENERATOR_NAME = "generator_raw.safetensors"  # the live (non-EMA) generator, when EMA is on
STATE_PATTERN = re.compile(r"step_(\d+)\.pt$")
STATE_KEYS = ("step", "generator", "discriminator", "opt_g", "opt_d", "rng", "args")
MAX_CONFIG_BYTES = 64 * 1024  # the bundled model's config.json is 2.5 KB
MAX_CONFIG_DEPTH = 16  # it nests 3 levels
JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings (skipped whole) and brackets
LOCAL_PATH_ARGS = ("out", "data_dir", "resume")  # the trainer's own paths: noise to readers, and private


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
        name = self.metadata.get("name")
        return name if isinstance(name, str) and name else self.source


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
    config = {
        "format_version": FORMAT_VERSION,
        "model_type": "dcgan",
        **discriminator.config.to_dict(),
        **(metadata or {}),
    }
    weights = {GENERATOR_NAME: generator, DISCRIMINATOR_NAME: discriminator, RAW_GENERATOR_NAME: raw_generator}
    for name, module in weights.items():
        if module is not None:
            data = save_safetensors(_state_dict(module), metadata={"format": "pt"})  # bytes: disk errors are OSErrors
            atomic_write(folder / name, lambda p, d=data: Path(p).write_bytes(d))
    atomic_write(folder / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n"))
    return folder


def _named(folder: Path, name: str | None, relative: bool) -> str:
    """How messages name a file of an export (name None: the export): by its path, or (relative, for a Hub snapshot,
    whose place in the server's cache is nobody else's business) by its name alone."""
    if relative:
        return name or "the export"
    return str(folder / name) if name else str(folder)


def _refusal(folder: Path, name: str | None, relative: bool, problem: str) -> CheckpointError:
    """An export (name None) or its file `name` that cannot be used, named as `_named` does; for the web by name
    alone, whatever `relative` says: the app's folders are no visitor's business."""
    return CheckpointError(f"{_named(folder, name, relative)} {problem}", web=f"{_named(folder, name, True)} {problem}")


def _json_depth(text: str) -> int:
    """How deep JSON text nests arrays and objects, found without parsing it (json recurses once per level)."""
    depth = deepest = 0
    for match in JSON_TOKENS.finditer(text):
        if match.group() in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif match.group() in ("]", "}"):
            depth -= 1
    return deepest


def read_config(folder: Path, relative: bool = False) -> tuple[ModelConfig, dict]:
    """The architecture and metadata of an export's config.json, whose size and nesting are bounded before parsing:
    a model repo chosen by anyone must not be able to make the parser take the server's memory or stack."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise _refusal(folder, None, relative, f"is not a model export: {CONFIG_NAME} is missing")
    with open(path, "rb") as file:
        raw = file.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise _refusal(
            folder,
            CONFIG_NAME,
            relative,
            f"holds {path.stat().st_size:,} bytes, over the limit of {MAX_CONFIG_BYTES:,} "
            "(DCGAN Studio writes about 3,000)",
        )
    try:
        text = raw.decode()
        if _json_depth(text) > MAX_CONFIG_DEPTH:
            raise _refusal(
                folder, CONFIG_NAME, relative, f"nests deeper than {MAX_CONFIG_DEPTH} levels (DCGAN Studio writes 3)"
            )
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refusal(folder, CONFIG_NAME, relative, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _refusal(folder, CONFIG_NAME, relative, "is not a JSON object")
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise _refusal(
            folder,
            CONFIG_NAME,
            relative,
            f"has format_version {version!r:.40}; this version of DCGAN Studio reads {FORMAT_VERSION}",
        )
    try:
        config = ModelConfig.from_dict(data)
    except ValueError as error:
        raise _refusal(folder, CONFIG_NAME, relative, f"does not describe a DCGAN ({error})") from None
    return config, data


def published_config(config: dict) -> bytes:
    """config.json as it leaves this machine (a Hub push, the Train tab's zip): the export's, less the training
    machine's own paths (the local export keeps them: the app's memorisation check reads `data_dir`)."""
    training = config.get("training", {})
    if training:
        args = {k: v for k, v in training.get("args", {}).items() if k not in LOCAL_PATH_ARGS}
        config = {**config, "training": {**training, "args": args}}
    return (json.dumps(config, indent=2) + "\n").encode()


def _load_weights(module: torch.nn.Module, folder: Path, name: str, relative: bool) -> None:
    try:
        tensors = load_file(folder / name)
    except SafetensorError as error:
        raise _refusal(folder, name, relative, f"is not a readable safetensors file ({error})") from None
    except OSError as error:  # its text would repeat the path
        raise _refusal(folder, name, relative, f"is not a readable safetensors file ({error.strerror})") from None
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
        raise _refusal(folder, name, relative, f"does not match {CONFIG_NAME}: {detail}")
    module.load_state_dict(tensors)


def load_model(
    folder: str | os.PathLike, device: str | torch.device = "cpu", source: str | None = None, relative: bool = False
) -> LoadedModel:
    """Rebuild generator (and discriminator when present) from an export folder, in eval mode; `relative` names
    its files without their folder in error messages."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; --checkpoint takes an export folder holding {CONFIG_NAME}")
    config, metadata = read_config(folder, relative)
    generator = Generator(config)
    if not (folder / GENERATOR_NAME).is_file():
        raise _refusal(folder, None, relative, f"is not a complete export: {GENERATOR_NAME} is missing")
    _load_weights(generator, folder, GENERATOR_NAME, relative)
    discriminator = None
    if (folder / DISCRIMINATOR_NAME).is_file():
        discriminator = Discriminator(config)
        _load_weights(discriminator, folder, DISCRIMINATOR_NAME, relative)
        discriminator.to(device).eval()
    return LoadedModel(generator.to(device).eval(), discriminator, config, metadata, source or str(folder))


def model_payload(model: LoadedModel) -> dict:
    """The model as plain data (its config, metadata and safetensors bytes), to rebuild in another process (a GPU
    worker): nothing to unpickle, and no tensor to cross a queue."""
    networks = {"generator": model.generator, "discriminator": model.discriminator}
    return {
        "config": model.config.to_dict(),
        "metadata": model.metadata,
        "source": model.source,
        **{name: None if net is None else save_safetensors(_state_dict(net)) for name, net in networks.items()},
    }


def model_from_payload(payload: dict, device: str | torch.device = "cpu") -> LoadedModel:
    """`model_payload`'s model, rebuilt on `device`, in eval mode."""
    config = ModelConfig.from_dict(payload["config"])
    generator = Generator(config)
    generator.load_state_dict(load_safetensors(payload["generator"]))
    discriminator = None
    if payload["discriminator"] is not None:
        discriminator = Discriminator(config)
        discriminator.load_state_dict(load_safetensors(payload["discriminator"]))
        discriminator.to(device).eval()
    return LoadedModel(generator.to(device).eval(), discriminator, config, payload["metadata"], payload["source"])


def save_training_state(path: Path, state: dict) -> None:
    buffer = io.BytesIO()  # serialised first: torch.save to a full disk fails without an errno, a write with ENOSPC
    torch.save(state, buffer)
    atomic_write(path, lambda p: Path(p).write_bytes(buffer.getbuffer()))


def load_training_state(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no training state at {path}") from None
    except Exception as error:  # torch raises UnpicklingError/RuntimeError/EOFError... for foreign or broken files
        reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        if path.is_file() and path.stat().st_size == 0:
            reason = "the file is empty"
        raise CheckpointError(f"{path} is not a readable DCGAN Studio training state ({reason})") from None
    missing = [key for key in STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path} is not a complete DCGAN Studio training state (no {', '.join(missing)})")
    return state


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
