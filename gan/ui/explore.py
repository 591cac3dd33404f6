"""The Explore tab: vector arithmetic on latents (A - B + C, as in the DCGAN paper's figure) and the principal
directions of the model's latent space, over the model-side code in explore.py."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import torch

from ..explore import (
    DEFAULT_NEIGHBOURS,
    DEFAULT_NOISE,
    MAX_GROUP,
    STRIP_SIGMAS,
    arithmetic,
    arithmetic_figure,
    direction_strips,
    move,
    principal_directions,
    strips_figure,
)
from ..projection import LatentError, latent_bytes, load_latent
from ..sampling import MAX_SEED, generate, latent_for_seed, to_pil
from .assets import model_identity, shown_source
from .context import AppContext
from .handlers import check_int, check_number, shows_errors
from .picker import ModelRef, bundled_folder
from .widgets import SliderInput, file_input, image_output, seed_input

MAX_NEIGHBOURS = 16
MAX_NOISE = 2.0
SHOWN_DIRECTIONS = 8  # sliders and strips
MAX_OFFSET = 3.0  # standard deviations along a direction
# Each bundled model's example (by its folder's name): the seeds of groups A, B and C, and what A - B + C shows
# (docs/explore-arithmetic.png, docs/emoji-arithmetic.png). The boxes show the picked model's.
EXAMPLES = {
    "dcgan-fashion-mnist": (
        ("117, 119, 167", "137, 142, 151", "25, 46, 78"),
        "dark long-sleeved tops - grey short-sleeved tops + light short-sleeved tops gives a light long-sleeved top",
    ),
    "dcgan-noto-emoji": (
        ("4, 41, 89", "44, 71, 63", "14, 40, 88"),
        "light-skinned men in teal - dark-skinned men in teal + dark-skinned women in purple gives a light-skinned "
        "person in purple, with colour noise around it",
    ),
}
SEPARATORS = re.compile(r"[,;\s]+")
DIGITS = re.compile(r"[0-9]{1,10}")


def _seeds(text, name: str) -> list[int]:
    """The seeds in a group's text (whole numbers separated by commas or spaces; a number is one seed)."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if text is None:
        return []
    if not isinstance(text, str):
        raise gr.Error(f"seeds_{name.lower()} must be text: seeds separated by commas, e.g. '117, 119'")
    seeds = []
    for token in SEPARATORS.split(text.strip()):
        if token and not (DIGITS.fullmatch(token) and int(token) <= MAX_SEED):
            raise gr.Error(f"seeds_{name.lower()}: {token[:20]!r} is not a seed (a whole number from 0 to {MAX_SEED})")
        seeds += [int(token)] if token else []
    return seeds


def _group(name: str, text, files: list[str] | None, nz: int) -> tuple[torch.Tensor, list[str]]:
    """A group's latents (k, nz): its seeds' then its z.npy files' (refused as Project refuses them), and labels."""
    seeds = _seeds(text, name)
    files = [str(path) for path in files or []]
    count = len(seeds) + len(files)
    if not 1 <= count <= MAX_GROUP:
        given = "is empty" if not count else f"holds {count}"
        raise gr.Error(f"group {name} {given}: give it one to {MAX_GROUP} seeds or z.npy files")
    latents = [latent_for_seed(seed, nz) for seed in seeds]
    for path in files:
        try:
            latents.append(load_latent(path, nz, Path(path).name))
        except LatentError as error:
            raise LatentError(f"z_{name.lower()}: {error}") from None
    return torch.stack(latents), [f"seed {seed}" for seed in seeds] + [Path(path).stem for path in files]


def example(model) -> tuple[tuple[str, str, str], str] | None:
    """A bundled model's example groups and what they show; None for any other model."""
    folder = bundled_folder(model)
    return EXAMPLES.get(folder.name) if folder else None


def example_note(found: tuple[tuple[str, str, str], str] | None) -> str:
    return f"This model's example seeds: {found[1]}." if found else "Type a model's seeds into the groups."


class ExploreTab:
    """The tab's handlers (bound methods, named as their events) over the app's shared state."""

    def __init__(self, app: AppContext):
        self.app = app

    def example_groups(self, ref: ModelRef | None):
        """A picked bundled model's example seeds in the groups' boxes (other models leave them as they are)."""
        found = example(self.app.current(ref))
        return [*(found[0] if found else [gr.skip()] * 3), example_note(found)]

    @shows_errors
    def arithmetic(
        self,
        seeds_a: str = "",
        seeds_b: str = "",
        seeds_c: str = "",
        z_a: list[str] | None = None,
        z_b: list[str] | None = None,
        z_c: list[str] | None = None,
        neighbours: float = DEFAULT_NEIGHBOURS,
        noise: float = DEFAULT_NOISE,
        noise_seed: float = 0,
        ref: ModelRef | None = None,
    ):
        """Vector arithmetic on latents, as in the DCGAN paper: each of three groups A, B and C (one to three seeds
        or z.npy latent files each) is replaced by the mean of its latents, and the result is the generator's image
        of mean A - mean B + mean C, shown with the groups' images and the result's neighbours (its z plus small
        seeded noise).

        Args:
            seeds_a: group A's seeds, whole numbers separated by commas, e.g. "117, 119, 167" (may be empty)
            seeds_b: group B's seeds
            seeds_c: group C's seeds
            z_a: group A's latent files (.npy, float32 of the model's nz, e.g. from /project), after its seeds
            z_b: group B's latent files
            z_c: group C's latent files
            neighbours: how many neighbours to show, 0 to 16
            noise: the neighbours' noise, a standard deviation per latent entry, 0 to 2
            noise_seed: the seed of that noise, 0 to 4294967295

        Returns:
            the figure (PNG: the groups, their means, the result and its neighbours), the result alone (PNG at the
            model's size) and its latent z as a float32 .npy file (for /interpolate_latent)
        """
        model = self.app.current(ref)
        nz = model.config.nz
        groups = [
            _group(name, text, files, nz)
            for name, text, files in zip("ABC", (seeds_a, seeds_b, seeds_c), (z_a, z_b, z_c), strict=True)
        ]
        neighbours = check_int(neighbours, "neighbours", 0, MAX_NEIGHBOURS)
        noise = check_number(noise, "noise", 0, MAX_NOISE)
        noise_seed = check_int(noise_seed, "noise_seed", 0, MAX_SEED)
        result = arithmetic(model.generator, *(latents for latents, _ in groups), neighbours, noise, noise_seed)
        text = {
            **model_identity(model),
            "source": shown_source(model.source),
            **{f"group_{name}": ", ".join(labels) for name, (_, labels) in zip("abc", groups, strict=True)},
            "neighbour_noise": noise,
            "noise_seed": noise_seed,
        }
        figure = self.app.png_file(arithmetic_figure(result, [labels for _, labels in groups]), text)
        alone = self.app.png_file(to_pil(result.image), {**text, "image": "mean A - mean B + mean C"})
        return figure, alone, self.app.outputs.write(latent_bytes(result.z), ".npy", prefix="z-arithmetic-")

    @shows_errors
    def directions(
        self,
        seed: float = 0,
        d1: float = 0,
        d2: float = 0,
        d3: float = 0,
        d4: float = 0,
        d5: float = 0,
        d6: float = 0,
        d7: float = 0,
        d8: float = 0,
        ref: ModelRef | None = None,
    ):
        """The principal directions of the model's latent space (the SVD of its first layer, which is PCA of that
        layer's activations), computed once per model: a seed's sample moved along the top eight by d1..d8, a strip
        per direction from -3 to +3 standard deviations around the seed's latent, and the variance each explains.

        Args:
            seed: the sample's seed, 0 to 4294967295
            d1: how far to move along direction 1, in standard deviations, -3 to 3
            d2: along direction 2
            d3: along direction 3
            d4: along direction 4
            d5: along direction 5
            d6: along direction 6
            d7: along direction 7
            d8: along direction 8

        Returns:
            the moved sample (PNG at the model's size), the strips (PNG, a row per direction), a table of the
            variance each direction explains (percent, and cumulative), and the moved latent as a float32 .npy file
        """
        model = self.app.current(ref)
        seed = check_int(seed, "seed", 0, MAX_SEED)
        offsets = [d1, d2, d3, d4, d5, d6, d7, d8]
        offsets = [check_number(v, f"d{i + 1}", -MAX_OFFSET, MAX_OFFSET) for i, v in enumerate(offsets)]
        found = principal_directions(model.generator)
        shown = min(SHOWN_DIRECTIONS, len(found.vectors))
        z = latent_for_seed(seed, model.config.nz)
        moved = move(z, found.vectors, offsets[:shown])
        text = {**model_identity(model), "source": shown_source(model.source), "seed": seed}
        moves = {f"d{i + 1}": float(v) for i, v in enumerate(offsets[:shown]) if v}
        sample = self.app.png_file(to_pil(generate(model.generator, moved[None])[0]), {**text, **moves})
        strips = direction_strips(model.generator, z, found.vectors[:shown])
        sigmas = f"{STRIP_SIGMAS[0]:+g} to {STRIP_SIGMAS[-1]:+g}"
        figure = self.app.png_file(strips_figure(strips, shown), {**text, "strips": f"directions 1-{shown}, {sigmas}"})
        cumulative = found.variance.cumsum(0)
        table = [
            [i + 1, round(100 * float(found.variance[i]), 2), round(100 * float(cumulative[i]), 2)]
            for i in range(shown)
        ]
        return sample, figure, table, self.app.outputs.write(latent_bytes(moved), ".npy", prefix=f"z-seed{seed}-moved-")


def _groups(values: tuple[str, str, str]) -> list[gr.components.Component]:
    """Each group's seeds and z files, in the arithmetic endpoint's order: seeds A, B, C, then files A, B, C."""
    seeds, files = [], []
    with gr.Row():
        for name, value, what in zip("ABC", values, ("minus", "plus", ""), strict=True):
            with gr.Column(min_width=220):
                seeds.append(
                    gr.Textbox(
                        label=f"Group {name}: seeds",
                        value=value,
                        info=f"one to {MAX_GROUP}, with the files below" + (f"; then {what}" if what else ""),
                        elem_id=f"seeds-{name.lower()}",
                    )
                )
                files.append(
                    file_input(
                        f"Group {name}: z.npy files (optional)",
                        "multiple",
                        file_types=[".npy"],
                        height=110,
                        elem_id=f"z-{name.lower()}-files",
                    )
                )
    return [*seeds, *files]


def _arithmetic(app: AppContext, tab: ExploreTab, session_model: gr.State, model_loaded) -> None:
    gr.Markdown(
        "Each group's latent is the mean of its one to three seeds or z.npy files (from Project); the result is "
        "the sample of **mean A - mean B + mean C**, as in the DCGAN paper. The neighbours add a little seeded "
        "noise to the result's z; download z to walk from it in Project."
    )
    found = example(app.models.startup)
    note = gr.Markdown(example_note(found), elem_id="arithmetic-example")
    groups = _groups(found[0] if found else ("", "", ""))
    model_loaded.success(
        tab.example_groups, [session_model], [*groups[:3], note], api_visibility="private", **app.group("light")
    )
    with gr.Row():
        neighbours = SliderInput(0, MAX_NEIGHBOURS, value=DEFAULT_NEIGHBOURS, step=1, label="Neighbours")
        noise = SliderInput(0, MAX_NOISE, value=DEFAULT_NOISE, step=0.05, label="Neighbours' noise (sd per entry)")
        noise_seed = seed_input("Noise seed")
    button = gr.Button("Compute A - B + C", variant="primary")
    # no label shown: it would cover A's header
    figure = image_output("A - B + C", 420, fill=True, fullscreen=True, elem_id="arithmetic-figure", show_label=False)
    with gr.Row():
        result = image_output("The result alone", 160, fill=True, fullscreen=True, elem_id="arithmetic-result")
        z_file = gr.File(label="The result's z (.npy)", elem_id="arithmetic-z", height=110)
    inputs = [*groups, neighbours, noise, noise_seed, session_model]
    button.click(tab.arithmetic, inputs, [figure, result, z_file], api_name="arithmetic", **app.group("light"))


def _sliders() -> list[gr.Slider]:
    sliders = []
    with gr.Row():
        for column in range(2):
            with gr.Column(min_width=200):
                for i in range(column * SHOWN_DIRECTIONS // 2, (column + 1) * SHOWN_DIRECTIONS // 2):
                    slider = SliderInput(
                        -MAX_OFFSET,
                        MAX_OFFSET,
                        value=0,
                        step=0.25,
                        label=f"Direction {i + 1}",
                        elem_id=f"direction-{i + 1}",
                    )
                    sliders.append(slider)
    return sliders


def _directions(app: AppContext, tab: ExploreTab, session_model: gr.State) -> None:
    gr.Markdown(
        "The model's principal directions: DCGAN's first layer is linear before BatchNorm, so PCA of its "
        "activations is an SVD of its (BatchNorm-scaled) weights, computed once per model and cached. Each "
        "direction is a unit vector in z, most variance first, its largest entry positive; the sliders move a "
        "seed's sample along the top eight, in standard deviations of z."
    )
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                seed = seed_input("Seed", scale=2)
                button = gr.Button("Show directions", variant="primary", scale=1)
            sliders = _sliders()
        with gr.Column(scale=2):
            sample = image_output(
                "The seed's sample, moved", 300, fill=True, fullscreen=True, elem_id="directions-sample"
            )
    gr.Markdown("A strip per direction (a row each): the seed's sample from -3 to +3 standard deviations along it.")
    # no label shown: it would cover the first column
    strips = image_output("Strips", 700, fill=True, fullscreen=True, elem_id="directions-strips", show_label=False)
    with gr.Row():
        table = gr.Dataframe(
            headers=["direction", "variance explained (%)", "cumulative (%)"],
            label="Variance of the first layer's activations each direction explains",
            elem_id="directions-variance",
            scale=2,
        )
        z_file = gr.File(label="The moved sample's z (.npy)", elem_id="directions-z", height=110, scale=1)
    inputs, outputs = [seed, *sliders, session_model], [sample, strips, table, z_file]
    light = app.group("light")
    button.click(tab.directions, inputs, outputs, api_name="directions", **light)
    seed.submit(tab.directions, inputs, outputs, api_visibility="private", **light)
    for slider in sliders:
        slider.release(tab.directions, inputs, outputs, api_visibility="private", **light)


def build(app: AppContext, session_model: gr.State, model_loaded) -> ExploreTab:
    """The Explore tab (arithmetic and directions), its events wired to an ExploreTab's handlers; a model loaded
    (`model_loaded`) brings its example seeds."""
    tab = ExploreTab(app)
    with gr.Tab("Explore"):
        with gr.Tabs():
            with gr.Tab("Arithmetic"):
                _arithmetic(app, tab, session_model, model_loaded)
            with gr.Tab("Directions"):
                _directions(app, tab, session_model)
    return tab
