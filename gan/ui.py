"""The Gradio app: Sample, Interpolate and Score tabs over each visitor's model.

The model picker lists the startup and bundled models and takes any Hub repo id; the choice lives in the visitor's
session (a gr.State holding a ModelRef, which the API does not expose), and loaded models sit in one small LRU
`ModelCache` shared by all sessions. A failed load raises gr.Error and leaves the visitor's model as it was.

Handlers return paths of PNG/GIF files written here (never PIL images): Gradio copies a file
output into its cache atomically, whereas it rewrites PIL outputs in place, which breaks
downloads when simultaneous visitors get byte-identical images (the default seed). Endpoint
parameter names are part of the API (`gradio_client` calls them by keyword): append new ones
with defaults, never rename.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from . import BUNDLED_MODEL, hub
from .checkpoint import LoadedModel, load_model
from .errors import GanError, ImageInputError
from .sampling import (
    INTERPOLATION_MODES,
    MAX_SEED,
    generate,
    gif_bytes,
    grid_image,
    interpolate_latents,
    latent_for_seed,
    latents_for_seeds,
    png_bytes,
    to_pil,
    upscale,
)
from .scoring import MAX_FILES, score_files

MAX_COUNT = 64
MAX_FRAMES = 120
MODEL_CACHE_SIZE = 4  # Hub models kept loaded for all visitors, besides the startup and bundled ones
MAX_DOWNLOAD_BYTES = 256 * 2**20  # a visitor-typed repo whose weights are larger is refused
DISCLAIMER = (
    "The discriminator learned to tell this generator's samples from the training images. Its score says how "
    "training-set-like an image looks to that one network; it is **not a calibrated detector of fake images**."
)


class OutputFiles:
    """Unique files for handler outputs, pruned after an hour (Gradio keeps its own copy)."""

    def __init__(self, max_age_s: float = 3600):
        self.folder = Path(tempfile.mkdtemp(prefix="dcgan-studio-"))
        self.max_age_s = max_age_s
        self.lock = threading.Lock()

    def write(self, data: bytes, suffix: str) -> str:
        path = self.folder / f"{uuid.uuid4().hex}{suffix}"
        path.write_bytes(data)
        self._prune()
        return str(path)

    def _prune(self) -> None:
        cutoff = time.time() - self.max_age_s
        with self.lock:
            for old in self.folder.iterdir():
                if old.stat().st_mtime < cutoff:
                    old.unlink(missing_ok=True)


def _check_int(value, name: str, low: int, high: int) -> int:
    if value is None or float(value) != int(float(value)):
        raise gr.Error(f"{name} must be a whole number between {low} and {high}")
    value = int(float(value))
    if not low <= value <= high:
        raise gr.Error(f"{name} must be between {low} and {high}, got {value}")
    return value


def model_summary(model: LoadedModel) -> str:
    config, meta = model.config, model.metadata
    training = meta.get("training", {})
    parts = [
        f"**Model:** `{model.name}`",
        f"**From:** `{model.source}`",
        f"**Dataset:** {meta.get('dataset', 'unknown')}",
        f"**Size:** {config.image_size}x{config.image_size}, {config.nc} channel{'s' if config.nc > 1 else ''}, z={config.nz}",
    ]
    if training:
        parts.append(f"**Training:** {training.get('steps', '?')} steps, {training.get('time_s', 0) / 60:.0f} min on {training.get('device', '?')}")
    return " · ".join(parts)


@dataclass(frozen=True)
class ModelRef:
    """A session's model: a local export folder (startup or bundled) or a Hub repo pinned to the commit it resolved to."""

    folder: str | None = None
    repo_id: str | None = None
    revision: str | None = None  # as the visitor asked (None = main)
    commit: str | None = None

    @classmethod
    def of(cls, model: LoadedModel) -> ModelRef:
        origin = model.metadata.get("hub")
        if origin:
            revision = None if origin["revision"] == "main" else origin["revision"]
            return cls(repo_id=origin["repo_id"], revision=revision, commit=origin["commit"])
        return cls(folder=str(model.source))

    def load(self) -> LoadedModel:
        if self.repo_id:  # by commit: the local Hub cache answers, even offline
            return hub.load_snapshot(hub.download_export(self.repo_id, self.commit), self.repo_id, self.revision)
        return load_model(self.folder)


class ModelCache:
    """Loaded models shared by every session, thread-safe: pinned ones (startup, bundled) plus at most `capacity` others,
    least recently used first out. A session keeps only a ModelRef, so an evicted model is simply loaded again."""

    def __init__(self, capacity: int = MODEL_CACHE_SIZE):
        self.capacity = capacity
        self.pinned: dict[ModelRef, LoadedModel] = {}
        self.recent: OrderedDict[ModelRef, LoadedModel] = OrderedDict()
        self.lock = threading.Lock()
        self.loading = threading.Lock()  # one load at a time; cache hits never wait for it

    def pin(self, ref: ModelRef, model: LoadedModel) -> None:
        with self.lock:
            self.pinned[ref] = model

    def _lookup(self, ref: ModelRef) -> LoadedModel | None:
        with self.lock:
            if ref in self.pinned:
                return self.pinned[ref]
            if ref in self.recent:
                self.recent.move_to_end(ref)
                return self.recent[ref]
        return None

    def get(self, ref: ModelRef, load=None) -> LoadedModel:
        model = self._lookup(ref)
        if model is not None:
            return model
        with self.loading:
            model = self._lookup(ref) or (load or ref.load)()
        with self.lock:
            if ref not in self.pinned:
                self.recent[ref] = model
                self.recent.move_to_end(ref)
                while len(self.recent) > self.capacity:
                    self.recent.popitem(last=False)
        return model


def _label(model: LoadedModel) -> str:
    origin = model.metadata.get("hub")
    if origin:
        return origin["repo_id"] + ("" if origin["revision"] == "main" else f"@{origin['revision']}")
    bundled = Path(model.source).resolve() == BUNDLED_MODEL.resolve()
    return f"{model.name} ({'bundled' if bundled else Path(model.source).name})"


def build_demo(model: LoadedModel, bundled: list[str | Path] = (), cache_size: int = MODEL_CACHE_SIZE) -> gr.Blocks:
    """The app over `model`; visitors may switch (for themselves) to a `bundled` export or any Hub repo id."""
    outputs = OutputFiles()
    models = ModelCache(cache_size)
    initial = ModelRef.of(model)
    models.pin(initial, model)
    choices = {_label(model): initial}
    for folder in bundled:
        try:
            extra = load_model(folder)
        except GanError:
            continue
        ref = ModelRef(folder=str(extra.source))
        models.pin(ref, extra)
        choices.setdefault(_label(extra), ref)

    def current(ref: ModelRef | None) -> LoadedModel:
        try:
            return models.get(ref or initial)
        except GanError as error:
            raise gr.Error(f"your model could not be reloaded ({error}); pick it again or choose another") from None

    def select_model(model: str, revision: str = "", ref: ModelRef | None = None):
        """Switch this visitor's model to a listed one or a Hub repo id; an error leaves the current one."""
        choice, revision = (model or "").strip(), (revision or "").strip() or None
        if choice in choices and not (revision and hub.looks_like_repo_id(choice)):
            chosen = choices[choice]
            loaded = models.get(chosen)
        elif hub.looks_like_repo_id(choice):
            try:
                folder = hub.download_export(choice, revision, max_bytes=MAX_DOWNLOAD_BYTES)
                chosen = ModelRef(repo_id=choice, revision=revision, commit=folder.name)
                loaded = models.get(chosen, lambda: hub.load_snapshot(folder, choice, revision))
            except GanError as error:
                raise gr.Error(str(error)) from None
        else:
            raise gr.Error(f"{choice!r} is neither a listed model nor a Hub repo id (USER/NAME)")
        return chosen, model_summary(loaded)

    def sample(seed: float, count: float, ref: ModelRef | None = None):
        model = current(ref)
        seed = _check_int(seed, "seed", 0, MAX_SEED)
        count = _check_int(count, "count", 1, MAX_COUNT)
        if seed + count - 1 > MAX_SEED:
            raise gr.Error(f"seeds {seed}..{seed + count - 1} run past {MAX_SEED}; choose a smaller seed")
        images = generate(model.generator, latents_for_seeds(seed, count, model.config.nz))
        grid = grid_image(images)
        scaled = upscale(grid)
        text = {"model": model.name, "source": model.source, "seeds": f"{seed}-{seed + count - 1}", "scale": scaled.width // grid.width}
        return outputs.write(png_bytes(scaled, text), ".png")

    def interpolate(seed_a: float, seed_b: float, frames: float, mode: str, ref: ModelRef | None = None):
        model = current(ref)
        seed_a = _check_int(seed_a, "seed_a", 0, MAX_SEED)
        seed_b = _check_int(seed_b, "seed_b", 0, MAX_SEED)
        frames = _check_int(frames, "frames", 2, MAX_FRAMES)
        if mode not in INTERPOLATION_MODES:
            raise gr.Error(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
        nz = model.config.nz
        latents = interpolate_latents(latent_for_seed(seed_a, nz), latent_for_seed(seed_b, nz), frames, mode)
        images = generate(model.generator, latents)
        gif = gif_bytes([upscale(to_pil(image), 256) for image in images])
        strip = upscale(grid_image(images, columns=min(frames, 12)), 256)
        text = {"model": model.name, "source": model.source, "seed_a": seed_a, "seed_b": seed_b, "frames": frames, "mode": mode}
        return outputs.write(gif, ".gif"), outputs.write(png_bytes(strip, text), ".png")

    def score(images: list[str] | None, ref: ModelRef | None = None):
        model = current(ref)
        if model.discriminator is None:
            raise gr.Error("this model was exported without a discriminator, so it cannot score images")
        if not images:
            raise gr.Error("upload one or more image files to score")
        paths = [str(image) for image in images]
        try:
            scores, errors = score_files(model.discriminator, paths, [Path(p).name for p in paths])
        except ImageInputError as error:
            raise gr.Error(str(error)) from None
        if not scores:
            raise gr.Error("no usable image: " + "; ".join(errors))
        gallery = [
            (outputs.write(png_bytes(upscale(s.seen, 128)), ".png"), f"{s.name}: logit {s.logit:+.2f}, p={s.probability:.2f}")
            for s in scores
        ]
        table = [[s.name, round(s.logit, 4), round(s.probability, 4), "; ".join(s.notes) or "none"] for s in scores]
        problems = "\n".join(f"- {error}" for error in errors)
        return gallery, table, (f"**Skipped {len(errors)} file(s):**\n{problems}" if errors else "All files scored.")

    with gr.Blocks(title="DCGAN Studio", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# DCGAN Studio\nSample, interpolate and score with a DCGAN.")
        session_model = gr.State(initial)  # per visitor: switching never affects anyone else
        with gr.Row(equal_height=True):
            picker = gr.Dropdown(list(choices), value=next(iter(choices)), allow_custom_value=True, scale=3,
                                 label="Model", info="a listed model, or type a Hub repo id (USER/NAME)")
            revision = gr.Textbox(label="Revision", placeholder="main", info="branch, tag or commit (Hub models)", scale=1)
            load_button = gr.Button("Load model", scale=1)
        summary = gr.Markdown(model_summary(model))
        load_button.click(select_model, [picker, revision, session_model], [session_model, summary], api_name="select_model",
                          concurrency_limit=2)
        with gr.Tab("Sample"):
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
                count = gr.Slider(1, MAX_COUNT, value=16, step=1, label="Count")
            with gr.Row():
                random_button = gr.Button("Random seed")
                sample_button = gr.Button("Generate", variant="primary")
            grid = gr.Image(label="Samples (image i has seed+i)", type="filepath", format="png", buttons=["download", "fullscreen"])
            random_button.click(lambda: random.randint(0, MAX_SEED), outputs=seed, api_visibility="private")
            sample_button.click(sample, [seed, count, session_model], grid, api_name="sample", concurrency_limit=2)
            demo.load(sample, [seed, count], grid, api_visibility="private")  # first visitors see samples at once
        with gr.Tab("Interpolate"):
            with gr.Row():
                seed_a = gr.Number(label="Seed A", value=0, precision=0, minimum=0, maximum=MAX_SEED)
                seed_b = gr.Number(label="Seed B", value=1, precision=0, minimum=0, maximum=MAX_SEED)
                frames = gr.Slider(2, MAX_FRAMES, value=24, step=1, label="Frames")
                mode = gr.Radio(list(INTERPOLATION_MODES), value="slerp", label="Path")
            interpolate_button = gr.Button("Interpolate", variant="primary")
            with gr.Row():
                animation = gr.Image(label="Animation (GIF)", type="filepath", buttons=["download"])
                strip = gr.Image(label="Frames", type="filepath", format="png", buttons=["download", "fullscreen"])
            interpolate_button.click(
                interpolate, [seed_a, seed_b, frames, mode, session_model], [animation, strip], api_name="interpolate", concurrency_limit=1
            )
        with gr.Tab("Score"):
            gr.Markdown(DISCLAIMER + f" Up to {MAX_FILES} files; transparency is composited on black.")
            uploads = gr.File(label="Images", file_count="multiple", type="filepath")
            score_button = gr.Button("Score", variant="primary")
            seen = gr.Gallery(label="As the discriminator sees them, most real-looking first", columns=8, height=240, object_fit="contain", preview=False)
            table = gr.Dataframe(headers=["file", "logit", "probability", "conversion"], label="Scores", wrap=True)
            problems = gr.Markdown()
            score_button.click(score, [uploads, session_model], [seen, table, problems], api_name="score", concurrency_limit=1)
    return demo.queue(max_size=64, default_concurrency_limit=1)
