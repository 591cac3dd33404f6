"""AppContext: the state every handler works on, whoever the visitor."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..checkpoint import LoadedModel
from ..sampling import png_bytes
from .assets import OutputFiles, ReferenceScores, TrainingData
from .fairness import Admission, client_gone, held_requests
from .gpu import Placement
from .limits import JOB_CAPS, PNG_LEVEL, WORKERS
from .picker import ModelPicker, ModelRef


@dataclass(eq=False)
class AppContext:
    """What all handlers of one app share, whoever the visitor: the model picker (models and their cache), the output
    files, the training data and reference scores found so far, and the admission caps on queued jobs. `blocks` is
    the app once built (the caps and `client_gone` read its queue); handlers called in-process need none."""

    models: ModelPicker
    outputs: OutputFiles
    placement: Placement = field(default_factory=Placement)  # where training runs and projections go
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
