"""The Gradio app: Sample, Interpolate, Project and Score tabs over each visitor's model.

The model picker lists the startup and bundled models and takes any Hub repo id; the choice lives in the visitor's
session (a gr.State holding a ModelRef, which the API does not expose), and loaded models sit in one small LRU
`ModelCache` shared by all sessions, bounded by count and bytes. A failed load raises gr.Error and leaves the visitor's
model as it was. What visitors download stays bounded on disk too (hub.prune_cache), and what they see names models by
repo id or folder name, never by the server's paths.

Handlers return paths of PNG/GIF files written here (never PIL images): each is written whole under a fresh name
inside Gradio's cache folder, so Gradio serves it in place without copying, whereas it rewrites PIL outputs in
place, which breaks downloads when simultaneous visitors get byte-identical images (the default seed). Endpoint
parameter names are part of the API (`gradio_client` calls them by keyword): append new ones
with defaults, never rename; new outputs go at the end.

Concurrency: torch already spreads each call over the CPU cores, so few run at once, in three queue groups by cost.
Gradio's queue skips a full group for the next one with room, so a long projection never holds back a sample: light
work (samples, the gallery, nearest images, scores: well under a second) runs INFERENCE_WORKERS at once; interpolations
(up to MAX_FRAMES frames, half a second) ANIMATION_WORKERS; projections (up to MAX_STEPS x MAX_RESTARTS, half a
minute) PROJECTION_WORKERS. The queue holds up to QUEUE_SIZE waiting requests (visitors see their position) and
refuses more rather than piling up work; interpolations and projections are also capped per visitor, per address and
in all when they are queued (JOB_CAPS, see fairness.py), which leaves the shared queue room for light work. A
projection whose client has gone (or cancelled it) stops at its next step.

Numeric inputs are checked by the handlers, not by Gradio's components (see `_checked_by_handler`), so that any value
sent as raw JSON (NaN, a string) gets the app's message naming the parameter.
"""

from __future__ import annotations

import io
import math
import random
import re
import threading
import time
from abc import ABCMeta
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder

from . import BUNDLED_MODEL
from .checkpoint import LoadedModel, load_model
from .errors import GanError, ImageInputError
from .fairness import Admission, Caps, client_gone, held_requests
from .hub.errors import looks_like_repo_id
from .hub.load import download_export, load_snapshot, prune_cache
from .plots import projection_curve, score_histogram
from .projection import DEFAULT_RESTARTS, DEFAULT_STEPS, LatentError, ProjectionStopped, load_latent, project_file
from .sampling import (
    INTERPOLATION_MODES,
    MAX_SEED,
    check_truncation,
    generate,
    gif_bytes,
    grid_image,
    interpolate_latents,
    latent_for_seed,
    latents_for_seeds,
    ping_pong,
    png_bytes,
    to_pil,
    upscale,
)
from .scoring import MAX_FILES, score_files
from .ui_assets import (
    OutputFiles,
    Reference,
    ReferenceScores,
    TrainingData,
    markdown_text,
    model_identity,
    model_summary,
    nearest_images,
    shown_source,
)

MAX_COUNT = 64
MAX_STEPS = 1000  # projection budget: about 8 ms per step for 3 restarts of the bundled model's shape on the CPU
MAX_RESTARTS = 8
MAX_FRAMES = 120
MAX_FPS = 50  # GIF frame delays are stored in 1/100 s and browsers slow anything under 20 ms down
MAX_TRUNCATION = 3
MODEL_CACHE_SIZE = 4  # Hub models kept loaded for all visitors, besides the startup and bundled ones
MODEL_CACHE_BYTES = 512 * 2**20  # and their weights at most (but the latest is kept whatever its size)
MAX_DOWNLOAD_BYTES = 256 * 2**20  # a visitor-typed repo whose weights are larger is refused
HUB_CACHE_BYTES = 1024 * 2**20  # downloads of visitor-typed repos kept on disk: at most this much
HUB_CACHE_REVISIONS = 16  # and this many revisions, most recently downloaded first
INFERENCE_WORKERS = 2  # light jobs at once: samples, the gallery, nearest images, scores
ANIMATION_WORKERS = 1  # interpolations at once
PROJECTION_WORKERS = 1  # projections at once
QUEUE_SIZE = 64  # waiting requests of all kinds
JOB_CAPS = {  # queued or running; the totals leave most of QUEUE_SIZE to light jobs
    "animation": Caps("interpolations", per_session=3, per_address=12, total=24),
    "projection": Caps("projections", per_session=2, per_address=6, total=12),
}
PNG_LEVEL = 1  # zlib level of output PNGs: the fastest; the 32 px samples are tiny either way
MAX_UPLOAD = "32mb"  # per file; a 4096x4096 RGB PNG (the pixel cap) is rarely larger
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DISCLAIMER = (
    "The discriminator learned to tell this generator's samples from the training images. Its score says how "
    "training-set-like an image looks to that one network; it is **not a calibrated detector of fake images**."
)
# Samples are 32 px: the browser scales them up, and should keep their pixels square rather than blur them ("fill"
# makes an image component show a native-size image as large as it has room for).
CSS = ".pixelated img { image-rendering: pixelated; }\n.fill img { width: 100%; height: 100%; object-fit: contain; }"


def _finite_number(value) -> bool:
    """An int or a finite float: not a bool, a string, None, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _check_number(value, name: str, low: float, high: float, whole: bool = False) -> float:
    """A numeric input as sent: anything but a finite (whole) number gets the app's message, a number out of range
    Gradio's own words for it (what its components said before they left the checks to the handlers)."""
    if not _finite_number(value) or (whole and value != int(value)):
        raise gr.Error(f"{name} must be {'a whole number' if whole else 'a number'} between {low} and {high}")
    if value < low:
        raise gr.Error(f"{name}: Value {value} is less than minimum value {low}")
    if value > high:
        raise gr.Error(f"{name}: Value {value} is greater than maximum value {high}")
    return value


def _check_int(value, name: str, low: int, high: int) -> int:
    return int(_check_number(value, name, low, high, whole=True))


def _check_truncation(value) -> float | None:
    try:
        return check_truncation(_check_number(value, "truncation", 0, MAX_TRUNCATION))
    except ValueError as error:
        raise gr.Error(str(error)) from None


def _in_range(component: gr.Number | gr.Slider, payload) -> bool:
    low, high = component.minimum, component.maximum
    return _finite_number(payload) and (low is None or payload >= low) and (high is None or payload <= high)


def _a_choice(component: gr.Radio, payload) -> bool:
    return payload in [value for _, value in component.choices]


def _checked_by_handler(base: type, accepts: Callable[[object, object], bool]) -> type:
    """A subclass of the Gradio input `base` whose preprocessing hands the handler, as sent, any payload that `accepts`
    refuses, for the handler's checks to name the parameter. Gradio's own fails on raw JSON such as NaN or "abc" with a
    generic error; and inside an event's validator, which runs the same preprocessing, any failure refuses the job
    with a bare HTTP 400 whose message gradio_client drops. Shown, and named in the API, as `base` (is_template).
    Built with ABCMeta.__new__: Gradio's ComponentMeta.__new__ would write a stub of this module beside it (ui.pyi),
    as it does for custom components, and adds nothing a subclass without events or __init__ needs."""

    def preprocess(self, payload):
        return base.preprocess(self, payload) if accepts(self, payload) else payload

    return ABCMeta.__new__(
        type(base),
        f"{base.__name__}Input",
        (base,),
        {"preprocess": preprocess, "is_template": True, "__module__": __name__},
    )


NumberInput = _checked_by_handler(gr.Number, _in_range)
SliderInput = _checked_by_handler(gr.Slider, _in_range)
RadioInput = _checked_by_handler(gr.Radio, _a_choice)


def _score_text(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "NaN" if math.isnan(value) else f"{value:+}"


def _score_cell(value: float) -> float | str:
    """A score for the table: rounded, or as text when it is not finite (JSON has no NaN: Gradio would send null)."""
    return round(value, 4) if math.isfinite(value) else _score_text(value, "")


def _not_finite_note(bad: list[str], scored: int, reference: Reference) -> list[str]:
    """The Score tab's note on the uploads (by name) and reference scores that are not finite, if any: a
    discriminator with broken weights gives NaN."""
    counts = [f"{len(bad)} of {scored} upload(s) ({', '.join(markdown_text(name) for name in bad)})"] if bad else []
    for what, values in (("generated samples", reference.generated), ("real training images", reference.real or [])):
        if not all(math.isfinite(v) for v in values):
            counts.append(f"{sum(not math.isfinite(v) for v in values)} of {len(values)} reference scores on {what}")
    return (
        [
            f"**Scores not finite:** the discriminator's logit is NaN or infinite for {' and '.join(counts)}; its "
            "weights are likely broken, and the histogram draws only the finite scores."
        ]
        if counts
        else []
    )


@dataclass(frozen=True)
class ModelRef:
    """A session's model: a local export folder (startup or bundled)
    or a Hub repo pinned to the commit it resolved to."""

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
            return load_snapshot(download_export(self.repo_id, self.commit), self.repo_id, self.revision)
        return load_model(self.folder)


def model_bytes(model: LoadedModel) -> int:
    """Memory held by a loaded model's tensors: weights and BatchNorm statistics of both networks."""
    modules = [module for module in (model.generator, model.discriminator) if module is not None]
    return sum(t.numel() * t.element_size() for module in modules for t in (*module.parameters(), *module.buffers()))


class ModelCache:
    """Loaded models shared by every session, thread-safe: pinned ones (startup, bundled) plus at most `capacity` others
    of at most `max_bytes` in all (as `size` counts them), least recently used first out; the latest one stays
    whatever its size (downloads are bounded by MAX_DOWNLOAD_BYTES). A session keeps only a ModelRef, so an evicted
    model is simply loaded again."""

    def __init__(self, capacity: int = MODEL_CACHE_SIZE, max_bytes: int = MODEL_CACHE_BYTES, size=model_bytes):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.size = size
        self.pinned: dict[ModelRef, LoadedModel] = {}
        self.recent: OrderedDict[ModelRef, LoadedModel] = OrderedDict()
        self.sizes: dict[ModelRef, int] = {}
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
                self.sizes[ref] = self.size(model)
                self.recent.move_to_end(ref)
                while len(self.recent) > 1 and (
                    len(self.recent) > self.capacity or sum(self.sizes.values()) > self.max_bytes
                ):
                    del self.sizes[self.recent.popitem(last=False)[0]]
        return model


def _label(model: LoadedModel) -> str:
    origin = model.metadata.get("hub")
    if origin:
        return origin["repo_id"] + ("" if origin["revision"] == "main" else f"@{origin['revision']}")
    bundled = Path(model.source).resolve() == BUNDLED_MODEL.resolve()
    return f"{shown_source(model.name)} ({'bundled' if bundled else Path(model.source).name})"


def _example_images() -> list[tuple[str, list[str]]]:
    """Score-tab examples: (label, files) sets of the PNGs under examples/ (a bare install has none and shows none)."""
    sets = {
        "generated and drawn": ["generated-*.png", "drawn-*.png"],
        "drawn": ["drawn-*.png"],
        "generated": ["generated-*.png"],
    }
    found = {
        label: sorted(str(p) for pattern in patterns for p in EXAMPLES.glob(pattern))
        for label, patterns in sets.items()
    }
    return [(label, files) for label, files in found.items() if files]


def build_demo(model: LoadedModel, bundled: list[str | Path] = (), cache_size: int = MODEL_CACHE_SIZE) -> gr.Blocks:
    """The app over `model`; visitors may switch (for themselves) to a `bundled` export or any Hub repo id."""
    outputs = OutputFiles(parent=get_upload_folder())  # Gradio serves them in place: no hashing and copying
    models = ModelCache(cache_size)
    training_data = TrainingData()
    references = ReferenceScores(training_data)
    jobs = Admission(JOB_CAPS, lambda: held_requests(demo))
    initial = ModelRef.of(model)
    visitor_repos: set[str] = set()  # Hub repos typed into the picker, whose downloads are bounded
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

    def png_file(image, text: dict | None = None) -> str:
        return outputs.write(png_bytes(image, text, compress_level=PNG_LEVEL), ".png")

    def select_model(model: str, revision: str = "", ref: ModelRef | None = None):
        """Switch this visitor's model to a listed one or a Hub repo id; an error leaves the current one."""
        choice, revision = (model or "").strip(), (revision or "").strip() or None
        if choice in choices and not (revision and looks_like_repo_id(choice)):
            chosen = choices[choice]
            loaded = models.get(chosen)
        elif looks_like_repo_id(choice):
            visitor_repos.add(choice)
            try:
                folder = download_export(choice, revision, max_bytes=MAX_DOWNLOAD_BYTES)
                prune_cache(
                    visitor_repos, {folder.name, initial.commit or folder.name}, HUB_CACHE_BYTES, HUB_CACHE_REVISIONS
                )  # never the startup model's download, nor this one
                chosen = ModelRef(repo_id=choice, revision=revision, commit=folder.name)
                loaded = models.get(chosen, lambda: load_snapshot(folder, choice, revision))
            except GanError as error:
                raise gr.Error(str(error)) from None
        else:
            raise gr.Error(f"{choice!r} is neither a listed model nor a Hub repo id (USER/NAME)")
        return chosen, model_summary(loaded)

    def seeded_samples(seed: float, count: float, truncation: float, ref: ModelRef | None):
        """Validated settings, the uint8 samples for seeds seed..seed+count-1, and the metadata their PNGs carry."""
        model = current(ref)
        seed = _check_int(seed, "seed", 0, MAX_SEED)
        count = _check_int(count, "count", 1, MAX_COUNT)
        truncation = _check_truncation(truncation)
        if seed + count - 1 > MAX_SEED:
            raise gr.Error(f"seeds {seed}..{seed + count - 1} run past {MAX_SEED}; choose a smaller seed")
        images = generate(model.generator, latents_for_seeds(seed, count, model.config.nz, truncation))
        about = {
            **model_identity(model),
            "source": shown_source(model.source),
            **({"truncation": truncation} if truncation else {}),
        }
        return seed, count, truncation, images, about

    def sample(seed: float, count: float, truncation: float = 0, columns: float = 0, ref: ModelRef | None = None):
        """A grid of `count` samples for seeds seed..seed+count-1, scaled up for display."""
        columns = _check_int(columns, "columns", 0, MAX_COUNT)
        seed, count, _, images, about = seeded_samples(seed, count, truncation, ref)
        grid = grid_image(images, columns or None)
        scaled = upscale(grid)
        return png_file(scaled, {**about, "seeds": f"{seed}-{seed + count - 1}", "scale": scaled.width // grid.width})

    def sample_gallery(seed: float, count: float, truncation: float = 0, ref: ModelRef | None = None):
        """Each sample of that grid alone, at native size, with its own seed in its PNG metadata. A separate
        endpoint so that `/sample` stays one file: an API round trip pays for every file it downloads."""
        seed, count, truncation, images, about = seeded_samples(seed, count, truncation, ref)
        gallery = [
            (png_file(to_pil(image), {**about, "seed": seed + i}), f"seed {seed + i}") for i, image in enumerate(images)
        ]
        return gallery, {"seed": seed, "truncation": truncation}

    def nearest(seed: float, truncation: float = 0, ref: ModelRef | None = None):
        """A sample and the training images nearest to it in pixel space: a check for memorised training images."""
        model = current(ref)
        seed = _check_int(seed, "seed", 0, MAX_SEED)
        truncation = _check_truncation(truncation)
        dataset = training_data.find(model)
        if isinstance(dataset, str):
            return [], f"No memorisation check for this model: {dataset}."
        image = generate(model.generator, latent_for_seed(seed, model.config.nz, truncation)[None])[0]
        indices, distances = nearest_images(image, dataset.images)
        gallery = [(png_file(to_pil(image), {**model_identity(model), "seed": seed}), f"seed {seed}")]
        gallery += [
            (png_file(to_pil(dataset.images[i]), {"training_image": i}), f"#{i}: {d:.2f}")
            for i, d in zip(indices, distances, strict=True)
        ]
        return gallery, (
            f"Seed {seed} and its {len(indices)} nearest of {len(dataset):,} {dataset.name} training images "
            "(Euclidean distance over pixels in [0, 1]). A near-copy of a training image sits much closer "
            "than its other neighbours."
        )

    def check_selected(shown: dict | None, ref: ModelRef | None, selected: gr.SelectData):
        """A click on a sample in the gallery checks that sample (the state says which grid is shown)."""
        if not shown:
            return gr.update(), [], ""
        seed = shown["seed"] + selected.index
        return (seed, *nearest(seed, shown["truncation"] or 0, ref))

    def interpolate(
        seed_a: float,
        seed_b: float,
        frames: float,
        mode: str,
        pingpong: bool = False,
        fps: float = 12,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """An animation from seed_a's sample to seed_b's (there and back with pingpong), and a strip of its frames."""
        with jobs.running(request):
            model = current(ref)
            seed_a = _check_int(seed_a, "seed_a", 0, MAX_SEED)
            seed_b = _check_int(seed_b, "seed_b", 0, MAX_SEED)
            frames, fps = check_path(frames, mode, fps)
            nz = model.config.nz
            return animate(
                model,
                latent_for_seed(seed_a, nz),
                latent_for_seed(seed_b, nz),
                frames,
                mode,
                pingpong,
                fps,
                {"seed_a": seed_a, "seed_b": seed_b},
            )

    def animate(model: LoadedModel, start, end, frames: int, mode: str, pingpong: bool, fps: float, ends: dict):
        """The interpolation outputs: a GIF from latent start to end, and a PNG strip of its frames."""
        images = generate(model.generator, interpolate_latents(start, end, frames, mode))
        pictures = [upscale(to_pil(image), 256) for image in images]
        gif = gif_bytes(ping_pong(pictures) if pingpong else pictures, fps=fps)
        strip = upscale(grid_image(images, columns=min(frames, 12)), 512)
        text = {
            **model_identity(model),
            "source": shown_source(model.source),
            **ends,
            "frames": frames,
            "mode": mode,
            "pingpong": bool(pingpong),
            "fps": fps,
        }
        return outputs.write(gif, ".gif"), png_file(strip, text)

    def check_path(frames: float, mode: str, fps: float) -> tuple[int, float]:
        frames = _check_int(frames, "frames", 2, MAX_FRAMES)
        if mode not in INTERPOLATION_MODES:
            raise gr.Error(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
        return frames, _check_number(fps, "fps", 1, MAX_FPS)

    def project(
        image: str | None,
        steps: float = DEFAULT_STEPS,
        restarts: float = DEFAULT_RESTARTS,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """Find the latent z whose sample best matches an uploaded image. Returns the image as the model sees it,
        the reconstruction G(z) (both PNG at the model's size), z as a float32 .npy file (for /interpolate_latent),
        the distance (mean absolute pixel error in [0, 1]), a summary, and the objective's curve (PNG)."""
        with jobs.running(request):
            return projected(image, steps, restarts, ref)

    def projected(image: str | None, steps: float, restarts: float, ref: ModelRef | None):
        model = current(ref)
        steps = _check_int(steps, "steps", 1, MAX_STEPS)
        restarts = _check_int(restarts, "restarts", 1, MAX_RESTARTS)
        if not image:
            raise gr.Error("upload an image to project")
        name = Path(image).name
        started = time.perf_counter()
        try:
            result = project_file(
                model, image, name, steps=steps, restarts=restarts, should_stop=lambda: client_gone(demo)
            )
        except ImageInputError as error:
            raise gr.Error(str(error)) from None
        except ProjectionStopped as stopped:  # nobody will read the answer: the log says what happened
            print(
                f"projection stopped after {stopped.steps} of {steps} steps: its client has gone (or cancelled it)",
                flush=True,
            )
            raise gr.Error("projection stopped: its client has gone", print_exception=False) from None
        seconds = time.perf_counter() - started
        about = {
            **model_identity(model),
            "source": shown_source(model.source),
            "projected": name,
            "steps": steps,
            "restarts": restarts,
        }
        target = png_file(to_pil(result.target), {**about, "image": "target"})
        reconstruction = png_file(
            to_pil(result.reconstruction), {**about, "image": "reconstruction", "distance": f"{result.distance:.6f}"}
        )
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem)[:40].strip("-") or "image"
        buffer = io.BytesIO()
        np.save(buffer, result.z.numpy().astype(np.float32).reshape(-1))  # the format of projection.save_latent
        z_file = outputs.write(buffer.getvalue(), ".npy", prefix=f"z-{stem}-")
        features = ""
        if model.discriminator is None:
            features = " (no discriminator in this export: pixels only)"
        elif not result.features:
            features = " (the discriminator's features are not finite, its weights broken: pixels only)"
        report = (
            f"**Distance {result.distance:.4f}** (mean absolute pixel error, 0 = identical, 1 = opposite) after "
            f"{steps} steps x {restarts} restarts in {seconds:.1f} s{features}. "
            f"**Conversion:** {'; '.join(result.notes) or 'none'}."
        )
        return (
            target,
            reconstruction,
            z_file,
            round(result.distance, 6),
            report,
            outputs.write(projection_curve(result.losses), ".png"),
        )

    def project_end(
        image: str | None,
        steps: float = DEFAULT_STEPS,
        restarts: float = DEFAULT_RESTARTS,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """A second image projected as the end of the walk: its reconstruction and its z file."""
        _, reconstruction, z_file, _, report, _ = project(image, steps, restarts, ref, request)
        return reconstruction, z_file, report

    def latent(path: str | None, nz: int, what: str):
        try:
            return load_latent(path, nz, Path(path).name)
        except LatentError as error:
            raise gr.Error(f"{what}: {error}") from None

    def interpolate_latent(
        z_a: str | None,
        seed_b: float | None = None,
        z_b: str | None = None,
        frames: float = 24,
        mode: str = "slerp",
        pingpong: bool = False,
        fps: float = 12,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """An animation and strip (as /interpolate) from latent z_a (a .npy file, e.g. from /project) to latent z_b
        when given, else to seed_b's sample."""
        with jobs.running(request):
            model = current(ref)
            frames, fps = check_path(frames, mode, fps)
            nz = model.config.nz
            if not z_a:
                raise gr.Error("upload the start latent z_a (a .npy file, e.g. the z that Project returns)")
            start = latent(z_a, nz, "z_a")
            if z_b:
                end, ends = latent(z_b, nz, "z_b"), {"z_a": Path(z_a).name, "z_b": Path(z_b).name}
            elif seed_b is not None and seed_b != "":
                seed_b = _check_int(seed_b, "seed_b", 0, MAX_SEED)
                end, ends = latent_for_seed(seed_b, nz), {"z_a": Path(z_a).name, "seed_b": seed_b}
            else:
                raise gr.Error("give the end of the walk: seed_b, or a second latent z_b")
            return animate(model, start, end, frames, mode, pingpong, fps, ends)

    def score(images: list[str] | None, folder: list[str] | None = None, ref: ModelRef | None = None):
        """Each upload as the discriminator sees it with its logit, sorted, and where the uploads fall among the
        discriminator's scores on generated samples and real training images."""
        model = current(ref)
        if model.discriminator is None:
            raise gr.Error("this model was exported without a discriminator, so it cannot score images")
        paths = [str(path) for path in [*(images or []), *(folder or [])]]
        if not paths:
            raise gr.Error("upload one or more image files (or a folder of them) to score")
        try:
            scores, errors = score_files(model.discriminator, paths, [Path(p).name for p in paths])
        except ImageInputError as error:
            raise gr.Error(str(error)) from None
        if not scores:
            raise gr.Error("no usable image: " + "; ".join(errors))
        gallery = [(png_file(s.seen), f"{_score_text(s.logit, '+.2f')} {s.name}") for s in scores]  # captions get cut
        table = [
            [s.name, _score_cell(s.logit), _score_cell(s.probability), "; ".join(s.notes) or "none"] for s in scores
        ]
        reference = references.get(ref or initial, model)
        histogram = score_histogram(
            reference.generated, reference.real, [(s.name, s.logit) for s in scores], reference.note
        )
        problems = [f"**Skipped {len(errors)} file(s):**\n" + "\n".join(f"- {e}" for e in errors)] if errors else []
        problems += _not_finite_note([s.name for s in scores if not math.isfinite(s.logit)], len(scores), reference)
        return gallery, table, "\n\n".join(problems) or "All files scored.", outputs.write(histogram, ".png")

    light_group = {"concurrency_id": "light", "concurrency_limit": INFERENCE_WORKERS}
    animation_group = {
        "concurrency_id": "animation",
        "concurrency_limit": ANIMATION_WORKERS,
        "validator": jobs.validator("animation"),
    }
    projection_group = {
        "concurrency_id": "projection",
        "concurrency_limit": PROJECTION_WORKERS,
        "validator": jobs.validator("projection"),
    }
    with gr.Blocks(title="DCGAN Studio", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# DCGAN Studio\nSample, interpolate, project and score with a DCGAN.")
        session_model = gr.State(initial)  # per visitor: switching never affects anyone else
        with gr.Row():
            picker = gr.Dropdown(
                list(choices),
                value=next(iter(choices)),
                allow_custom_value=True,
                scale=3,
                label="Model",
                info="a listed model, or type a Hub repo id (USER/NAME)",
            )
            revision = gr.Textbox(
                label="Revision", placeholder="main", info="branch, tag or commit (Hub models)", scale=1
            )
            load_button = gr.Button("Load model", scale=1, size="md")
        summary = gr.Markdown(model_summary(model), elem_id="summary")
        model_loaded = load_button.click(
            select_model,
            [picker, revision, session_model],
            [session_model, summary],
            api_name="select_model",
            concurrency_limit=1,
            concurrency_id="loading",
        )

        with gr.Tab("Sample"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    seed = NumberInput(
                        label="Seed",
                        value=0,
                        precision=0,
                        minimum=0,
                        maximum=MAX_SEED,
                        info="image i of the grid has seed+i",
                    )
                    count = SliderInput(1, MAX_COUNT, value=16, step=1, label="Count")
                    truncation = SliderInput(
                        0,
                        MAX_TRUNCATION,
                        value=0,
                        step=0.05,
                        label="Truncation (0 = off)",
                        info="redraw latent entries above this size: lower is more typical, less varied",
                    )
                    columns = SliderInput(0, MAX_COUNT, value=0, step=1, label="Grid columns (0 = square)")
                    with gr.Row():
                        random_button = gr.Button("Random seed")
                        sample_button = gr.Button("Generate", variant="primary")
                    sample_examples = gr.Examples(
                        [[0, 16, 0, 0], [2024, 64, 0, 0], [7, 12, 0.7, 6], [42, 1, 0, 0]],
                        [seed, count, truncation, columns],
                        example_labels=["16 samples", "64 samples", "12, truncated at 0.7", "one sample"],
                        label="Presets",
                        cache_examples=False,
                        api_visibility="private",
                    )
                with gr.Column(scale=3):
                    grid = gr.Image(
                        label="Samples",
                        type="filepath",
                        format="png",
                        height=520,
                        elem_id="grid",
                        elem_classes="pixelated",
                        buttons=["download", "fullscreen"],
                    )
            singles = gr.Gallery(
                label="Each sample at native size (click one to compare it with the training images)",
                columns=8,
                fit_columns=False,
                height=360,
                object_fit="contain",
                elem_id="singles",
                elem_classes="pixelated",
                buttons=["download", "fullscreen"],
            )
            shown = gr.State(None)  # which seeds the gallery shows, for a click on one of them
            with gr.Accordion("Memorisation check: the training images nearest to a sample", open=False):
                with gr.Row():
                    check_seed = NumberInput(
                        label="Seed to check", value=0, precision=0, minimum=0, maximum=MAX_SEED, scale=1
                    )
                    nearest_button = gr.Button("Find nearest training images", scale=1, size="md")
                neighbours = gr.Gallery(
                    label="The sample, then its nearest training images (number: distance)",
                    columns=9,
                    rows=1,
                    fit_columns=False,
                    height=170,
                    object_fit="contain",
                    elem_id="neighbours",
                    elem_classes="pixelated",
                )
                neighbours_note = gr.Markdown()
            show_grid = {
                "fn": sample,
                "inputs": [seed, count, truncation, columns, session_model],
                "outputs": grid,
                **light_group,
            }
            show_gallery = {
                "fn": sample_gallery,
                "inputs": [seed, count, truncation, session_model],
                "outputs": [singles, shown],
                **light_group,
            }
            sample_button.click(**show_grid, api_name="sample").then(**show_gallery, api_name="sample_gallery")
            for shown_after in (
                random_button.click(
                    lambda: random.randint(0, MAX_SEED), outputs=seed, api_visibility="private", queue=False
                ),
                sample_examples.load_input_event,
                demo.load(lambda: None, api_visibility="private", queue=False),  # a first visitor sees samples at once
                model_loaded,
            ):
                shown_after.success(**show_grid, api_visibility="private").then(
                    **show_gallery, api_visibility="private"
                )
            nearest_button.click(
                nearest,
                [check_seed, truncation, session_model],
                [neighbours, neighbours_note],
                api_name="nearest",
                **light_group,
            )
            singles.select(
                check_selected,
                [shown, session_model],
                [check_seed, neighbours, neighbours_note],
                api_visibility="private",
                **light_group,
            )

        with gr.Tab("Interpolate"):
            with gr.Row():
                with gr.Group():  # the endpoints
                    seed_a = NumberInput(label="Start seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
                    seed_b = NumberInput(label="End seed", value=1, precision=0, minimum=0, maximum=MAX_SEED)
                with gr.Column():
                    frames = SliderInput(2, MAX_FRAMES, value=24, step=1, label="Frames")
                    fps = SliderInput(1, MAX_FPS, value=12, step=1, label="Frames per second")
                with gr.Column():
                    mode = RadioInput(
                        list(INTERPOLATION_MODES),
                        value="slerp",
                        label="Path",
                        info="slerp follows the sphere where Gaussian latents live; lerp cuts through it",
                    )
                    pingpong = gr.Checkbox(label="Ping-pong loop (there and back)", value=False)
            interpolate_button = gr.Button("Interpolate", variant="primary")
            interpolate_examples = gr.Examples(
                [[0, 1, 24, "slerp", False, 12], [3, 17, 60, "slerp", True, 24], [5, 6, 12, "lerp", False, 6]],
                [seed_a, seed_b, frames, mode, pingpong, fps],
                example_labels=["0 to 1", "3 to 17 and back, smooth", "5 to 6, slow lerp"],
                label="Presets",
                cache_examples=False,
                api_visibility="private",
            )
            with gr.Row():
                animation = gr.Image(
                    label="Animation (GIF)",
                    type="filepath",
                    height=300,
                    elem_classes="pixelated",
                    buttons=["download"],
                    scale=1,
                )
                strip = gr.Image(
                    label="Frames",
                    type="filepath",
                    format="png",
                    height=300,
                    elem_classes="pixelated",
                    buttons=["download", "fullscreen"],
                    scale=2,
                )
            interpolate_inputs = [seed_a, seed_b, frames, mode, pingpong, fps, session_model]
            interpolate_button.click(
                interpolate, interpolate_inputs, [animation, strip], api_name="interpolate", **animation_group
            )
            interpolate_examples.load_input_event.then(
                interpolate, interpolate_inputs, [animation, strip], api_visibility="private", **animation_group
            )

        with gr.Tab("Project"):
            gr.Markdown(
                "Find the latent z whose sample looks most like an image, then walk from it. A 28x28 image is "
                "padded to 32x32 like the MNIST-family training data; other sizes are center-cropped and resized."
            )
            with gr.Row():
                with gr.Column(scale=2, min_width=260):
                    to_project = gr.File(
                        label="Image", type="filepath", file_count="single", elem_id="project-upload", height=140
                    )
                    with gr.Row():
                        steps = SliderInput(
                            1,
                            MAX_STEPS,
                            value=DEFAULT_STEPS,
                            step=1,
                            label="Steps",
                            info="Adam steps: more is closer and slower",
                        )
                        restarts = SliderInput(
                            1,
                            MAX_RESTARTS,
                            value=DEFAULT_RESTARTS,
                            step=1,
                            label="Restarts",
                            info="random starts, best kept",
                        )
                    project_button = gr.Button("Project", variant="primary")
                with gr.Column(scale=3):
                    with gr.Row():
                        target = gr.Image(
                            label="As the model sees it",
                            type="filepath",
                            format="png",
                            height=200,
                            elem_id="project-target",
                            elem_classes=["pixelated", "fill"],
                            buttons=["download"],
                        )
                        reconstruction = gr.Image(
                            label="Reconstruction G(z)",
                            type="filepath",
                            format="png",
                            height=200,
                            elem_id="project-reconstruction",
                            elem_classes=["pixelated", "fill"],
                            buttons=["download"],
                        )
                        curve = gr.Image(
                            label="Objective per step",
                            type="filepath",
                            format="png",
                            height=200,
                            elem_id="project-curve",
                            elem_classes="fill",
                            buttons=["download", "fullscreen"],
                            scale=2,
                        )
                    distance = gr.Number(
                        label="Distance (mean absolute pixel error, 0 to 1)", precision=4, visible=False
                    )  # for the API; the report below says it to visitors
                    project_report = gr.Markdown(elem_id="project-report")
            gr.Markdown(
                "### Walk from this image\nStart from the latent above (or upload a z.npy) and end at a seed's "
                "sample, or at a second latent: upload one, or project a second image into it."
            )
            with gr.Row():
                z_a = gr.File(
                    label="Start latent z (.npy)", type="filepath", file_count="single", elem_id="z-a", height=110
                )
                with gr.Column():
                    end_seed = NumberInput(
                        label="End seed (used when there is no end latent)",
                        value=1,
                        precision=0,
                        minimum=0,
                        maximum=MAX_SEED,
                    )
                    z_b = gr.File(
                        label="End latent z (.npy, optional)",
                        type="filepath",
                        file_count="single",
                        elem_id="z-b",
                        height=110,
                    )
                with gr.Column():
                    with gr.Accordion("Or project a second image as the end", open=False):
                        end_image = gr.File(
                            label="End image",
                            type="filepath",
                            file_count="single",
                            height=110,
                            elem_id="project-end-upload",
                        )
                        end_button = gr.Button("Project end image", size="md")
                        end_reconstruction = gr.Image(
                            label="End reconstruction",
                            type="filepath",
                            format="png",
                            height=120,
                            elem_classes=["pixelated", "fill"],
                        )
                        end_report = gr.Markdown()
            with gr.Row():
                walk_frames = SliderInput(2, MAX_FRAMES, value=24, step=1, label="Frames")
                walk_fps = SliderInput(1, MAX_FPS, value=12, step=1, label="Frames per second")
                walk_mode = RadioInput(list(INTERPOLATION_MODES), value="slerp", label="Path")
                walk_pingpong = gr.Checkbox(label="Ping-pong loop (there and back)", value=False)
            walk_button = gr.Button("Interpolate from this image", variant="primary")
            with gr.Row():
                walk_animation = gr.Image(
                    label="Animation (GIF)",
                    type="filepath",
                    height=260,
                    elem_classes="pixelated",
                    buttons=["download"],
                    scale=1,
                    elem_id="walk-animation",
                )
                walk_strip = gr.Image(
                    label="Frames",
                    type="filepath",
                    format="png",
                    height=260,
                    elem_classes="pixelated",
                    buttons=["download", "fullscreen"],
                    scale=2,
                    elem_id="walk-strip",
                )
            project_button.click(
                project,
                [to_project, steps, restarts, session_model],
                [target, reconstruction, z_a, distance, project_report, curve],
                api_name="project",
                **projection_group,
            )
            end_button.click(
                project_end,
                [end_image, steps, restarts, session_model],
                [end_reconstruction, z_b, end_report],
                api_visibility="private",
                **projection_group,
            )
            walk_button.click(
                interpolate_latent,
                [z_a, end_seed, z_b, walk_frames, walk_mode, walk_pingpong, walk_fps, session_model],
                [walk_animation, walk_strip],
                api_name="interpolate_latent",
                **animation_group,
            )

        with gr.Tab("Score"):
            gr.Markdown(
                DISCLAIMER + f" Up to {MAX_FILES} files at once; transparency is composited on black, animations "
                "give their first frame."
            )
            with gr.Row():
                uploads = gr.File(
                    label="Images", file_count="multiple", type="filepath", scale=2, elem_id="score-upload"
                )
                folder = gr.File(
                    label="Or a folder of images",
                    file_count="directory",
                    type="filepath",
                    scale=1,
                    elem_id="score-folder",
                )
            score_button = gr.Button("Score", variant="primary")
            example_sets = _example_images()
            if example_sets:
                score_examples = gr.Examples(
                    [[files] for _, files in example_sets],
                    [uploads],
                    label="Example images",
                    example_labels=[label for label, _ in example_sets],
                    cache_examples=False,
                    api_visibility="private",
                )
            with gr.Row():
                seen = gr.Gallery(
                    label="As the discriminator sees them, most real-looking first",
                    columns=3,
                    fit_columns=False,
                    height=420,
                    object_fit="contain",
                    preview=False,
                    elem_id="seen",
                    elem_classes="pixelated",
                    scale=2,
                )
                histogram = gr.Image(
                    label="Where the uploads fall",
                    type="filepath",
                    format="png",
                    height=420,
                    scale=3,
                    elem_id="histogram",
                    buttons=["download", "fullscreen"],
                )
            table = gr.Dataframe(headers=["file", "logit", "probability", "conversion"], label="Scores", wrap=True)
            problems = gr.Markdown()
            score_inputs, score_outputs = [uploads, folder, session_model], [seen, table, problems, histogram]
            score_button.click(score, score_inputs, score_outputs, api_name="score", **light_group)
            if example_sets:
                score_examples.load_input_event.then(
                    score, score_inputs, score_outputs, api_visibility="private", **light_group
                )
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
