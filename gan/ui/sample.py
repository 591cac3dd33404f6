"""The Sample tab: a grid of seeded samples, each sample alone in a gallery, and the memorisation check (the
training images nearest to a sample)."""

from __future__ import annotations

import random

import gradio as gr

from ..sampling import MAX_SEED, generate, grid_image, latent_for_seed, latents_for_seeds, to_pil, upscale
from .assets import model_identity, nearest_images, shown_source
from .context import AppContext
from .handlers import check_int, check_truncation_input, shows_errors
from .limits import MAX_COUNT, MAX_TRUNCATION
from .picker import ModelRef
from .widgets import SliderInput, gallery_output, image_output, seed_input


class SampleTab:
    """The tab's handlers (bound methods, named as their events) over the app's shared state."""

    def __init__(self, app: AppContext):
        self.app = app

    def seeded_samples(self, seed: float, count: float, truncation: float, ref: ModelRef | None):
        """Validated settings, the uint8 samples for seeds seed..seed+count-1, and the metadata their PNGs carry."""
        model = self.app.current(ref)
        seed = check_int(seed, "seed", 0, MAX_SEED)
        count = check_int(count, "count", 1, MAX_COUNT)
        truncation = check_truncation_input(truncation)
        if seed + count - 1 > MAX_SEED:
            raise gr.Error(f"seeds {seed}..{seed + count - 1} run past {MAX_SEED}; choose a smaller seed")
        images = generate(model.generator, latents_for_seeds(seed, count, model.config.nz, truncation))
        about = {
            **model_identity(model),
            "source": shown_source(model.source),
            **({"truncation": truncation} if truncation else {}),
        }
        return seed, count, truncation, images, about

    @shows_errors
    def sample(self, seed: float, count: float, truncation: float = 0, columns: float = 0, ref: ModelRef | None = None):
        """A grid of samples from the DCGAN for the seeds seed..seed+count-1, as one PNG scaled up for display. A seed
        always names the same image (its latent is torch.randn drawn from a generator seeded with it).

        Args:
            seed: the first seed, 0 to 4294967295; image i of the grid has seed+i
            count: how many samples, 1 to 64
            truncation: 0 for off, else 0.05 to 3: latent entries larger are redrawn (more typical, less varied)
            columns: grid columns, 0 for a near-square grid

        Returns:
            the grid as a PNG file whose metadata names the model, its revision and the seeds
        """
        columns = check_int(columns, "columns", 0, MAX_COUNT)
        seed, count, _, images, about = self.seeded_samples(seed, count, truncation, ref)
        grid = grid_image(images, columns or None)
        scaled = upscale(grid)
        text = {**about, "seeds": f"{seed}-{seed + count - 1}", "scale": scaled.width // grid.width}
        return self.app.png_file(scaled, text)

    @shows_errors
    def sample_gallery(self, seed: float, count: float, truncation: float = 0, ref: ModelRef | None = None):
        """Each sample of the grid for seeds seed..seed+count-1 alone, at the model's size. (A separate endpoint so
        that `sample` stays one file: an API round trip pays for every file it downloads.)

        Args:
            seed: the first seed, 0 to 4294967295
            count: how many samples, 1 to 64
            truncation: 0 for off, else 0.05 to 3

        Returns:
            a gallery of PNG files, each with its own seed in its metadata; and which seeds it shows
        """
        seed, count, truncation, images, about = self.seeded_samples(seed, count, truncation, ref)
        gallery = [
            (self.app.png_file(to_pil(image), {**about, "seed": seed + i}), f"seed {seed + i}")
            for i, image in enumerate(images)
        ]
        return gallery, {"seed": seed, "truncation": truncation}

    @shows_errors
    def nearest(self, seed: float, truncation: float = 0, ref: ModelRef | None = None):
        """A sample and the training images nearest to it in pixel space: a check for memorised training images
        (where the model's training set is on the server).

        Args:
            seed: the sample's seed, 0 to 4294967295
            truncation: 0 for off, else 0.05 to 3

        Returns:
            a gallery: the sample, then its nearest training images captioned with their distance; and a note
        """
        model = self.app.current(ref)
        seed = check_int(seed, "seed", 0, MAX_SEED)
        truncation = check_truncation_input(truncation)
        dataset = self.app.training_data.find(model)
        if isinstance(dataset, str):
            return [], f"No memorisation check for this model: {dataset}."
        image = generate(model.generator, latent_for_seed(seed, model.config.nz, truncation)[None])[0]
        indices, distances = nearest_images(image, dataset.images)
        gallery = [(self.app.png_file(to_pil(image), {**model_identity(model), "seed": seed}), f"seed {seed}")]
        gallery += [
            (self.app.png_file(to_pil(dataset.images[i]), {"training_image": i}), f"#{i}: {d:.2f}")
            for i, d in zip(indices, distances, strict=True)
        ]
        return gallery, (
            f"Seed {seed} and its {len(indices)} nearest of {len(dataset):,} {dataset.name} training images "
            "(Euclidean distance over pixels in [0, 1]). A near-copy of a training image sits much closer "
            "than its other neighbours."
        )

    def check_selected(self, shown: dict | None, ref: ModelRef | None, selected: gr.SelectData):
        """A click on a sample in the gallery checks that sample (the state says which grid is shown)."""
        if not shown:
            return gr.update(), [], ""
        seed = shown["seed"] + selected.index
        return (seed, *self.nearest(seed, shown["truncation"] or 0, ref))


def _settings() -> dict[str, gr.components.Component]:
    """The grid's settings, its buttons and presets (in the left column)."""
    seed = seed_input("Seed", info="image i of the grid has seed+i")
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
    examples = gr.Examples(
        [[0, 16, 0, 0], [2024, 64, 0, 0], [7, 12, 0.7, 6], [42, 1, 0, 0]],
        [seed, count, truncation, columns],
        example_labels=["16 samples", "64 samples", "12, truncated at 0.7", "one sample"],
        label="Presets",
        cache_examples=False,
        api_visibility="private",
    )
    return {
        "seed": seed,
        "count": count,
        "truncation": truncation,
        "columns": columns,
        "random": random_button,
        "generate": sample_button,
        "examples": examples,
    }


def _samples() -> dict[str, gr.components.Component]:
    """The settings beside the grid, then the gallery of single samples."""
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            parts = _settings()
        with gr.Column(scale=3):
            parts["grid"] = image_output("Samples", 520, fullscreen=True, elem_id="grid")
    parts["singles"] = gallery_output(
        "Each sample at native size (click one to compare it with the training images)",
        8,
        360,
        elem_id="singles",
        buttons=["download", "fullscreen"],
    )
    parts["shown"] = gr.State(None)  # which seeds the gallery shows, for a click on one of them
    return parts


def _memorisation_check() -> dict[str, gr.components.Component]:
    with gr.Accordion("Memorisation check: the training images nearest to a sample", open=False):
        with gr.Row():
            check_seed = seed_input("Seed to check", scale=1)
            nearest_button = gr.Button("Find nearest training images", scale=1, size="md")
        neighbours = gallery_output(
            "The sample, then its nearest training images (number: distance)", 9, 170, rows=1, elem_id="neighbours"
        )
        note = gr.Markdown()
    return {"check_seed": check_seed, "find": nearest_button, "neighbours": neighbours, "note": note}


def build(app: AppContext, session_model: gr.State, model_loaded) -> SampleTab:
    """The Sample tab, its events wired to a SampleTab's handlers: new samples also follow a random seed, a preset,
    the page's load and a model loaded (`model_loaded`)."""
    tab = SampleTab(app)
    light = app.group("light")
    with gr.Tab("Sample"):
        parts = _samples()
        check = _memorisation_check()
        settings = [parts["seed"], parts["count"], parts["truncation"]]
        show_grid = {"fn": tab.sample, "inputs": [*settings, parts["columns"], session_model], "outputs": parts["grid"]}
        show_gallery = {
            "fn": tab.sample_gallery,
            "inputs": [*settings, session_model],
            "outputs": [parts["singles"], parts["shown"]],
        }
        parts["generate"].click(**show_grid, **light, api_name="sample").then(
            **show_gallery, **light, api_name="sample_gallery"
        )
        for shown_after in (
            parts["random"].click(
                lambda: random.randint(0, MAX_SEED), outputs=parts["seed"], api_visibility="private", queue=False
            ),
            parts["examples"].load_input_event,
            app.blocks.load(
                lambda: None, api_visibility="private", queue=False
            ),  # a first visitor sees samples at once
            model_loaded,
        ):
            shown_after.success(**show_grid, **light, api_visibility="private").then(
                **show_gallery, **light, api_visibility="private"
            )
        check_outputs = [check["neighbours"], check["note"]]
        check["find"].click(
            tab.nearest,
            [check["check_seed"], parts["truncation"], session_model],
            check_outputs,
            api_name="nearest",
            **light,
        )
        parts["singles"].select(
            tab.check_selected,
            [parts["shown"], session_model],
            [check["check_seed"], *check_outputs],
            api_visibility="private",
            **light,
        )
    return tab
