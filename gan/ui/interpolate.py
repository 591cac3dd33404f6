"""The Interpolate tab: an animation from one seed's sample to another's, and a strip of its frames. `animate` and
`check_frames_mode_fps` serve the Project tab's walk from a latent as well."""

from __future__ import annotations

import gradio as gr
import torch

from ..checkpoint import LoadedModel
from ..sampling import (
    INTERPOLATION_MODES,
    MAX_SEED,
    generate,
    gif_bytes,
    grid_image,
    interpolate_latents,
    latent_for_seed,
    ping_pong,
    to_pil,
    upscale,
)
from .assets import model_identity, shown_source
from .context import AppContext
from .handlers import check_int, check_number, shows_errors
from .limits import MAX_FPS, MAX_FRAMES
from .picker import ModelRef
from .widgets import RadioInput, SliderInput, animation_outputs, seed_input


def check_frames_mode_fps(frames: float, mode: str, fps: float) -> tuple[int, float]:
    """An animation's settings as sent: a whole number of frames, a known path between the ends, a frame rate."""
    frames = check_int(frames, "frames", 2, MAX_FRAMES)
    if mode not in INTERPOLATION_MODES:
        raise gr.Error(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
    return frames, check_number(fps, "fps", 1, MAX_FPS)


def animate(
    app: AppContext,
    model: LoadedModel,
    start: torch.Tensor,
    end: torch.Tensor,
    frames: int,
    mode: str,
    pingpong: bool,
    fps: float,
    ends: dict,
) -> tuple[str, str]:
    """The interpolation outputs: a GIF from latent start to end, and a PNG strip of its frames (`ends` says in its
    metadata what the ends are)."""
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
    return app.outputs.write(gif, ".gif"), app.png_file(strip, text)


class InterpolateTab:
    """The tab's handler (a bound method, named as its event) over the app's shared state."""

    def __init__(self, app: AppContext):
        self.app = app

    @shows_errors
    def interpolate(
        self,
        seed_a: float,
        seed_b: float,
        frames: float,
        mode: str,
        pingpong: bool = False,
        fps: float = 12,
        ref: ModelRef | None = None,
        request: gr.Request | None = None,
    ):
        """A walk through the latent space from seed_a's sample to seed_b's, as an animation and a strip of frames.

        Args:
            seed_a: the seed of the first frame, 0 to 4294967295
            seed_b: the seed of the last frame, 0 to 4294967295
            frames: how many frames, 2 to 120
            mode: "slerp" (along the sphere where Gaussian latents live) or "lerp" (a straight line)
            pingpong: also walk back, so the animation loops smoothly
            fps: frames per second of the animation, 1 to 50

        Returns:
            the animation as a GIF file, and the frames side by side as a PNG file
        """
        with self.app.jobs.running(request):
            model = self.app.current(ref)
            seed_a = check_int(seed_a, "seed_a", 0, MAX_SEED)
            seed_b = check_int(seed_b, "seed_b", 0, MAX_SEED)
            frames, fps = check_frames_mode_fps(frames, mode, fps)
            nz = model.config.nz
            ends = {"seed_a": seed_a, "seed_b": seed_b}
            start, end = latent_for_seed(seed_a, nz), latent_for_seed(seed_b, nz)
            return animate(self.app, model, start, end, frames, mode, pingpong, fps, ends)


def _settings() -> list[gr.components.Component]:
    """The ends, frames, frame rate, path and loop: the interpolate endpoint's inputs in its order (less the model)."""
    with gr.Row():
        with gr.Group():  # the endpoints
            seed_a = seed_input("Start seed")
            seed_b = seed_input("End seed", value=1)
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
    return [seed_a, seed_b, frames, mode, pingpong, fps]


def build(app: AppContext, session_model: gr.State) -> InterpolateTab:
    """The Interpolate tab, its events wired to an InterpolateTab's handler (a preset runs it too)."""
    tab = InterpolateTab(app)
    animation_group = app.group("animation")
    with gr.Tab("Interpolate"):
        settings = _settings()
        interpolate_button = gr.Button("Interpolate", variant="primary")
        examples = gr.Examples(
            [[0, 1, 24, "slerp", False, 12], [3, 17, 60, "slerp", True, 24], [5, 6, 12, "lerp", False, 6]],
            settings,
            example_labels=["0 to 1", "3 to 17 and back, smooth", "5 to 6, slow lerp"],
            label="Presets",
            cache_examples=False,
            api_visibility="private",
        )
        outputs = animation_outputs(300)
        inputs = [*settings, session_model]
        interpolate_button.click(tab.interpolate, inputs, outputs, api_name="interpolate", **animation_group)
        examples.load_input_event.then(tab.interpolate, inputs, outputs, api_visibility="private", **animation_group)
    return tab
