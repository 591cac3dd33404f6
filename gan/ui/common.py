"""What the tabs share: the app's limits and concurrency settings, the checks of numeric inputs, the inputs that leave
those checks to the handlers, the decorator that shows the package's errors to visitors, and the state that every
handler works on (`AppContext`: the model picker, output files, training data, reference scores and admission caps).

Numeric inputs are checked by the handlers, not by Gradio's components (see `_checked_by_handler`), so that any value
sent as raw JSON (NaN, a string) gets the app's message naming the parameter.
"""

from __future__ import annotations

import functools
import inspect
import math
from abc import ABCMeta
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..checkpoint import LoadedModel
from ..errors import GanError
from ..sampling import check_truncation, png_bytes
from .assets import OutputFiles, ReferenceScores, TrainingData
from .fairness import Admission, Caps, client_gone, held_requests

if TYPE_CHECKING:
    from .models import ModelPicker, ModelRef

MAX_COUNT = 64
MAX_STEPS = 1000  # projection budget: about 8 ms per step for 3 restarts of the bundled model's shape on the CPU
MAX_RESTARTS = 8
MAX_FRAMES = 120
MAX_FPS = 50  # GIF frame delays are stored in 1/100 s and browsers slow anything under 20 ms down
MAX_TRUNCATION = 3
INFERENCE_WORKERS = 2  # light jobs at once: samples, the gallery, nearest images, scores, saliency, Explore's
UPLOAD_WORKERS = 1  # requests decoding uploaded images at once (Score and its saliency maps: up to 4 s of decoding)
ANIMATION_WORKERS = 1  # interpolations at once
PROJECTION_WORKERS = 1  # projections at once
TRAINING_WORKERS = 1  # the Train tab's runs at once (each a child process on one thread)
WORKERS = {
    "light": INFERENCE_WORKERS,
    "uploads": UPLOAD_WORKERS,
    "animation": ANIMATION_WORKERS,
    "projection": PROJECTION_WORKERS,
    "training": TRAINING_WORKERS,
}
QUEUE_SIZE = 64  # waiting requests of all kinds
JOB_CAPS = {  # queued or running; the totals leave most of QUEUE_SIZE to light jobs
    "uploads": Caps("requests with uploaded images", per_session=2, per_address=12, total=24),
    "animation": Caps("interpolations", per_session=3, per_address=12, total=24),
    "projection": Caps("projections", per_session=2, per_address=6, total=12),
    "training": Caps("training run(s)", per_session=1, per_address=2, total=6),  # up to 6 x 10 minutes of waiting
}
PNG_LEVEL = 1  # zlib level of output PNGs: the fastest; the 32 px samples are tiny either way
MAX_UPLOAD_BYTES = 32 * 2**20  # per file; a 4096x4096 RGB PNG (the pixel cap) is rarely larger
MAX_UPLOAD = f"{MAX_UPLOAD_BYTES >> 20}mb"  # the same, as launch(max_file_size=) takes it
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Samples are 32 px: the browser scales them up, and should keep their pixels square rather than blur them ("fill"
# makes an image component show a native-size image as large as it has room for).
CSS = ".pixelated img { image-rendering: pixelated; }\n.fill img { width: 100%; height: 100%; object-fit: contain; }"


def image_output(
    label: str,
    height: int | None = None,
    *,
    pixelated: bool = True,
    fill: bool = False,
    fullscreen: bool = False,
    **options,
) -> gr.Image:
    """An output image as the tabs show them: a PNG file the handler wrote, with a download button; `pixelated` for
    samples (see CSS), `fill` to fill its box, `fullscreen` for a button to view it so."""
    return gr.Image(
        label=label,
        type="filepath",
        format="png",
        height=height,
        elem_classes=[name for name, wanted in (("pixelated", pixelated), ("fill", fill)) if wanted],
        buttons=["download", "fullscreen"] if fullscreen else ["download"],
        **options,
    )


def gallery_output(label: str, columns: int, height: int, **options) -> gr.Gallery:
    """A gallery of samples or uploads at their own size, scaled up with square pixels (see CSS), `columns` wide."""
    return gr.Gallery(
        label=label,
        columns=columns,
        fit_columns=False,
        height=height,
        object_fit="contain",
        elem_classes="pixelated",
        **options,
    )


def animation_outputs(height: int, elem_prefix: str | None = None) -> list[gr.Image]:
    """An interpolation's outputs side by side: the GIF, and the strip of its frames."""
    ids = (f"{elem_prefix}-animation", f"{elem_prefix}-strip") if elem_prefix else (None, None)
    with gr.Row():
        animation = gr.Image(
            label="Animation (GIF)",
            type="filepath",
            height=height,
            elem_classes="pixelated",
            buttons=["download"],
            scale=1,
            elem_id=ids[0],
        )
        strip = image_output("Frames", height, fullscreen=True, scale=2, elem_id=ids[1])
    return [animation, strip]


def shows_errors(handler: Callable) -> Callable:
    """A handler whose GanError (any of the package's errors: ImageInputError, LatentError, HubError...) reaches the
    visitor as a gr.Error with the error's message, one actionable line, rather than as Gradio's bare "Error". The
    wrapper keeps the handler's name, docstring and signature (functools.wraps): Gradio reads the parameters and their
    annotations (gr.Request, gr.SelectData) from it, mcp.py the docstring (an MCP tool's description)."""

    if inspect.isgeneratorfunction(handler):  # a streaming handler raises while it is iterated

        @functools.wraps(handler)
        def streamed(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except GanError as error:
                raise gr.Error(str(error)) from None

        return streamed

    @functools.wraps(handler)
    def shown(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except GanError as error:
            raise gr.Error(str(error)) from None

    return shown


def _finite_number(value) -> bool:
    """An int or a finite float: not a bool, a string, None, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def check_number(value, name: str, low: float, high: float, whole: bool = False) -> float:
    """A numeric input as sent: anything but a finite (whole) number gets the app's message, a number out of range
    Gradio's own words for it (what its components said before they left the checks to the handlers)."""
    if not _finite_number(value) or (whole and value != int(value)):
        raise gr.Error(f"{name} must be {'a whole number' if whole else 'a number'} between {low} and {high}")
    if value < low:
        raise gr.Error(f"{name}: Value {value} is less than minimum value {low}")
    if value > high:
        raise gr.Error(f"{name}: Value {value} is greater than maximum value {high}")
    return value


def check_int(value, name: str, low: int, high: int) -> int:
    return int(check_number(value, name, low, high, whole=True))


def check_truncation_input(value) -> float | None:
    """The truncation input: a number in 0..MAX_TRUNCATION, then 0 (off) or at least the smallest truncation."""
    try:
        return check_truncation(check_number(value, "truncation", 0, MAX_TRUNCATION))
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
    Built with ABCMeta.__new__: Gradio's ComponentMeta.__new__ would write a stub of this module beside it
    (common.pyi), as it does for custom components, and adds nothing a subclass without events or __init__ needs."""

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


@dataclass(eq=False)
class AppContext:
    """What all handlers of one app share, whoever the visitor: the model picker (models and their cache), the output
    files, the training data and reference scores found so far, and the admission caps on queued jobs. `blocks` is
    the app once built (the caps and `client_gone` read its queue); handlers called in-process need none."""

    models: ModelPicker
    outputs: OutputFiles
    training_data: TrainingData = field(default_factory=TrainingData)
    blocks: gr.Blocks | None = None
    references: ReferenceScores = field(init=False)
    jobs: Admission = field(init=False)

    def __post_init__(self):
        self.references = ReferenceScores(self.training_data)
        self.jobs = Admission(JOB_CAPS, lambda: held_requests(self.blocks) if self.blocks else set())

    def current(self, ref: ModelRef | None) -> LoadedModel:
        """The session's model (the startup model for a session that chose none)."""
        return self.models.current(ref)

    def png_file(self, image, text: dict | None = None) -> str:
        """A PNG output file of `image` (a PIL image) carrying `text` as metadata: its path."""
        return self.outputs.write(png_bytes(image, text, compress_level=PNG_LEVEL), ".png")

    def client_gone(self, event_id: str | None = None) -> bool:
        """Whether the client of an event (by default the one the calling handler runs for) has gone (never
        in-process)."""
        return self.blocks is not None and client_gone(self.blocks, event_id)

    def group(self, kind: str) -> dict:
        """An event's queue settings for jobs of `kind` ("light", "animation", "projection", "training"): its group
        and how many of them run at once, and for the capped kinds the validator that admits them."""
        settings = {"concurrency_id": kind, "concurrency_limit": WORKERS[kind]}
        if kind in JOB_CAPS:
            settings["validator"] = self.jobs.validator(kind)
        return settings
