"""The Score tab: uploads as the discriminator sees them with its logits, sorted, and where they fall among the
discriminator's scores on generated samples and real training images; then what the discriminator's logit is
sensitive to (saliency maps of the uploads and of a generated sample, explore.saliency)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import gradio as gr
import torch

from ..explore import SMOOTHGRAD_SAMPLES, saliency, saliency_overlay
from ..images import image_to_uint8
from ..plots import score_histogram
from ..sampling import MAX_SEED, generate, latent_for_seed
from ..scoring import MAX_FILES, discriminator_logits, fit_files, score_files
from .assets import Reference, markdown_text, model_identity, shown_source
from .context import AppContext
from .handlers import check_int, shows_errors
from .limits import EXAMPLES
from .picker import ModelRef
from .widgets import file_input, gallery_output, image_output, seed_input

DISCLAIMER = (
    "The discriminator learned to tell this generator's samples from the training images. Its score says how "
    "training-set-like an image looks to that one network; it is **not a calibrated detector of fake images**."
)


SALIENCY_NOTE = (
    "**This shows sensitivity, not reasons.** Each map is the gradient of the discriminator's logit with respect to "
    f"the input pixels, averaged over {SMOOTHGRAD_SAMPLES} copies of the image with a little noise added "
    "(SmoothGrad): bright where a small change of a pixel would change the score most. It does not say why the "
    "discriminator scored an image as it did, nor which parts look generated. Each map is scaled to its own "
    "range; shown for each upload and for the generated sample of the seed below (image, map, map over image)."
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
    def score(
        self,
        images: list[str] | None,
        folder: list[str] | None = None,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
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
        with self.app.jobs.running(request):  # its cap's ticket ends with the work
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
            return (
                gallery,
                table,
                "\n\n".join(problems) or "All files scored.",
                self.app.outputs.write(histogram, ".png"),
            )

    @shows_errors
    def saliency(
        self,
        images: list[str] | None = None,
        folder: list[str] | None = None,
        seed: float = 0,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """What the discriminator's logit is sensitive to: for each uploaded image, and for the generated sample of
        `seed`, a SmoothGrad saliency map (the gradient of the logit with respect to the input pixels, averaged over
        noisy copies of the image). It shows where small pixel changes would move the score most: sensitivity, not
        the discriminator's reasons.

        Args:
            images: image files (up to 64, together with the folder's), may be empty
            folder: the files of an uploaded folder, may be empty
            seed: the seed of the generated sample mapped after the uploads, 0 to 4294967295

        Returns:
            a gallery of PNGs, one per image (the image as the discriminator sees it, its map, the map over the
            image), captioned with the logit and the name; and a note on the maps and any skipped file
        """
        with self.app.jobs.running(request):  # its cap's ticket ends with the work
            model = self.app.current(ref)
            if model.discriminator is None:
                raise gr.Error("this model was exported without a discriminator, so it has no saliency maps")
            seed = check_int(seed, "seed", 0, MAX_SEED)
            paths = [str(path) for path in [*(images or []), *(folder or [])]]
            prepared, errors = fit_files(model.discriminator, paths, [Path(p).name for p in paths])
            generated = generate(model.generator, latent_for_seed(seed, model.config.nz)[None])
            batch = torch.cat([*(image_to_uint8(seen)[None] for _, seen, _ in prepared), generated])
            maps = saliency(model.discriminator, batch)
            logits = discriminator_logits(model.discriminator, batch).tolist()
            names = [name for name, _, _ in prepared] + [f"seed {seed}"]
            about = {**model_identity(model), "source": shown_source(model.source), "saliency": "smoothgrad"}
            gallery = [
                (
                    self.app.png_file(saliency_overlay(image, map_), {**about, "image": name, "logit": f"{logit:.6g}"}),
                    f"{_score_text(logit, '+.2f')} {name}",
                )
                for image, map_, logit, name in zip(batch, maps, logits, names, strict=True)
            ]
            used = Counter(name for name, _, _ in prepared)
            skipped = list((Counter(Path(p).name for p in paths) - used).elements())  # named here, explained by score
            note = f" Skipped unusable file(s): {', '.join(map(markdown_text, skipped))}." if skipped else ""
            return gallery, f"Saliency maps of {len(prepared)} upload(s) and seed {seed}.{note}"


def _uploads() -> tuple[gr.File, gr.File]:
    with gr.Row():
        uploads = file_input("Images", "multiple", scale=2, elem_id="score-upload")
        folder = file_input("Or a folder of images", "directory", scale=1, elem_id="score-folder")
    return uploads, folder


def _outputs() -> list[gr.components.Component]:
    """The score endpoint's outputs: the gallery, the table, the note on problems, the histogram."""
    with gr.Row():
        seen = gallery_output(
            "As the discriminator sees them, most real-looking first", 3, 420, preview=False, elem_id="seen", scale=2
        )
        histogram = image_output(
            "Where the uploads fall", 420, pixelated=False, fullscreen=True, scale=3, elem_id="histogram"
        )
    table = gr.Dataframe(headers=["file", "logit", "probability", "conversion"], label="Scores", wrap=True)
    problems = gr.Markdown()
    return [seen, table, problems, histogram]


def _saliency() -> dict[str, gr.components.Component]:
    """The saliency section: the note, the generated sample's seed, a button and the maps."""
    gr.Markdown("### What the discriminator looks at\n" + SALIENCY_NOTE)
    with gr.Row(equal_height=True):
        seed = seed_input("Seed of a generated sample to map too", scale=2, elem_id="saliency-seed")
        button = gr.Button("Show saliency maps", scale=1)
    gallery = gallery_output("Image, map, map over the image (logit first)", 3, 360, preview=False, elem_id="saliency")
    note = gr.Markdown(elem_id="saliency-note")
    return {"seed": seed, "button": button, "outputs": [gallery, note]}


def build(app: AppContext, session_model: gr.State) -> ScoreTab:
    """The Score tab, its events wired to a ScoreTab's handler (an example set, where examples/ has one, runs it)."""
    tab = ScoreTab(app)
    uploads_group = app.group("uploads")  # decoding uploads: a group of its own, so that samples never wait behind it
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
        maps = _saliency()
        map_inputs = [uploads, folder, maps["seed"], session_model]
        scored = score_button.click(tab.score, inputs, outputs, api_name="score", **uploads_group)
        maps["button"].click(tab.saliency, map_inputs, maps["outputs"], api_name="saliency", **uploads_group)
        scored.success(tab.saliency, map_inputs, maps["outputs"], api_visibility="private", **uploads_group)
        if example_sets:
            example_scored = examples.load_input_event.then(
                tab.score, inputs, outputs, api_visibility="private", **uploads_group
            )
            example_scored.success(tab.saliency, map_inputs, maps["outputs"], api_visibility="private", **uploads_group)
    return tab
