"""The app's Train tab runs training through here (gradio-free): `TabRun` (a run's settings, as train.py
flags, within the tab's limits), `TrainingProcess` (the trainer in a child process), `LiveView` (what the run shows,
read from its folder) and `explain_curves` (one plain sentence on what the latest curves mean).

`TrainingProcess` runs `python -m gan.training` (the trainer itself, with the flags `TabRun` makes) in a child process:
one thread (OMP_NUM_THREADS=1, set before torch loads, so it holds whichever thread the app serves from), a cap on its
data memory (RLIMIT_DATA), its own process group, and its standard input a pipe from the app, so that it stops (as on
SIGTERM: it checkpoints and exports) when the app goes. Stop makes the run's STOP file, the same graceful end at any
moment; `kill` is SIGKILL for a visitor who left. `LiveView` reads the snapshot (gan.training.live) and the new lines
of metrics.jsonl, bounded.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..run_folder import LIVE_SNAPSHOT_FORMAT, RunFolder
from ..runlog import parse_metrics

MAX_SNAPSHOT_BYTES = 256 * 1024  # a snapshot is ~6 KB
MAX_GRID_BYTES = 4 * 2**20  # an 8x8 grid of 32 px RGB samples is under 200 KB
MAX_READ_BYTES = 4 * 2**20  # metrics.jsonl read per call at most (a line is ~500 bytes)
MAX_RECORDS = 2000  # records kept for the curves; beyond, every other one goes (the curves keep their shape)
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


WIDTHS = {"tiny": 8, "small": 32, "medium": 48, "large": 64}  # ngf = ndf; "large" is the DCGAN paper's
# The tab's recipe -> train.py's --recipe and extra flags. At the tab's defaults (90 s, width 32, batch 32) the
# default recipe as it is did best among those tried (docs/app.md, "The Train tab": a lower or higher learning rate, a
# longer decay or no EMA were no better; wider networks or larger batches take fewer steps and did worse).
TAB_RECIPES = {
    "default": ("studio", ()),
    "classic": ("classic", ()),
}
MAX_SECONDS = 600  # a run's time budget at most
MAX_TRAIN_STEPS = 20_000  # a run's step budget at most; also the step cap of a time budget
LOG_EVERY = 5  # steps between metrics records: the curves' resolution
LIVE_EVERY = 1.5  # seconds of training between live snapshots (the tab updates as often)
# A run's data memory at most (RLIMIT_DATA: heap and private writable mappings, what grows with a run; not its address
# space: `import torch, torchvision` alone maps 3.4 GiB of it with PyPI's CUDA build). The largest run the tab allows
# (width 64, batch 128) peaks at 1129 MiB of data on Fashion-MNIST, 1069 MiB on 5000 colour images, flat from 20 steps
# to 150 (bench/train_memory.py, torch 2.14.1+cu130 on a CPU): 2 GiB leaves 919 MiB (81% of that peak) to spare.
MEMORY_BYTES = 2 * 2**30
# how a run over its cap ends, in its log (any case): Python, torch's allocator, errno ENOMEM, C++, the loader
OUT_OF_MEMORY = (
    "memoryerror",
    "can't allocate memory",
    "cannot allocate memory",
    "out of memory",
    "bad_alloc",
    "failed to map segment",
)
STOPPED_CODE = 128 + signal.SIGTERM  # the trainer's exit code when its STOP file stopped it (Run.stopped_code)
UNUSED = str(10**9)  # steps between sample grids and training states the tab never reads (the end writes both)


@dataclass(frozen=True)
class TabRun:
    """One run of the Train tab, as train.py flags: the data, the recipe and the settings a learner chooses; the
    budget is `seconds` of training, or `steps` when given. bench/train_tab.py runs exactly these."""

    seed: int = 0
    seconds: float = 90
    steps: int | None = None
    recipe: str = "default"
    lr: float | None = None  # both networks' learning rate; None: the recipe's
    width: str = "small"
    batch_size: int = 32
    dataset: str = "fashion-mnist"  # a source of gan.data's registry (the Train tab offers those marked in_train_tab)
    data_dir: str | None = None  # a folder of the visitor's images (fitted to 32 px) instead
    channels: int = 1

    def flags(self) -> list[str]:
        recipe, extra = TAB_RECIPES[self.recipe]
        width = str(WIDTHS[self.width])
        if self.data_dir is None:
            data = ["--dataset", self.dataset, "--no-download"]
        else:
            data = ["--dataset", "folder", "--data-dir", self.data_dir, "--channels", str(self.channels)]
        budget = (
            ["--steps", str(self.steps)]
            if self.steps
            else ["--seconds", f"{self.seconds:g}", "--steps", str(MAX_TRAIN_STEPS)]
        )
        rates = ["--lr-g", str(self.lr), "--lr-d", str(self.lr)] if self.lr else []
        return [
            *data,
            *("--image-size", "32", "--ngf", width, "--ndf", width, "--batch-size", str(self.batch_size)),
            *("--seed", str(self.seed), "--recipe", recipe, *extra, *rates, *budget),
            *("--log-every", str(LOG_EVERY), "--sample-every", UNUSED, "--checkpoint-every", UNUSED),
            *("--keep-last", "1", "--eval-every", "0"),
        ]


def package_root() -> Path:
    """The folder holding the `gan` package (a checkout or a Space, where it is not installed)."""
    return Path(__file__).resolve().parents[2]


class TrainingProcess:
    """`python -m gan.training FLAGS --out FOLDER/run` in a child process: one thread, at most `memory_bytes` of
    data memory (RLIMIT_DATA), its own process group, its output in FOLDER/train.log, its standard input a pipe from
    here."""

    def __init__(self, folder: Path, flags: list[str], live_every: float, memory_bytes: int | None):
        self.folder = folder
        self.out = folder / "run"
        self.memory_bytes = memory_bytes
        self.log_path = folder / "train.log"
        env = {**os.environ, **ONE_THREAD, "TQDM_MININTERVAL": "30"}  # the progress bar: rarely, in a log
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root()), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "gan.training", *flags, "--out", str(self.out)]
        command += ["--live-every", str(live_every), "--watch-stdin"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.started = time.monotonic()
        self.stopping = False
        if memory_bytes:  # from here, not in a preexec_fn: that is not safe in a threaded server
            try:
                resource.prlimit(self.process.pid, resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
            except (OSError, ValueError):
                self.kill()
                raise

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """End the run as Ctrl-C would: at the end of its step, with a checkpoint and the export (before its first
        step, with nothing). By the run's STOP file, not a signal: a signal that comes before the trainer could handle
        it (while Python starts or torch loads) would end it at once."""
        if self.running() and not self.stopping:
            self.stopping = True
            self.out.mkdir(parents=True, exist_ok=True)
            RunFolder(self.out).stop.touch()

    def kill(self) -> None:
        """End it at once (nobody will use the result)."""
        if self.running():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        return code

    def failure(self) -> str:
        """What went wrong, in one line, from the end of the log (the run folder's path left out)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 16384))
                lines = log.read().decode(errors="replace").replace("\r", "\n").splitlines()
        except OSError:
            lines = []
        text = "\n".join(lines)
        if any(sign in text.lower() for sign in OUT_OF_MEMORY):
            limit = f" ({self.memory_bytes / 2**30:.1f} GiB)" if self.memory_bytes else ""
            return f"the training ran out of its memory allowance{limit}: choose a smaller width or batch"
        errors = [line for line in lines if line.startswith("error: ")]
        line = errors[-1] if errors else next((line for line in reversed(lines) if line.strip()), "no output")
        return line.removeprefix("error: ").replace(str(self.folder), ".")[:300]


@dataclass(frozen=True)
class Snapshot:
    """One live snapshot, as read back."""

    step: int
    training_s: float
    seconds: float | None
    total_steps: int | None
    real: list[float]  # finite logits only
    generated: list[float]
    grid: bytes | None  # the PNG, as written with this snapshot or just after


class LiveView:
    """What a live run shows, read from its folder: the latest snapshot, and the metrics records so far (read
    incrementally; at most MAX_RECORDS kept, thinned evenly)."""

    def __init__(self, out: Path):
        self.folder = RunFolder(out)
        self.records: list[dict] = []
        self.offset = 0
        self.partial = b""

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, or None before the first (or for one that cannot be read)."""
        data = _read_capped(self.folder.live_snapshot, MAX_SNAPSHOT_BYTES)
        try:
            raw = json.loads(data) if data else None
            if not isinstance(raw, dict) or raw.get("format") != LIVE_SNAPSHOT_FORMAT:
                return None
            return Snapshot(
                step=int(raw["step"]),
                training_s=float(raw["training_s"]),
                seconds=None if raw.get("seconds") is None else float(raw["seconds"]),
                total_steps=None if raw.get("total_steps") is None else int(raw["total_steps"]),
                real=_finite(raw["real"]),
                generated=_finite(raw["generated"]),
                grid=_read_capped(self.folder.live_grid, MAX_GRID_BYTES),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def new_records(self) -> list[dict]:
        """The step-statistics records written since the last call (evaluation records are left out)."""
        try:
            with open(self.folder.metrics, "rb") as log:
                log.seek(self.offset)
                data = log.read(MAX_READ_BYTES)
        except OSError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [  # None: torn by a kill
            record
            for record in parse_metrics([line.decode(errors="replace") for line in lines])
            if record is not None and isinstance(record.get("step"), int) and "loss_d" in record
        ]

    def metrics(self) -> list[dict]:
        """Every step-statistics record so far, at most MAX_RECORDS (thinned evenly)."""
        self.records = thinned(self.records + self.new_records())
        return self.records


def thinned(records: list[dict]) -> list[dict]:
    """At most MAX_RECORDS records for the curves: beyond, every other one goes (the curves keep their shape)."""
    return records[:-1:2] + records[-1:] if len(records) > MAX_RECORDS else records


def _read_capped(path: Path, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def _finite(values) -> list[float]:
    if not isinstance(values, list):
        raise TypeError("not a list")
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def explain_curves(records: list[dict], window: int = 3) -> str:
    """One plain-language line on what the latest curves mean (D(x), D(G(z)) and the losses, averaged over the last
    `window` records)."""
    if not records:
        return "Starting: both networks are random, so the generator draws noise; the first curves appear in a moment."
    recent = records[-window:]
    real, fake, loss_d = (sum(r[key] for r in recent) / len(recent) for key in ("d_real", "d_fake", "loss_d"))
    if not all(math.isfinite(v) for v in (real, fake, loss_d)):
        return "The losses are not finite: the training diverged (those steps are skipped); try a lower learning rate."
    scores = f"D(x) = {real:.2f}, D(G(z)) = {fake:.2f}"
    if real > 0.9 and fake < 0.1:
        return f"D is winning: D(G(z)) is near 0, so G gets little signal to learn from ({scores})."
    if fake > 0.6 and fake >= real - 0.1:
        return f"G is fooling D: D rates generated images about as real as real ones ({scores}); D will adapt."
    if real - fake < 0.15:
        return f"D can hardly tell real from generated ({scores}): the two are in a close contest."
    if records[-1]["step"] < 100:
        return f"Early days: D quickly learns to tell noise from real images ({scores}), and G follows its gradient."
    return (
        f"A healthy contest: D tells real from generated only partly ({scores}), so G keeps getting useful signal; "
        "neither loss goes to 0."
    )


class ChildRun:
    """A Train run as a child process (`TrainingProcess`, on the CPU, or on CUDA where a dedicated GPU exists), seen
    through the runner interface the Train tab uses: `updates()` (iterated by the handler: after each, `snapshot()`
    and `metrics()` may show more; it ends when the run does), `stop()` (with the model), `kill()` (nothing kept),
    `wait()` (the exit code), `failure()` (one line), `out` (the run folder) and `started`."""

    def __init__(self, folder: Path, run: TabRun, live_every: float, memory_bytes: int | None):
        self.process = TrainingProcess(folder, run.flags(), live_every, memory_bytes)
        self.view = LiveView(self.process.out)
        self.out, self.started, self.every = self.process.out, self.process.started, live_every
        self.stop, self.kill, self.failure = self.process.stop, self.process.kill, self.process.failure
        self.snapshot, self.metrics = self.view.snapshot, self.view.metrics

    def updates(self):
        while True:
            running = self.process.running()  # asked before the caller reads: the last snapshot comes after the end
            yield
            if not running:
                return
            self.process.wait(self.every)  # returns as soon as the run ends (Stop, its budget, a kill)

    def wait(self) -> int | None:
        return self.process.wait()


class WorkerRun:
    """A Train run in a GPU worker: `gpu_train` is gan.training.worker.train_in_worker as `spaces.GPU` decorated it
    (see gan.ui.gpu), and this takes its items through the same interface as `ChildRun`. The handler iterates
    `updates()` itself: ZeroGPU charges the GPU time to the visitor whose request is in the calling thread's context.
    The export arrives as bytes and is written to the run folder's model/, where the tab reads it as a child's."""

    def __init__(self, folder: Path, run: TabRun, gpu_train):
        self.out, self.started = folder / "run", time.monotonic()
        self.code: int | None = None
        self.error: str | None = None
        self.latest: Snapshot | None = None
        self.records: list[dict] = []
        self.killed = False
        self.items = gpu_train(run.flags(), str(self.out))

    def updates(self):
        yield
        for item in self.items:
            self._take(item)
            if self.killed:
                self.items.close()  # as Gradio's cancel does: the worker stops at its next yield
                return
            yield

    def _take(self, item: dict) -> None:
        kind = item["kind"]
        if kind == "snapshot":
            self.latest = Snapshot(**{field.name: item[field.name] for field in fields(Snapshot)})
            self.records = thinned(self.records + item["records"])
        elif kind == "export":
            model = RunFolder(self.out).model
            model.mkdir(parents=True, exist_ok=True)
            for name, data in item["files"].items():
                (model / Path(name).name).write_bytes(data)
            self.code = item["code"]
        elif kind == "stopped":
            self.code = STOPPED_CODE
        else:
            self.error, self.code = item["message"], item["code"]

    def snapshot(self) -> Snapshot | None:
        return self.latest

    def metrics(self) -> list[dict]:
        return self.records

    def stop(self) -> None:
        stop = RunFolder(self.out).stop
        stop.parent.mkdir(parents=True, exist_ok=True)
        stop.touch()

    def kill(self) -> None:
        """Nothing will use the result: the run stops at its next step, and the handler drops what comes."""
        self.killed = True
        self.stop()
        try:
            self.items.close()
        except ValueError:  # the handler is inside it now: it closes it after this item
            pass

    def wait(self) -> int | None:
        return self.code

    def failure(self) -> str:
        return self.error or "no output"
