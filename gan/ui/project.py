"""The Project tab: find the latent z whose sample looks most like an uploaded image, then walk from it to a seed's
sample or to a second latent (uploaded, or projected from a second image). A projection whose client has gone (or
cancelled it) stops at its next step."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import torch

from ..checkpoint import LoadedModel
from ..models import ModelConfig, forward_flops
from ..plots import projection_curve
from ..projection import (
    DEFAULT_RESTARTS,
    DEFAULT_STEPS,
    LatentError,
    Projection,
    ProjectionStopped,
    latent_bytes,
    load_latent,
)
from ..sampling import INTERPOLATION_MODES, MAX_SEED, latent_for_seed, to_pil
from .assets import model_identity, shown_source
from .context import AppContext
from .handlers import check_int, shows_errors
from .interpolate import animate, check_frames_mode_fps
from .limits import MAX_FPS, MAX_FRAMES, MAX_PROJECTION_STEPS, MAX_RESTARTS
from .picker import ModelRef
from .widgets import RadioInput, SliderInput, animation_outputs, file_input, image_output, seed_input


@dataclass
class Projected:
    """One projection as the handlers report it: the model, the upload's name, the budget, the result, the time."""

    model: LoadedModel
    name: str
    steps: int
    restarts: int
    result: Projection
    seconds: float

    def about(self) -> dict:
        """The metadata of its PNGs."""
        return {
            **model_identity(self.model),
            "source": shown_source(self.model.source),
            "projected": self.name,
            "steps": self.steps,
            "restarts": self.restarts,
        }


def _latent(path: str, nz: int, what: str) -> torch.Tensor:
    """The latent in a .npy file; a LatentError names the input (`what`), then the file and the problem."""
    try:
        return load_latent(path, nz, Path(path).name)
    except LatentError as error:
        raise LatentError(f"{what}: {error}") from None


REFERENCE = ModelConfig(nz=100, ngf=64, ndf=64, nc=1, image_size=32)  # the bundled Fashion-MNIST model's shape


def step_cost(config: ModelConfig) -> float:
    """A projection step of a model of this shape, in steps of the REFERENCE model (a 64 px colour model of the same
    widths costs about 6x)."""
    return forward_flops(config) / forward_flops(REFERENCE)


def max_projection_steps(config: ModelConfig) -> int:
    """MAX_PROJECTION_STEPS for a model no costlier than the REFERENCE, proportionally fewer for a costlier one."""
    return max(1, min(MAX_PROJECTION_STEPS, int(MAX_PROJECTION_STEPS / step_cost(config))))


class ProjectTab:
    """The tab's handlers (bound methods, named as their events) over the app's shared state."""

    def __init__(self, app: AppContext):
        self.app = app

    def projected(self, image: str | None, steps: float, restarts: float, ref: ModelRef | None) -> Projected:
        """The upload projected into the session's model's latent space, with the budget checked."""
        model = self.app.current(ref)
        steps = check_int(steps, "steps", 1, MAX_PROJECTION_STEPS)
        if steps > (most := max_projection_steps(model.config)):
            raise gr.Error(
                f"steps: this model takes at most {most} (a step of its {model.config.image_size}x"
                f"{model.config.image_size} generator and discriminator costs {step_cost(model.config):.1f}x one of "
                f"the {REFERENCE.image_size}x{REFERENCE.image_size} grey model the app's limits are set for)"
            )
        restarts = check_int(restarts, "restarts", 1, MAX_RESTARTS)
        if not image:
            raise gr.Error("upload an image to project")
        name = Path(image).name
        started = time.perf_counter()
        try:
            result = self.app.placement.project(model, image, name, steps, restarts, self.app.client_gone)
        except ProjectionStopped as stopped:  # nobody will read the answer: the log says what happened
            print(
                f"projection stopped after {stopped.steps} of {steps} steps: its client has gone (or cancelled it)",
                flush=True,
            )
            raise gr.Error("projection stopped: its client has gone", print_exception=False) from None
        return Projected(model, name, steps, restarts, result, time.perf_counter() - started)

    def reconstruction_file(self, run: Projected) -> str:
        """G(z) as a PNG at the model's size, its distance in its metadata."""
        text = {**run.about(), "image": "reconstruction", "distance": f"{run.result.distance:.6f}"}
        return self.app.png_file(to_pil(run.result.reconstruction), text)

    def z_file(self, run: Projected) -> str:
        """z as a float32 .npy file (the format of projection.save_latent), named after the upload."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(run.name).stem)[:40].strip("-") or "image"
        return self.app.outputs.write(latent_bytes(run.result.z), ".npy", prefix=f"z-{stem}-")

    @staticmethod
    def report(run: Projected) -> str:
        """The summary visitors read: distance, budget, time, what was matched and how the upload was converted."""
        result, features = run.result, ""
        if run.model.discriminator is None:
            features = " (no discriminator in this export: pixels only)"
        elif not result.features:
            features = " (the discriminator's features are not finite, its weights broken: pixels only)"
        return (
            f"**Distance {result.distance:.4f}** (mean absolute pixel error, 0 = identical, 1 = opposite) after "
            f"{run.steps} steps x {run.restarts} restarts in {run.seconds:.1f} s{features}. "
            f"**Conversion:** {'; '.join(result.notes) or 'none'}."
        )

    @shows_errors
    def project(
        self,
        image: str | None,
        steps: float = DEFAULT_STEPS,
        restarts: float = DEFAULT_RESTARTS,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """Find the latent z whose sample best matches an image (Adam on z from several random starts; pixel error,
        the discriminator's features and a prior).

        Args:
            image: the image file (PNG, JPEG...): center-cropped and resized to the model, 28x28 padded to 32x32
            steps: Adam steps, 1 to 1000 (fewer for a model costlier than a 32 px grey one): more is closer and slower
            restarts: random starts optimised together, the best kept, 1 to 8

        Returns:
            the image as the model sees it and the reconstruction G(z) (PNG files at the model's size), z as a float32
            .npy file (for interpolate_latent), the distance (mean absolute pixel error, 0 to 1), a summary, and the
            objective per step (PNG)
        """
        with self.app.jobs.running(request):
            run = self.projected(image, steps, restarts, ref)
            target = self.app.png_file(to_pil(run.result.target), {**run.about(), "image": "target"})
            return (
                target,
                self.reconstruction_file(run),
                self.z_file(run),
                round(run.result.distance, 6),
                self.report(run),
                self.app.outputs.write(projection_curve(run.result.losses), ".png"),
            )

    @shows_errors
    def project_end(
        self,
        image: str | None,
        steps: float = DEFAULT_STEPS,
        restarts: float = DEFAULT_RESTARTS,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """A second image projected as the end of the walk: its reconstruction, its z file and the summary (no target
        image or curve: the walk shows neither)."""
        with self.app.jobs.running(request):
            run = self.projected(image, steps, restarts, ref)
            return self.reconstruction_file(run), self.z_file(run), self.report(run)

    @shows_errors
    def interpolate_latent(
        self,
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
        """A walk through the latent space from a latent z_a (a .npy file, e.g. from project) to a second latent z_b
        when given, else to seed_b's sample, as an animation and a strip of frames.

        Args:
            z_a: the start latent: a .npy file of nz float32 values
            seed_b: the end seed (used when there is no z_b), 0 to 4294967295
            z_b: the end latent (optional): a .npy file of nz float32 values
            frames: how many frames, 2 to 120
            mode: "slerp" or "lerp"
            pingpong: also walk back, so the animation loops smoothly
            fps: frames per second of the animation, 1 to 50

        Returns:
            the animation as a GIF file, and the frames side by side as a PNG file
        """
        with self.app.jobs.running(request):
            model = self.app.current(ref)
            frames, fps = check_frames_mode_fps(frames, mode, fps)
            nz = model.config.nz
            if not z_a:
                raise gr.Error("upload the start latent z_a (a .npy file, e.g. the z that Project returns)")
            start = _latent(z_a, nz, "z_a")
            if z_b:
                end, ends = _latent(z_b, nz, "z_b"), {"z_a": Path(z_a).name, "z_b": Path(z_b).name}
            elif seed_b is not None and seed_b != "":
                seed_b = check_int(seed_b, "seed_b", 0, MAX_SEED)
                end, ends = latent_for_seed(seed_b, nz), {"z_a": Path(z_a).name, "seed_b": seed_b}
            else:
                raise gr.Error("give the end of the walk: seed_b, or a second latent z_b")
            return animate(self.app, model, start, end, frames, mode, pingpong, fps, ends)


def _projection_inputs() -> dict[str, gr.components.Component]:
    image = file_input("Image", elem_id="project-upload", height=140)
    with gr.Row():
        steps = SliderInput(
            1,
            MAX_PROJECTION_STEPS,
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
    button = gr.Button("Project", variant="primary")
    return {"image": image, "steps": steps, "restarts": restarts, "button": button}


def _projection_outputs() -> list[gr.components.Component]:
    """The project endpoint's outputs, less the z file (the walk's start): target, reconstruction, distance, report,
    curve."""
    with gr.Row():
        target = image_output("As the model sees it", 200, fill=True, elem_id="project-target")
        reconstruction = image_output("Reconstruction G(z)", 200, fill=True, elem_id="project-reconstruction")
        curve = image_output(
            "Objective per step", 200, pixelated=False, fill=True, fullscreen=True, scale=2, elem_id="project-curve"
        )
    distance = gr.Number(
        label="Distance (mean absolute pixel error, 0 to 1)", precision=4, visible=False
    )  # for the API; the report below says it to visitors
    report = gr.Markdown(elem_id="project-report")
    return [target, reconstruction, distance, report, curve]


def _end_image() -> dict[str, gr.components.Component]:
    """A second image to project as the walk's end."""
    with gr.Accordion("Or project a second image as the end", open=False):
        image = file_input("End image", height=110, elem_id="project-end-upload")
        button = gr.Button("Project end image", size="md")
        reconstruction = image_output("End reconstruction", 120, fill=True)
        report = gr.Markdown()
    return {"image": image, "button": button, "reconstruction": reconstruction, "report": report}


def _walk_ends() -> dict[str, gr.components.Component]:
    """The walk's start latent and its end: a seed, an end latent, or a second image projected into one."""
    with gr.Row():
        z_a = file_input("Start latent z (.npy)", elem_id="z-a", height=110)
        with gr.Column():
            end_seed = seed_input("End seed (used when there is no end latent)", value=1)
            z_b = file_input("End latent z (.npy, optional)", elem_id="z-b", height=110)
        with gr.Column():
            end = _end_image()
    return {"z_a": z_a, "end_seed": end_seed, "z_b": z_b, "end": end}


def _walk() -> dict:
    """The walk's ends, settings (frames, fps, path, loop), button and outputs."""
    gr.Markdown(
        "### Walk from this image\nStart from the latent above (or upload a z.npy) and end at a seed's "
        "sample, or at a second latent: upload one, or project a second image into it."
    )
    walk = _walk_ends()
    with gr.Row():
        frames = SliderInput(2, MAX_FRAMES, value=24, step=1, label="Frames")
        fps = SliderInput(1, MAX_FPS, value=12, step=1, label="Frames per second")
        mode = RadioInput(list(INTERPOLATION_MODES), value="slerp", label="Path")
        pingpong = gr.Checkbox(label="Ping-pong loop (there and back)", value=False)
    walk["settings"] = [frames, mode, pingpong, fps]  # in the order of interpolate_latent's parameters
    walk["button"] = gr.Button("Interpolate from this image", variant="primary")
    walk["outputs"] = animation_outputs(260, "walk")
    return walk


def build(app: AppContext, session_model: gr.State) -> ProjectTab:
    """The Project tab, its events wired to a ProjectTab's handlers."""
    tab = ProjectTab(app)
    with gr.Tab("Project"):
        gr.Markdown(
            "Find the latent z whose sample looks most like an image, then walk from it. A 28x28 image is "
            "padded to 32x32 like the MNIST-family training data; other sizes are center-cropped and resized."
        )
        with gr.Row():
            with gr.Column(scale=2, min_width=260):
                source = _projection_inputs()
            with gr.Column(scale=3):
                target, reconstruction, distance, report, curve = _projection_outputs()
        walk = _walk()
        end = walk["end"]
        budget = [source["steps"], source["restarts"], session_model]
        source["button"].click(
            tab.project,
            [source["image"], *budget],
            [target, reconstruction, walk["z_a"], distance, report, curve],
            api_name="project",
            **app.group("projection"),
        )
        end["button"].click(
            tab.project_end,
            [end["image"], *budget],
            [end["reconstruction"], walk["z_b"], end["report"]],
            api_visibility="private",
            **app.group("projection"),
        )
        walk["button"].click(
            tab.interpolate_latent,
            [walk["z_a"], walk["end_seed"], walk["z_b"], *walk["settings"], session_model],
            walk["outputs"],
            api_name="interpolate_latent",
            **app.group("animation"),
        )
    return tab
