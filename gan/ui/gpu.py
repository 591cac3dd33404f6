"""Where the long work goes: the Train tab's runs and projections. On a ZeroGPU Space (SPACES_ZERO_GPU set) each
runs in a GPU worker, through `spaces.GPU`, with a duration drawn from its own budget; everything else the app does
stays on the CPU, since a 16 ms grid must not spend a visitor's GPU quota or wait in the GPU queue (saliency maps
too: a second at most on the CPU). Elsewhere a run is a child process (`ChildRun`), on the CPU or on CUDA where the
machine has a GPU of its own, and a projection runs in the handler. The tabs see one interface either way.

ZeroGPU's quota, per visitor and day: 2 minutes unauthenticated, 5 with a free account, 40 with PRO; a call asks for
its duration times the GPU size's factor (1.5 for `large`, the default), so an anonymous visitor can ask for 80 s.
The default run (worker.GPU_DEFAULTS) asks for its budget plus a margin, within that; longer runs need a login.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import LoadedModel, model_payload
from ..projection import Projection, project_file, project_in_worker, projection_from_plain
from ..training.runner import LIVE_EVERY, MAX_SECONDS, MEMORY_BYTES, ChildRun, TabRun, WorkerRun

ON_ZEROGPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")  # as the spaces package reads it
MARGIN_S = 20  # a run's start (CUDA, the data onto the GPU) and its export, beyond its training budget
ANONYMOUS_S = 80  # the longest call an anonymous visitor may ask for (120 s of quota / 1.5)
MAX_GPU_S = 200  # the longest call a free account may ask for (300 s / 1.5)
ZEROGPU_MAX_SECONDS = MAX_GPU_S - MARGIN_S


PROJECTION_BASE_S, PROJECTION_STEP_S = 10, 0.02  # a projection's call: start, plus each step (restarts run together)


def train_duration(flags: list[str], out: str, every: float | None = None) -> int:
    """The GPU seconds a run asks for (spaces.GPU's duration callable, given the worker's arguments): its training
    budget (--seconds) plus MARGIN_S, at most MAX_GPU_S; a step budget asks for the most."""
    seconds = float(flags[flags.index("--seconds") + 1]) if "--seconds" in flags else MAX_GPU_S
    return int(min(MAX_GPU_S, seconds + MARGIN_S))


def project_duration(model: dict, path: str, name: str, steps: int, restarts: int) -> int:
    """The GPU seconds a projection asks for (spaces.GPU's duration callable): a start plus its steps."""
    return int(min(ANONYMOUS_S, PROJECTION_BASE_S + steps * PROJECTION_STEP_S))


@dataclass(frozen=True)
class Placement:
    """Where training runs and projections go: here, a child process and the handler's own thread. Also the Train
    tab's defaults and its longest time budget."""

    defaults: TabRun = TabRun()
    max_seconds: float = MAX_SECONDS
    note: str = ""  # for the Train tab, where it says more than the CPU's defaults do

    def start(self, folder: Path, run: TabRun):
        return ChildRun(folder, run, LIVE_EVERY, MEMORY_BYTES)

    def project(self, model: LoadedModel, path: str, name: str, steps: int, restarts: int, should_stop) -> Projection:
        return project_file(model, path, name, steps=steps, restarts=restarts, should_stop=should_stop)


@dataclass(frozen=True)
class ZeroGPUPlacement(Placement):
    """ZeroGPU's workers: the functions decorated by spaces.GPU, called from the handler itself (the quota is charged
    to the visitor whose request is in its context). A projection in a worker cannot see its client go: ZeroGPU's own
    duration bounds it."""

    gpu_train: Callable | None = None  # train_in_worker, decorated
    gpu_project: Callable | None = None  # project_in_worker, decorated

    def start(self, folder: Path, run: TabRun):
        return WorkerRun(folder, run, self.gpu_train)

    def project(self, model: LoadedModel, path: str, name: str, steps: int, restarts: int, should_stop) -> Projection:
        return projection_from_plain(self.gpu_project(model_payload(model), path, name, steps, restarts))


def placement() -> Placement:
    """ZeroGPU's worker on a ZeroGPU Space, else a child process."""
    if not ON_ZEROGPU:
        return Placement()
    import spaces

    from ..training.worker import GPU_DEFAULTS, train_in_worker

    note = (
        f"Runs train on this Space's GPU (ZeroGPU). A run asks for its time budget plus {MARGIN_S} s of GPU: "
        f"up to {ANONYMOUS_S - MARGIN_S} s of training without signing in to Hugging Face, longer with an account "
        "(a free account has 5 GPU minutes a day)."
    )
    gpu_train = spaces.GPU(duration=train_duration)(train_in_worker)
    gpu_project = spaces.GPU(duration=project_duration)(project_in_worker)
    return ZeroGPUPlacement(GPU_DEFAULTS, ZEROGPU_MAX_SECONDS, note, gpu_train, gpu_project)
