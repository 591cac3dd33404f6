"""Training, in parts: `settings` (every train.py option, the recipes, the command line and the resume rule),
`losses`, `trainer` (one step, EMA, precision, the training state) and `run` (the loop, logging, checkpoints, the
export and the run folder). Here: `main`, the command `train.py` runs."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from ..cpus import set_torch_threads
from ..data import ImageDataset, dataset_slug, load_dataset
from ..distributed import World, init_world, launched_by_torchrun, leave_process
from ..errors import GanError
from ..hub import publish
from ..precision import describe_device
from ..run_folder import METRICS_NAME, STORAGE_ERRNOS, STORAGE_EXIT, RunFolder, StorageFailure
from .live import LiveSnapshots, watch_stdin
from .run import Run, scheduled_push
from .settings import RunSettings, check_flags, parse_flags, resume_settings
from .trainer import Trainer, lr_scale, plan_fraction

__all__ = ["main", "train_in_process"]


def main(argv: list[str] | None = None) -> int:
    """train.py: train in the run folder, export, and push when asked; 2 (and one line) for anything refused,
    STORAGE_EXIT (and one line) when the disk filled up during the run."""
    settings, explicit = parse_flags(sys.argv[1:] if argv is None else argv)
    set_torch_threads()  # a container's CPU quota, not the CPUs it shows (the first line names the count)
    out = Path(settings.out or f"runs/{dataset_slug(settings.dataset)}")
    with contextlib.ExitStack() as held:  # the run folder's lock and the torchrun process group, let go last
        code = _train_reporting_errors(settings, explicit, out, held)
    if launched_by_torchrun():
        leave_process(code)
    return code


def train_in_process(argv: list[str]) -> int:
    """train.py's run in this process and thread, for a caller that reports failures itself (the ZeroGPU worker):
    a refusal is raised as a GanError rather than printed, a full disk as a StorageFailure. Returns the exit code."""
    settings, explicit = parse_flags(argv)
    out = Path(settings.out or f"runs/{dataset_slug(settings.dataset)}")
    with contextlib.ExitStack() as held:
        try:
            return _train_command(settings, explicit, out, held)
        except OSError as error:
            if error.errno not in STORAGE_ERRNOS:
                raise
            raise StorageFailure(RunFolder(out).storage_failure(error)) from None


def _train_reporting_errors(settings: RunSettings, explicit: dict, out: Path, held: contextlib.ExitStack) -> int:
    try:
        return _train_command(settings, explicit, out, held)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        print(f"\nerror: {RunFolder(out).storage_failure(error)}", file=sys.stderr)
        return STORAGE_EXIT


def _train_command(settings: RunSettings, explicit: dict, out: Path, held: contextlib.ExitStack) -> int:
    """Check, claim the run folder, resume, assemble the trainer and the run, train, and push when asked."""
    check_flags(settings)
    device, world = _join_world(settings, held)
    if world.is_main:
        held.callback(os.close, RunFolder(out).claim())
    settings, state = _resume(settings, explicit, out, world)
    dataset = load_dataset(
        settings.dataset,
        settings.data_dir,
        settings.image_size,
        not settings.no_download,
        settings.channels,
        settings.data_split,
        revision=settings.dataset_commit or settings.dataset_revision,  # a resumed run: the commit it began on
        image_column=settings.image_column,
        config=settings.dataset_config,
        max_images=settings.max_images,
    )
    if dataset.hub is not None:  # recorded in every training state and the export
        settings = replace(settings, dataset_commit=dataset.hub["revision"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    trainer = Trainer(settings, dataset, device, world)
    if state is not None:
        trainer.load_state_dict(state)
    steps = settings.total_steps(len(dataset))
    if state is not None and settings.lr_decay > 0 and world.is_main:
        _say_replanned_decay(settings, state["args"], trainer, steps, len(dataset))
    run = Run(trainer, dataset, out, steps)
    if world.is_main:
        _announce(trainer, dataset, steps, out)
        if (push := scheduled_push(settings)) is not None:
            run.step_hooks.append(push)
        if settings.live_every > 0:
            run.step_hooks.append(LiveSnapshots(run, settings.live_every))
    if settings.watch_stdin:
        watch_stdin(run)
    code = run.train()
    if world.is_main and trainer.step > 0:
        model = RunFolder(out).model
        print(f"exported the model to {model}; try: python app.py --checkpoint {model}")
        _push_at_the_end(settings, out, code)
    return code


def _join_world(settings: RunSettings, held: contextlib.ExitStack) -> tuple[torch.device, World]:
    """The device to train on and, under torchrun, the process group (left when `held` closes)."""
    device = resolve_device(settings.device)
    world = init_world(device.type)
    held.callback(world.close)
    if world.distributed:
        if settings.seconds is not None:
            raise GanError("--seconds is a budget for one process: under torchrun, give --steps or --epochs")
        if settings.batch_size % world.size:
            raise GanError(
                f"--batch-size {settings.batch_size} (the global batch) must be divisible by the {world.size} processes"
            )
        if device.type == "cuda":
            device = torch.device("cuda", world.local_rank)
    return device, world


def resolve_device(name: str) -> torch.device:
    """The device --device names (`auto`: CUDA where there is a GPU)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise GanError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _say_replanned_decay(settings: RunSettings, recorded: dict, trainer: Trainer, steps: int | None, size: int) -> None:
    """A resumed run with another budget (--steps, --epochs, --seconds) re-plans its learning-rate decay: say so, and
    warn where the rates rise at once. Resuming a run that had decayed them with a longer budget knocked its
    discriminator out within 100 steps (docs/training.md): D(real) = D(generated) = 0.50 from then on."""
    planned = replace(settings, **{key: recorded[key] for key in ("steps", "epochs", "seconds") if key in recorded})
    before = planned.total_steps(size), planned.seconds
    if before == (steps, settings.seconds):
        return
    was, now = (
        lr_scale(plan_fraction(trainer.step, trainer.elapsed, total, seconds), settings.lr_decay)
        for total, seconds in (before, (steps, settings.seconds))
    )
    print(
        f"note: the run was planned for {_plan(planned, before[0])}, now {_plan(settings, steps)}: "
        "the learning-rate decay is re-planned"
    )
    if now > was + 0.01:
        print(
            f"warning: the learning rates jump from {was:.0%} to {now:.0%} of --lr-g/--lr-d at once, which can knock "
            "the discriminator out (D(real) = D(generated) = 0.5 from then on); to train longer, start a new run "
            "with the longer budget",
            file=sys.stderr,
        )


def _resume(settings: RunSettings, explicit: dict, out: Path, world: World) -> tuple[RunSettings, dict | None]:
    """With --resume, the state to continue and the settings that continue it; the metrics log and the sample grids
    are cut back to it."""
    folder = RunFolder(out)
    found = folder.state_to_resume(settings.resume, quiet=not world.is_main)
    if found is None:
        return settings, None
    path, state = found
    settings = resume_settings(settings, explicit, state.get("args", {}), quiet=not world.is_main)
    if world.is_main:
        print(f"resuming from {path} (step {state['step']})")
        if cut := folder.truncate_metrics(state["step"]):
            print(f"{METRICS_NAME}: {cut} line(s) after step {state['step']} (the state resumed) removed")
        if cut := folder.truncate_samples(state["step"]):
            print(f"samples/: {cut} grid(s) after step {state['step']} removed")
    return settings, state


def _announce(trainer: Trainer, dataset: ImageDataset, steps: int, out: Path) -> None:
    """The run's first line: what trains on what, how long, where and in which precision."""
    settings, world = trainer.settings, trainer.world
    processes = f" x {world.size} processes" if world.distributed else ""
    print(
        f"training a {settings.image_size}x{settings.image_size} DCGAN on {dataset.name} "
        f"({len(dataset)} images from {dataset.source}) "
        f"for {_plan(settings, steps)} on {describe_device(trainer.device)}{processes}, "
        f"{trainer.precision.reason}, {settings.recipe} recipe; "
        f"run folder {out}"
    )
    if trainer.precision.warning:
        print(f"warning: {trainer.precision.warning}", file=sys.stderr)


def _plan(settings: RunSettings, steps: int | None) -> str:
    """The run's budget in words: steps, seconds of training, or both."""
    if settings.seconds is None:
        return f"{steps} steps"
    return f"{settings.seconds:g} s of training" + (f" (at most {steps} steps)" if steps is not None else "")


def _push_at_the_end(settings: RunSettings, out: Path, code: int) -> None:
    """With --push-to-hub, push the export of a run that ended (a HubError says where the results are; nothing is
    deleted), or say how to push that of a stopped one."""
    if not settings.push_to_hub:
        return
    if code == 0:
        publish.push_trained(
            out,
            settings.hub_model_id,
            token=settings.hub_token,
            private=settings.hub_private,
            revision=settings.hub_revision,
        )
    else:
        print(
            f"not pushed (training was stopped); push the export with: "
            f"python -m gan push {RunFolder(out).model} --hub-model-id {settings.hub_model_id}"
        )
