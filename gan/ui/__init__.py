"""The Gradio app: Sample, Interpolate, Project, Score and Explore tabs over each visitor's model, and a Train tab.

This module only composes: `create_state` makes what all handlers share (context.AppContext), `build_demo` lays out
the model picker (picker.py) and each tab (sample.py, interpolate.py, project.py, score.py, explore.py, train.py),
whose `build` wires its events to the handlers of a class of its own. The handlers are bound methods named as their
events, so tests call them in-process; `handlers.shows_errors` turns the package's errors into gr.Error for visitors.
mcp.py serves the public events as MCP tools, described from the handlers' docstrings.

Handlers return paths of PNG/GIF files written here (never PIL images): each is written whole under a fresh name
inside Gradio's cache folder, so Gradio serves it in place without copying, whereas it rewrites PIL outputs in
place, which breaks downloads when simultaneous visitors get byte-identical images (the default seed). Endpoint
parameter names are part of the API (`gradio_client` calls them by keyword): append new ones
with defaults, never rename; new outputs go at the end.

Concurrency: torch already spreads each call over the CPU cores, so few run at once, in queue groups by cost
(limits.WORKERS). Gradio's queue skips a full group for the next one with room, so a long projection never holds back
a sample. The queue refuses requests beyond its size rather than piling up work, and the heavy kinds are also capped
per visitor, per address and in all when they are queued (limits.JOB_CAPS, see fairness.py), which leaves the shared
queue room for light work. Training runs take turns in a group of their own, each in a child process on one thread.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..checkpoint import LoadedModel
from . import explore, gpu, interpolate, picker, project, sample, score, train
from .assets import OutputFiles
from .context import AppContext
from .limits import EXAMPLES, MAX_UPLOAD, QUEUE_SIZE
from .picker import MODEL_CACHE_SIZE, ModelPicker
from .widgets import CSS

__all__ = ["CSS", "EXAMPLES", "MAX_UPLOAD", "AppContext", "build_demo", "create_state"]


def create_state(
    model: LoadedModel,
    listed: list[str | Path | LoadedModel] = (),
    cache_size: int = MODEL_CACHE_SIZE,
    outputs: OutputFiles | None = None,
) -> AppContext:
    """What the app's handlers share: the picker over `model` and the `listed` ones, and the output files, by
    default in Gradio's cache folder (Gradio serves them in place: no hashing and copying), and where training runs
    and projections go (gpu.placement: on a ZeroGPU Space, its GPU workers)."""
    outputs = outputs or OutputFiles(parent=get_upload_folder())
    return AppContext(ModelPicker(model, listed, cache_size), outputs, gpu.placement())


def build_demo(
    model: LoadedModel, listed: list[str | Path | LoadedModel] = (), cache_size: int = MODEL_CACHE_SIZE
) -> gr.Blocks:
    """The app over `model`; visitors may switch (for themselves) to a `listed` model (the other bundled exports, a
    Space's other model repos) or any Hub repo id."""
    app = create_state(model, listed, cache_size)
    app.outputs.start_pruning()
    with gr.Blocks(title="DCGAN Studio", delete_cache=(600, 3600)) as demo:
        app.blocks = demo
        gr.Markdown(
            "# DCGAN Studio\nSample, interpolate, project, score and explore a DCGAN, or train your own and watch it "
            "learn (the Train tab)."
        )
        training = train.TrainTab(app)
        own = train.own_model_state(training)  # the model this visitor trains in the Train tab
        row = picker.build_row(app.models, own)
        session_model, model_loaded = row.session_model, row.model_loaded
        sample.build(app, session_model, model_loaded)
        interpolate.build(app, session_model)
        project.build(app, session_model)
        score.build(app, session_model)
        explore.build(app, session_model, model_loaded)
        train.build(training, row, own, demo)
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
