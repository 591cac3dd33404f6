"""What the app computes besides its handlers: output files, the model summary, a model's identity for PNG metadata, its
training data where it is on this machine, and the discriminator's scores on generated and real images.

The training data is looked up with `download=False` only: the Debian Fashion-MNIST folder, ./data, and, for a
model served from a local folder (the operator's own), the data folder recorded in its config. A Hub model never
makes the app read a path its config names, since a visitor may choose any Hub model.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ..checkpoint import GENERATOR_NAME, LoadedModel
from ..data import SOURCES, ImageDataset, load_dataset
from ..errors import GanError
from ..files import OWNER_NAME, OwnedFolder, prune_to_bytes, remove_abandoned
from ..sampling import generate, latents_for_seeds
from ..scoring import discriminator_logits

REFERENCE_SAMPLES = 512  # generated seeds 0..511 and as many real images per model, for the score histogram
NEAREST = 8  # training images shown per memorisation check
DATASETS_KEPT = 1  # full training sets held in memory (Fashion-MNIST: 61 MB as uint8)
MAX_DATASET_BYTES = 160 * 2**20  # a set of every 32 px model (CIFAR-10: 147 MiB as uint8); 64 px sets are 4x larger
REFERENCES_KEPT = 64  # models whose reference scores are kept (a few KB each)
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~:.])")  # backslash-escaped: no markup, HTML, link or autolink
OUTPUTS_PREFIX = "dcgan-studio-"
# Gradio's cache folder (the visitors' uploads and the app's outputs) at most; Train-tab zips come at up to ~40 MB
MAX_CACHE_BYTES = 4 * 2**30
MIN_AGE_S = 300  # a file younger than this is never pruned for bytes: a handler may be reading it
MAX_SHOWN = 100  # characters of one metadata value in the summary


class OutputFiles:
    """Unique files for handler outputs, in a folder this app owns (one left by a killed app is removed at the next
    start), pruned after an hour; and below `parent`, at most `max_bytes` in all, the oldest files deleted first (but
    none younger than `min_age_s`). A grid of 64 writes 65 files, so the folders are scanned at most once a minute
    rather than on every write, and `start_pruning` scans them every minute even when nothing is written.

    With `parent` = Gradio's cache folder (as the app does), the byte bound covers the visitors' uploads too, and
    Gradio serves the files where they are instead of hashing and copying each one into its cache: each file is
    complete before a handler returns its path and never rewritten (a fresh name per write), so simultaneous
    visitors still never see a half-written file."""

    def __init__(
        self,
        max_age_s: float = 3600,
        prune_every_s: float = 60,
        parent: str | Path | None = None,
        max_bytes: int = MAX_CACHE_BYTES,
        min_age_s: float = MIN_AGE_S,
    ):
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        remove_abandoned(OUTPUTS_PREFIX, parent)
        self.owned = OwnedFolder(OUTPUTS_PREFIX, parent)
        atexit.register(self.owned.remove)
        self.folder = self.owned.path
        self.bounded = Path(parent) if parent is not None else self.folder
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.min_age_s = min_age_s
        self.prune_every_s = prune_every_s
        self.pruned = time.time()
        self.lock = threading.Lock()

    def write(self, data: bytes, suffix: str, prefix: str = "") -> str:
        path = self.folder / f"{prefix}{uuid.uuid4().hex}{suffix}"
        path.write_bytes(data)
        self._prune()
        return str(path)

    def start_pruning(self) -> None:
        """Prune every `prune_every_s` from a thread of its own: uploads arrive without any handler writing."""

        def prune_forever() -> None:
            while True:
                time.sleep(self.prune_every_s)
                self._prune()

        threading.Thread(target=prune_forever, name="prune-outputs", daemon=True).start()

    def _prune(self) -> None:
        now = time.time()
        with self.lock:
            if now - self.pruned < self.prune_every_s:
                return
            self.pruned = now
            for old in self.folder.iterdir():
                try:  # Gradio's delete_cache may remove the same old files
                    if old.name != OWNER_NAME and old.stat().st_mtime < now - self.max_age_s:
                        old.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
            prune_to_bytes(self.bounded, self.max_bytes, self.min_age_s)


@lru_cache(maxsize=32)
def _weights_digest(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def model_identity(model: LoadedModel) -> dict[str, str]:
    """`model` and `revision` for PNG metadata: a Hub model's repo id and commit, else the export's name and a
    digest of its generator weights (a local folder has no commit, but its weights name it as well)."""
    origin = model.metadata.get("hub")
    if origin:
        return {"model": origin["repo_id"], "revision": origin["commit"]}
    weights = Path(model.source) / GENERATOR_NAME
    digest = _weights_digest(str(weights), weights.stat().st_mtime_ns) if weights.is_file() else "unknown"
    return {"model": shown_source(model.name), "revision": f"local sha256:{digest}"}


def shown_source(source: str) -> str:
    """A local export as a path relative to the app's folder, or its folder's name (visitors need not see the server's
    file system); anything else (a Hub model's `repo@revision (commit ...)`, a name) as it is."""
    path = Path(source)
    if not path.is_absolute():
        return source
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def markdown_text(value) -> str:
    """A metadata value as literal Markdown text: one line, at most MAX_SHOWN characters, markup and HTML escaped (a
    Hub model's config.json is written by anyone)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split())[:MAX_SHOWN])


def _number(value, spec: str) -> str:
    return format(value, spec) if _is_number(value) else markdown_text(value)


def model_summary(model: LoadedModel) -> str:
    """The model card in two lines: where it comes from and what it draws; how it was trained and how good it is.
    Metadata of any type is shown as text, never as markup."""
    config, meta = model.config, model.metadata
    training, final, evaluation = (
        meta.get(key) if isinstance(meta.get(key), dict) else {} for key in ("training", "final_metrics", "evaluation")
    )
    channels = f"{config.nc} channel{'s' if config.nc > 1 else ''}"
    source = shown_source(model.source).replace("`", "'")  # a repo id and revision, or a local folder's name
    about = (
        f"**Model:** {markdown_text(shown_source(model.name))} · **From:** `{source}` · "
        f"**Dataset:** {markdown_text(meta.get('dataset', 'unknown'))} · "
        f"**Size:** {config.image_size}x{config.image_size}, {channels}, z={config.nz}"
    )
    facts = []
    if training:
        time_s = training.get("time_s")
        minutes = f"{time_s / 60:.0f}" if _is_number(time_s) else "?"
        minutes = f"{time_s:.0f} s" if _is_number(time_s) and time_s < 90 else f"{minutes} min"  # a Train tab run
        facts.append(
            f"**Training:** {markdown_text(training.get('steps', '?'))} steps, {minutes} on "
            f"{markdown_text(training.get('device', '?'))}"
        )
    if "d_real" in final and "d_fake" in final:
        facts.append(
            f"**Last step:** D(real) {_number(final['d_real'], '.2f')}, D(generated) {_number(final['d_fake'], '.2f')}"
        )
    if evaluation:
        names = {"fd": "FD", "precision": "precision", "recall": "recall"}
        scores = ", ".join(
            f"{name} {evaluation[key]:.3g}" for key, name in names.items() if _is_number(evaluation.get(key))
        )
        facts.append(
            f"**Evaluation** ({markdown_text(evaluation.get('num', '?'))} samples, step "
            f"{markdown_text(evaluation.get('step', '?'))}): {scores}"
        )
    elif training:
        facts.append("**Evaluation:** none recorded")
    return "\n\n".join([about, " · ".join(facts)] if facts else [about])


@dataclass
class Reference:
    """The discriminator's logits on generated samples and, where the data is here, on real training images."""

    generated: list[float]
    real: list[float] | None
    note: str  # why there are no real scores, or ""


def _too_large(name: str, size: int) -> str:
    return f"its training data ({name}) at {size}x{size} is over this server's limit of {MAX_DATASET_BYTES >> 20} MiB"


class TrainingData:
    """Each model's training set when it is on this machine, loaded once and shared (a few, least recent out)."""

    def __init__(self):
        self.loaded: OrderedDict[tuple, ImageDataset | str] = OrderedDict()
        self.lock = threading.Lock()

    def find(self, model: LoadedModel) -> ImageDataset | str:
        """The model's training images at its size and channels, or a sentence saying why they are not here."""
        name = model.metadata.get("dataset")
        if not name or not isinstance(name, str):
            return "the model does not say which data it was trained on"
        if name not in SOURCES:  # and never echo it: these notes are Markdown
            return "the model names a dataset this server does not know"
        source, size, channels = SOURCES[name], model.config.image_size, model.config.nc
        if (source.channels or channels) != channels:  # refused before loading: it would only be converted
            return f"its training data ({name}) has {source.channels} channel(s), the model {channels}"
        if (source.images or 0) * channels * size * size > MAX_DATASET_BYTES:  # sized before loading
            return _too_large(name, size)
        local = "hub" not in model.metadata
        data_dir = model.metadata.get("training", {}).get("args", {}).get("data_dir") if local else None
        key = (name, data_dir, size, channels)
        with self.lock:
            if key not in self.loaded:
                self.loaded[key] = self._load(*key)
                while len(self.loaded) > DATASETS_KEPT:
                    self.loaded.popitem(last=False)
            self.loaded.move_to_end(key)
            return self.loaded[key]

    @staticmethod
    def _load(name: str, data_dir: str | None, size: int, channels: int) -> ImageDataset | str:
        try:
            dataset = load_dataset(name, data_dir, size, download=False, channels=channels)
        except GanError:
            return f"its training data ({name}) is not available on this server"
        if dataset.channels != channels:
            return f"its training data ({name}) has {dataset.channels} channel(s), the model {channels}"
        if dataset.images.numel() > MAX_DATASET_BYTES:  # a folder: its size is known only now
            return _too_large(name, size)
        return dataset


class ReferenceScores:
    """Per model (by its ModelRef): the logits behind the Score tab's histogram, computed once."""

    def __init__(self, data: TrainingData, samples: int = REFERENCE_SAMPLES):
        self.data = data
        self.samples = samples
        self.cache: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key, model: LoadedModel) -> Reference:
        with self.lock:  # one computation at a time; later callers for the same model find it done
            if key not in self.cache:
                self.cache[key] = self._compute(model)
                while len(self.cache) > REFERENCES_KEPT:
                    self.cache.popitem(last=False)
            self.cache.move_to_end(key)
            return self.cache[key]

    def _compute(self, model: LoadedModel) -> Reference:
        fake = generate(model.generator, latents_for_seeds(0, self.samples, model.config.nz))
        generated = discriminator_logits(model.discriminator, fake).tolist()
        dataset = self.data.find(model)
        if isinstance(dataset, str):
            return Reference(generated, None, f"No real-data scores: {dataset}.")
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[: self.samples]
        return Reference(generated, discriminator_logits(model.discriminator, dataset.images[order]).tolist(), "")


def nearest_images(
    sample: torch.Tensor, images: torch.Tensor, k: int = NEAREST, chunk: int = 8192
) -> tuple[list[int], list[float]]:
    """Indices and Euclidean distances (pixels in [0, 1])
    of the k training images nearest to a uint8 (C, H, W) sample."""
    query = sample.flatten().float()[None] / 255
    distances = torch.cat([torch.cdist(query, part.flatten(1).float() / 255)[0] for part in images.split(chunk)])
    values, indices = distances.topk(min(k, len(distances)), largest=False)
    return indices.tolist(), values.tolist()
