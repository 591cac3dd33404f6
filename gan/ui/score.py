"""The Score tab: uploads as the discriminator sees them with its logits, sorted, and where they fall among the
discriminator's scores on generated samples and real training images."""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr

from ..plots import score_histogram
from ..scoring import MAX_FILES, score_files
from .assets import Reference, markdown_text
from .common import EXAMPLES, AppContext, shows_errors
from .models import ModelRef

DISCLAIMER = (
    "The discriminator learned to tell this generator's samples from the training images. Its score says how "
    "training-set-like an image looks to that one network; it is **not a calibrated detector of fake images**."
)


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


def example_images() -> list[tuple[str, list[str]]]:
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


class ScoreTab:
    """The tab's handler (a bound method, named as its event) over the app's shared state."""

    def __init__(self, app: AppContext):
        self.app = app

    @shows_errors
    def score(self, images: list[str] | None, folder: list[str] | None = None, ref: ModelRef | None = None):
        """Score images with the DCGAN's discriminator: each as the discriminator sees it with its logit, sorted,
        and where they fall among its scores on generated samples and real training images. The score says how
        training-set-like an image looks to that one network; it is not a calibrated detector of fake images.

        Args:
            images: image files (PNG, JPEG...), up to 64
            folder: a folder of image files, scored with the images

        Returns:
            a gallery of the images as the discriminator sees them (captioned with their logits), a table of logits
            and probabilities, a note on skipped files, and a histogram of scores (PNG)
        """
        model = self.app.current(ref)
        if model.discriminator is None:
            raise gr.Error("this model was exported without a discriminator, so it cannot score images")
        paths = [str(path) for path in [*(images or []), *(folder or [])]]
        if not paths:
            raise gr.Error("upload one or more image files (or a folder of them) to score")
        scores, errors = score_files(model.discriminator, paths, [Path(p).name for p in paths])
        if not scores:
            raise gr.Error("no usable image: " + "; ".join(errors))
        gallery = [  # captions get cut: the score first
            (self.app.png_file(s.seen), f"{_score_text(s.logit, '+.2f')} {s.name}") for s in scores
        ]
        table = [
            [s.name, _score_cell(s.logit), _score_cell(s.probability), "; ".join(s.notes) or "none"] for s in scores
        ]
        reference = self.app.references.get(ref or self.app.models.initial, model)
        histogram = score_histogram(
            reference.generated, reference.real, [(s.name, s.logit) for s in scores], reference.note
        )
        problems = [f"**Skipped {len(errors)} file(s):**\n" + "\n".join(f"- {e}" for e in errors)] if errors else []
        problems += _not_finite_note([s.name for s in scores if not math.isfinite(s.logit)], len(scores), reference)
        return gallery, table, "\n\n".join(problems) or "All files scored.", self.app.outputs.write(histogram, ".png")


def _uploads() -> tuple[gr.File, gr.File]:
    with gr.Row():
        uploads = gr.File(label="Images", file_count="multiple", type="filepath", scale=2, elem_id="score-upload")
        folder = gr.File(
            label="Or a folder of images",
            file_count="directory",
            type="filepath",
            scale=1,
            elem_id="score-folder",
        )
    return uploads, folder


def _outputs() -> list[gr.components.Component]:
    """The score endpoint's outputs: the gallery, the table, the note on problems, the histogram."""
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
    return [seen, table, problems, histogram]


def build(app: AppContext, session_model: gr.State) -> ScoreTab:
    """The Score tab, its events wired to a ScoreTab's handler (an example set, where examples/ has one, runs it)."""
    tab = ScoreTab(app)
    light = app.group("light")
    with gr.Tab("Score"):
        gr.Markdown(
            DISCLAIMER + f" Up to {MAX_FILES} files at once; transparency is composited on black, animations "
            "give their first frame."
        )
        uploads, folder = _uploads()
        score_button = gr.Button("Score", variant="primary")
        example_sets = example_images()
        if example_sets:
            examples = gr.Examples(
                [[files] for _, files in example_sets],
                [uploads],
                label="Example images",
                example_labels=[label for label, _ in example_sets],
                cache_examples=False,
                api_visibility="private",
            )
        inputs, outputs = [uploads, folder, session_model], _outputs()
        score_button.click(tab.score, inputs, outputs, api_name="score", **light)
        if example_sets:
            examples.load_input_event.then(tab.score, inputs, outputs, api_visibility="private", **light)
    return tab
