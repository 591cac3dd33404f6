"""A training run's folder (`--out DIR`): every path in it named once, and the housekeeping that keeps it sound across
kills, full disks and resumes: the lock that claims it, the temporaries a killed write leaves, the state to resume
(the newest readable one), and the log and sample grids cut back to it.

    checkpoints/step_XXXXXXX.pt   full training states (resume with --resume auto|PATH): the run's "training states",
                                  never loaded by the app (an export is what `--checkpoint DIR` takes)
    samples/step_XXXXXXX.png      fixed-noise grids (seeds 0..63) during training
    metrics.jsonl                 one JSON line per --log-every steps
    tensorboard/, trackio.json    with --report-to: TensorBoard event files; the Trackio run it reports to
    loss.png, weights.png         loss curves and per-layer weight norms over time
    model/                        the export (config.json + safetensors), the sample grid, plots and metrics
    best/                         with --keep-best: the best evaluated state's export so far
    live/snapshot.json, grid.png  with --live-every: what the app's Train tab shows while the run trains
    STOP                          made by another process to stop the run as Ctrl-C does (consumed when it stops)
    .lock                         held by the process training in it
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from . import checkpoint as ckpt
from .errors import CheckpointError, GanError
from .files import atomic_write, remove_temporaries
from .runlog import parse_metrics

SAMPLE_GRID_NAME = "samples.png"  # these four are in the export too
LOSS_PLOT_NAME = "loss.png"
WEIGHTS_PLOT_NAME = "weights.png"
METRICS_NAME = "metrics.jsonl"
LIVE_SNAPSHOT_FORMAT = 1  # live/snapshot.json's "format": gan.training.live writes it, gan.training.runner reads it
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO)
STORAGE_EXIT = 75  # sysexits' EX_TEMPFAIL: a run a failed write ended, to continue once space is freed


class StorageFailure(GanError):
    """A run's write failed for lack of space, or on a read-only or failing disk (STORAGE_ERRNOS): the line says
    where, what was kept and how to continue (`RunFolder.storage_failure`)."""


class RunFolder:
    """The paths of a run folder, and its housekeeping (see the module's docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.samples = self.path / "samples"
        self.metrics = self.path / METRICS_NAME
        self.loss_plot = self.path / LOSS_PLOT_NAME
        self.weights_plot = self.path / WEIGHTS_PLOT_NAME
        self.model = self.path / "model"
        self.best = self.path / "best"
        self.live = self.path / "live"
        self.live_snapshot = self.live / "snapshot.json"
        self.live_grid = self.live / "grid.png"
        self.stop = self.path / "STOP"
        self.lock = self.path / ".lock"

    def sample_grid(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def saved_grids(self, up_to: int) -> dict[int, Path]:
        """The sample grids in samples/ up to step `up_to`, by step."""
        steps = {path: path.stem.removeprefix("step_") for path in self.samples.glob("step_*.png")}
        return {int(step): path for path, step in steps.items() if step.isdigit() and int(step) <= up_to}

    def claim(self) -> int:
        """Check that the folder can be written (before any data is loaded), lock it for this process, and remove
        the half-written files a killed run left there. Returns the lock's file descriptor, held until closed."""
        out = self.path

        def unwritable(error: OSError) -> GanError:
            return GanError(f"--out {out} cannot be written ({error.strerror}): choose a folder you can write to")

        try:
            out.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise unwritable(error) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise GanError(
                f"another training run is using --out {out}: wait for it to end, or choose another --out"
            ) from None
        try:
            os.ftruncate(lock, 0)
            os.write(lock, f"{os.getpid()}\n".encode())
        except OSError as error:
            os.close(lock)
            raise unwritable(error) from None
        removed = [p for folder in (out, self.checkpoints, self.model, self.best) for p in remove_temporaries(folder)]
        if removed:
            print(f"removed {len(removed)} half-written file(s) left in {out} by an interrupted run")
        return lock

    def state_to_resume(self, resume: str | None, quiet: bool = False) -> tuple[Path, dict] | None:
        """The training state --resume names (`auto`: the newest readable one here), with its path; None for a
        new run."""
        if resume is None:
            return None
        if resume != "auto":
            return Path(resume), ckpt.load_training_state(Path(resume))
        states = ckpt.list_training_states(self.checkpoints)
        if not states:
            if not quiet:
                print(f"no training state in {self.checkpoints}; starting a new run")
            return None
        return newest_readable_state(states, quiet)

    def truncate_metrics(self, step: int) -> int:
        """Cut the metrics log back to the lines up to `step` (the state a run resumes from), so that no step
        appears twice, dropping torn lines; returns how many lines went."""
        if not self.metrics.is_file():
            return 0
        lines = self.metrics.read_text(errors="replace").splitlines()
        kept = [
            line
            for line, record in zip(lines, parse_metrics(lines), strict=True)
            if record is not None and record.get("step", 0) <= step
        ]
        if len(kept) < len(lines):
            atomic_write(self.metrics, lambda p: Path(p).write_text("".join(line + "\n" for line in kept)))
        return len(lines) - len(kept)

    def truncate_samples(self, step: int) -> int:
        """Delete the sample grids after `step` (the state a run resumes from): the resumed run draws its own, and
        the trackers rebuilt from the run folder must not show a step that no longer happened; returns how many
        went."""
        stale = [path for grid, path in self.saved_grids(sys.maxsize).items() if grid > step]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def storage_failure(self, error: OSError) -> str:
        """One line for a write that failed for lack of space (or a read-only or failing disk) during a run."""
        where = f" {error.filename}" if error.filename else f" to {self.path}"
        states = ckpt.list_training_states(self.checkpoints)
        kept = f"the last good training state is {states[-1]}" if states else "no training state was saved yet"
        return (
            f"could not write{where} ({error.strerror or error}); {kept}: free some space, then continue with "
            f"--out {self.path} --resume auto"
        )


def newest_readable_state(states: list[Path], quiet: bool = False) -> tuple[Path, dict]:
    """The newest of `states` that can be read, saying which newer ones could not (a kill or a full disk can leave
    an empty or truncated file where the atomic rename of an older version kept no partial one)."""
    problems = []
    for path in reversed(states):
        try:
            state = ckpt.load_training_state(path)
        except CheckpointError as error:
            problems.append(str(error))
            if not quiet:
                print(f"warning: {error}; trying the state before it")
            continue
        return path, state
    raise CheckpointError(
        f"none of the {len(states)} training states in {states[0].parent} can be read (newest: "
        f"{problems[0]}); start again with a new --out"
    )
