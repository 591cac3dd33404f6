"""Run tracking (`--report-to tensorboard,trackio`): every metrics record and sample grid the Run writes, also sent to
TensorBoard (event files in the run folder's `tensorboard/`) and/or Trackio (its local store, project `dcgan-studio`).

Both packages are optional (requirements-dev.txt, the `tracking` extra) and imported only when a run reports to them.
Only rank 0 reports. A resumed run continues the same tracked run, each step once: TensorBoard purges the steps after
the resumed one (`purge_step`); Trackio's own resume appends, so the tracked run is deleted and rebuilt from the
(truncated) metrics log and the saved sample grids instead.
"""

from __future__ import annotations

import json
import math
import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import GanError
from ..files import atomic_write

TRACKERS = {"tensorboard": "tensorboard==2.21.0", "trackio": "trackio==0.43.0"}  # name -> what to install
TENSORBOARD_DIR = "tensorboard"  # in the run folder and in its exports (pushed as they are)
TRACKIO_PROJECT = "dcgan-studio"
TRACKIO_RUN_FILE = "trackio.json"  # in the run folder: which Trackio run it reports to, for a resume
SAMPLES_TAG = "samples"


def parse_report_to(value: str) -> tuple[str, ...]:
    """The trackers `--report-to` names (comma-separated; `none`: no tracker), checked: a GanError naming the flag
    for an unknown one, and one line saying what to install for a missing package."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    if names in ((), ("none",)):
        return ()
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        raise GanError(
            f"--report-to {value}: unknown {', '.join(unknown)}; choose none, tensorboard, trackio, "
            "or tensorboard,trackio"
        )
    missing = [name for name in names if find_spec(name) is None]
    if missing:
        pins = " ".join(TRACKERS[name] for name in missing)
        raise GanError(
            f"--report-to {','.join(missing)} needs {' and '.join(missing)}: pip install {pins} "
            "(or pip install -e '.[tracking]')"
        )
    return names


def scalars(record: dict) -> dict[str, float]:
    """A metrics record's numbers, named as in metrics.jsonl, nested fields joined by '/' (`eval/fd`,
    `weight_norms_g/0`); the step, text and missing values are left out."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{name}": number for name, number in scalars(value).items()})
        elif isinstance(value, int | float) and not isinstance(value, bool) and key != "step":
            flat[key] = value
    return flat


class Tracker:
    """Where a run's records and sample grids go besides the run folder; this one: nowhere (`--report-to none`,
    and ranks other than 0)."""

    def log_record(self, record: dict) -> None:
        """One metrics.jsonl record (a `step` and its values)."""

    def log_image(self, step: int, image: Image.Image) -> None:
        """The fixed-seed sample grid at `step`."""

    def close(self) -> None:
        pass


class Trackers(Tracker):
    """Several trackers as one."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def log_record(self, record: dict) -> None:
        for tracker in self.trackers:
            tracker.log_record(record)

    def log_image(self, step: int, image: Image.Image) -> None:
        for tracker in self.trackers:
            tracker.log_image(step, image)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


class TensorBoardTracker(Tracker):
    """Scalars and the sample grid in event files under `log_dir`, flushed at each write (an export copies them)."""

    def __init__(self, log_dir: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter  # pulls in tensorboard: only when asked for

        # the first event says that steps after start_step are void: readers drop those of a run stopped later
        self.writer = SummaryWriter(str(log_dir), purge_step=start_step + 1)

    def log_record(self, record: dict) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record["step"])
        self.writer.flush()

    def log_image(self, step: int, image: Image.Image) -> None:
        self.writer.add_image(SAMPLES_TAG, np.asarray(image.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TrackioTracker(Tracker):
    """A Trackio run in the local store (project `dcgan-studio`, named after the run folder), recorded in the run
    folder's trackio.json so that a resume finds it.

    Trackio's `resume="allow"` appends to a run (steps 1-5, then 4-6, read 1,2,3,4,5,4,5,6), and it has no way to
    cut a run back to a step. So a resumed run deletes its tracked run and logs it again from `history` (the metrics
    log, already cut back to the resumed step) and `grids` (the saved sample grids up to it), then goes on."""

    def __init__(self, out: Path, config: dict, start_step: int, history: list[dict], grids: dict[int, Path]):
        import trackio  # only when asked for

        self.trackio = trackio
        previous = _forget_tracked_run(out / TRACKIO_RUN_FILE, trackio) if start_step else None
        name = previous or _unused_run_name(trackio, out.resolve().name)
        self.run = trackio.init(project=TRACKIO_PROJECT, name=name, config=config, resume="never")
        record = {"project": TRACKIO_PROJECT, "name": self.run.name, "id": self.run.id}
        atomic_write(out / TRACKIO_RUN_FILE, lambda p: Path(p).write_text(json.dumps(record) + "\n"))
        for past in history:
            self.log_record(past)
        for step, path in sorted(grids.items()):
            with Image.open(path) as image:
                self.log_image(step, image)

    def log_record(self, record: dict) -> None:
        values = {key: value for key, value in scalars(record).items() if math.isfinite(value)}
        if values:
            self.run.log(values, step=record["step"])

    def log_image(self, step: int, image: Image.Image) -> None:
        self.run.log({SAMPLES_TAG: self.trackio.Image(image.convert("RGB"))}, step=step)

    def close(self) -> None:
        self.trackio.finish()  # waits until every log is stored


def _forget_tracked_run(path: Path, trackio) -> str | None:
    """Delete the Trackio run (and its images) that the run folder's trackio.json names; its name, for the run that
    replaces it, or None where there is none."""
    try:
        recorded = json.loads(path.read_text())
        name, run_id = recorded["name"], recorded["id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        runs = list(trackio.Api().runs(TRACKIO_PROJECT))
    except ValueError:  # no such project (any more)
        return None
    for run in runs:
        if run.id == run_id:
            run.delete()
    if any(run.name == name and run.id != run_id for run in runs):
        return None  # the name is another run's now, and so are the images filed under it
    shutil.rmtree(trackio.get_project_media_path(TRACKIO_PROJECT, name), ignore_errors=True)
    return name


def _unused_run_name(trackio, base: str) -> str:
    """`base`, or `base-2`, `base-3`...: the first name no run of the project has (run folders of the same name)."""
    try:
        taken = {run.name for run in trackio.Api().runs(TRACKIO_PROJECT)}
    except ValueError:
        taken = set()
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def open_trackers(
    names: tuple[str, ...], out: Path, config: dict, start_step: int, history: list[dict], grids: dict[int, Path]
) -> Tracker:
    """The trackers `names` (from `parse_report_to`) of a run in `out` starting at `start_step` (0, or the step it
    resumes from); `history` and `grids` are the records and sample grids (by step) logged up to that step."""
    trackers: list[Tracker] = []
    try:
        for name in names:
            if name == "tensorboard":
                trackers.append(TensorBoardTracker(out / TENSORBOARD_DIR, start_step))
            else:
                trackers.append(TrackioTracker(out, config, start_step, history, grids))
    except BaseException:
        Trackers(trackers).close()
        raise
    return Trackers(trackers) if len(trackers) != 1 else trackers[0]
