"""Live training: the step hook that shows a run while it trains (train.py --live-every SECONDS), and the watch on
standard input that ends a run with the process that started it (train.py --watch-stdin).

`LiveSnapshots` writes the run folder's `live/` every SECONDS of training (its time is not counted as training time),
at the first step and at the run's last:

    live/grid.png        the live generator's samples for seeds 0..63 (eval mode), an 8x8 grid at native size
    live/snapshot.json   {"format": 1, "step", "training_s", "seconds", "total_steps", "written",
                          "real": [D's logits on SCORED fixed training images], "generated": [on SCORED fixed
                          generated images, seeds 0..SCORED-1]}   (a non-finite logit is null)

each written whole and renamed into place; gan.training.runner reads them. The curves come from the run's own
`metrics.jsonl` (`Run.write_record`, the run's one logging place). The snapshot samples the generator in eval mode and
scores with the discriminator as training does (batch statistics, so the histogram agrees with D(x) and D(G(z))), then
restores both networks' modes and the discriminator's buffers; it draws no random numbers, so a run's weights are the
same with or without it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..files import atomic_write
from ..images import uint8_to_model_input
from ..run_folder import LIVE_SNAPSHOT_FORMAT
from ..sampling import generate, grid_image, latents_for_seeds

if TYPE_CHECKING:
    from .run import Run

SCORED = 128  # fixed real and generated images the discriminator scores per snapshot (the histogram)
GRID_SAMPLES = 64  # the first of them, in the grid


# -- in the training process -----------------------------------------------------------------
class LiveSnapshots:
    """A step hook writing the live snapshot every `every_s` seconds of training, at the first step and at the last."""

    def __init__(self, run: Run, every_s: float):
        run.folder.live.mkdir(parents=True, exist_ok=True)
        self.every_s = every_s
        self.last: float | None = None
        self.latents = latents_for_seeds(0, SCORED, run.trainer.config.nz)
        images = run.dataset.images
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:SCORED]
        self.real = images[order]  # fixed training images (uint8), drawn from their own generator

    def __call__(self, run: Run) -> None:
        now = time.perf_counter()
        due = self.last is None or now - self.last >= self.every_s
        if due or run.planned_end() or run.stop_requested():
            self.write(run)
            self.last = now

    def write(self, run: Run) -> None:
        trainer, training_s = run.trainer, run.training_time()  # before this hook's own work, which is not training
        generated = generate(trainer.generator, self.latents)  # eval mode, restored after
        real, fake = (_logits(trainer.discriminator, images) for images in (self.real, generated))
        grid = grid_image(generated[:GRID_SAMPLES], columns=8)
        atomic_write(run.folder.live_grid, lambda path: grid.save(path, format="PNG", compress_level=1))
        snapshot = {
            "format": LIVE_SNAPSHOT_FORMAT,
            "step": trainer.step,
            "training_s": round(training_s, 3),
            "seconds": run.seconds,
            "total_steps": run.total_steps,
            "written": time.time(),
            "real": real,
            "generated": fake,
        }
        atomic_write(run.folder.live_snapshot, lambda path: Path(path).write_text(json.dumps(snapshot)))


@torch.no_grad()
def _logits(discriminator: torch.nn.Module, images: torch.Tensor) -> list[float | None]:
    """The discriminator's logits on uint8 images as training computes them (train mode: BatchNorm's batch
    statistics, so they agree with D(x) and D(G(z)) in the curves), its buffers (running statistics, spectral
    normalisation's vectors) and mode restored after; None where not finite."""
    saved = [buffer.clone() for buffer in discriminator.buffers()]
    was_training = discriminator.training
    discriminator.train()
    device = next(discriminator.parameters()).device
    try:
        logits = discriminator(uint8_to_model_input(images).to(device)).float().flatten().cpu().tolist()
    finally:
        for buffer, value in zip(discriminator.buffers(), saved, strict=True):
            buffer.copy_(value)
        discriminator.train(was_training)
    return [round(value, 4) if math.isfinite(value) else None for value in logits]


def watch_stdin(run: Run) -> threading.Thread:
    """Stop `run` as SIGTERM would (at the end of its step, checkpointed and exported) when standard input closes:
    the process that started it, holding the other end of the pipe, has gone."""

    def wait_for_eof() -> None:
        try:  # the raw descriptor: a daemon thread blocked in sys.stdin's buffer would hold its lock at exit
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except (OSError, ValueError):
            pass
        run.stop_signal = run.stop_signal or signal.SIGTERM

    watcher = threading.Thread(target=wait_for_eof, name="watch-stdin", daemon=True)
    watcher.start()
    return watcher
