"""The widgets the tabs share: output images, galleries and animations as the app shows them (with the CSS that keeps
32 px samples' pixels square), and the inputs whose values the handlers check: numbers, sliders, radios, seeds and
files.

Numeric inputs are checked by the handlers, not by Gradio's components (see `_checked_by_handler`), so that any value
sent as raw JSON (NaN, a string) gets the app's message naming the parameter.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Callable

import gradio as gr

from ..sampling import MAX_SEED
from .handlers import finite_number

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


def _in_range(component: gr.Number | gr.Slider, payload) -> bool:
    low, high = component.minimum, component.maximum
    return finite_number(payload) and (low is None or payload >= low) and (high is None or payload <= high)


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


def seed_input(label: str = "Seed", value: int = 0, **options) -> gr.Number:
    """A seed: a whole number from 0 to MAX_SEED, checked by the handler (NumberInput)."""
    return NumberInput(label=label, value=value, precision=0, minimum=0, maximum=MAX_SEED, **options)


def file_input(label: str, file_count: str = "single", **options) -> gr.File:
    """An uploaded file (or files, or a folder): handed to the handler as paths, which it reads within its bounds."""
    return gr.File(label=label, file_count=file_count, type="filepath", **options)
