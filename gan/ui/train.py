"""The Train tab: a visitor trains a DCGAN here and watches it learn, live: the fixed-seed samples, both losses, D(x)
and D(G(z)), D's scores on real and generated images, each layer's weight norm and the learning rate, with one plain
sentence on what the curves mean. When the run ends (its budget, Stop, or the visitor leaving), its export becomes that
visitor's own model in the picker (a gr.State: no one else sees it), downloadable as a zip and, on a Space with OAuth,
publishable to their Hub account.

Each run is the project's trainer in a child process (gan.training.runner.ChildRun: one thread, a memory cap, killed
cleanly), or on a ZeroGPU Space in a GPU worker (WorkerRun; see gan.ui.gpu): the tab sees one runner interface.
Runs take turns in a concurrency group of their own ("training", one at a time; the queue shows each visitor their
place), capped per visitor and per address as projections are. A run ends when its visitor goes: the handler checks
for a gone client at every update, the page's unload event kills the run and deletes its files, and a watchdog kills
a run whose client Gradio has seen go (Gradio drops a streaming handler whose client went). Each visitor's latest
model is kept while they are here, within a byte budget (gan.ui.trained.KeptModels).
"""

from __future__ import annotations

import atexit
import io
import math
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr

from ..checkpoint import CONFIG_NAME, published_config, read_config
from ..data import train_tab_sources
from ..errors import GanError
from ..files import OwnedFolder, remove_abandoned
from ..hub.errors import hub_errors
from ..hub.publish import export_files, push_export
from ..plots import live_figure
from ..run_folder import SAMPLE_GRID_NAME, STORAGE_EXIT, RunFolder
from ..sampling import MAX_SEED
from ..training.runner import (
    MAX_TRAIN_STEPS,
    STOPPED_CODE,
    TAB_RECIPES,
    WIDTHS,
    ChildRun,
    Snapshot,
    TabRun,
    WorkerRun,
    explain_curves,
)
from ..uploads import MAX_FILES, MIN_IMAGES, read_images, write_images
from .assets import markdown_text, model_summary
from .context import AppContext
from .fairness import current_event
from .handlers import check_int, check_number, shows_errors
from .picker import ModelRef, OwnModel, PickerRow
from .trained import RUNS_PREFIX, KeptModels, kept_budget
from .widgets import NumberInput, RadioInput, SliderInput, file_input, image_output, seed_input

STARTUP_S = 120  # a run's wall time beyond its training budget: start, data, snapshots, export
WATCH_EVERY_S = 5  # seconds between the watchdog's looks for runs whose client went
STOP_AHEAD_S = 5  # a Stop with no run of its visitor yet holds this long for a run about to be queued
BATCH_SIZES = (16, 32, 64, 128)
IMAGES = "images"  # the data choice of the visitor's own images
SOURCES_OFFERED = {source.name: source for source in train_tab_sources()}
DATA_CHOICES = [(f"{s.title} ({s.images:,} images)", s.name) for s in SOURCES_OFFERED.values()] + [
    ("My images", IMAGES)
]
WIDTH_CHOICES = [
    ("tiny (8): quick, blurry", "tiny"),
    ("small (32)", "small"),
    ("medium (48)", "medium"),
    ("large (64, the paper's)", "large"),
]
RECIPE_CHOICES = [("default (faster learning)", "default"), ("classic (Radford et al. 2015)", "classic")]
REPO_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}$")
INTRO = (
    "Train a DCGAN here and watch it learn. The **generator** G turns random vectors z into images; the "
    "**discriminator** D scores images as real (training data) or generated. They train in turns: D learns to tell "
    "them apart, G learns to fool D. Press **Start**: the samples below begin as noise and become images, while the "
    "curves show the contest. When the run ends (its time budget, **Stop**, or leaving the page), the model is yours "
    "in the picker above: Sample, Interpolate, Score and Project use it, and you can download it."
)


def zip_export(folder: Path, inner: str) -> bytes:
    """An export's published files (config.json as a Hub push has it: without the server's paths, the safetensors,
    samples and plots, metrics) as a zip holding one folder `inner`, which `python app.py --checkpoint` and
    `python -m gan sample --checkpoint` load once unzipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in export_files(folder):
            if name == CONFIG_NAME:
                archive.writestr(f"{inner}/{name}", published_config(read_config(folder)[1]))
            else:
                archive.write(folder / name, f"{inner}/{name}")
    return buffer.getvalue()


def _session(request: gr.Request | None) -> str:
    """The visitor's session; handlers called in-process share one."""
    return (request.session_hash if request else None) or "in-process"


def _plain(value):
    """A number fit for JSON (gr.JSON): a non-finite one as text."""
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


@dataclass(eq=False)
class Job:
    """One visitor's run: its folder, its runner once started, and what its handler knows of it."""

    session: str
    folder: Path
    run: TabRun
    event: str | None = None  # the queued event its handler runs for (None in-process)
    runner: ChildRun | WorkerRun | None = None
    stopping: bool = False
    gone: bool = False
    finishing: bool = False  # its handler reads the export: the watchdog leaves it alone
    shown: list[str] = field(default_factory=list)  # output files of its updates, the oldest deleted

    def abandon(self) -> None:
        """Its visitor has gone: the run killed, the folder deleted (by its handler if that reads the export
        now), and its handler told."""
        self.gone = True
        if self.runner is not None:
            self.runner.kill()
        if not self.finishing:
            shutil.rmtree(self.folder, ignore_errors=True)


class TrainTab:
    """The tab's handlers (bound methods, named as their events), every visitor's runs and the models they trained."""

    def __init__(self, app: AppContext, root: Path | None = None):
        self.app = app
        self.root = root  # where the app's runs folder is made (the temporary folder by default)
        remove_abandoned(RUNS_PREFIX, root)  # the runs of an app that was killed
        self.runs: OwnedFolder | None = None  # this app's runs folder, made at the first run
        self.jobs: dict[str, Job] = {}  # by session: queued jobs are not here yet
        self.kept = KeptModels(kept_budget())
        self.early_stops: dict[str, float] = {}  # session -> until when a Stop pressed before its run began holds
        self.lock = threading.Lock()
        self.sources_here = [name for name, source in SOURCES_OFFERED.items() if source.here()]
        self.watchdog: threading.Thread | None = None

    # -- the settings ------------------------------------------------------------------------
    def checked(self, seed, seconds, data, recipe, lr, width, batch_size, steps) -> TabRun:
        """The run the inputs ask for, each checked (the data's files are read later, in the run's turn)."""
        seed = check_int(seed, "seed", 0, MAX_SEED)
        seconds = check_number(seconds, "seconds", 5, self.app.placement.max_seconds)
        steps = check_int(steps, "steps", 0, MAX_TRAIN_STEPS)
        lr = check_number(lr, "lr", 0, 0.01)
        batch_size = check_int(batch_size, "batch_size", BATCH_SIZES[0], BATCH_SIZES[-1])
        for value, name, allowed in (
            (data, "data", [value for _, value in DATA_CHOICES]),
            (recipe, "recipe", list(TAB_RECIPES)),
            (width, "width", list(WIDTHS)),
        ):
            if value not in allowed:
                raise gr.Error(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
        if batch_size not in BATCH_SIZES:
            raise gr.Error(f"batch_size must be one of {', '.join(map(str, BATCH_SIZES))}")
        if data != IMAGES and data not in self.sources_here:
            raise gr.Error(
                f"{SOURCES_OFFERED[data].title} is not on this server: train on your own images (data='images')"
            )
        dataset = data if data != IMAGES else TabRun.dataset
        return TabRun(seed, seconds, steps or None, recipe, lr or None, width, batch_size, dataset)

    def with_data(self, job: Job, data: str, images: list[str] | None) -> TabRun:
        """The run on its dataset, or on the visitor's images, decoded and checked here, written for the trainer."""
        if data != IMAGES:
            return job.run
        if not images:
            raise gr.Error(f"upload your images (a zip, or up to {MAX_FILES} files; at least {MIN_IMAGES})")
        paths = [str(path) for path in images]
        loaded = read_images(paths, [Path(path).name for path in paths])
        if loaded.skipped:
            gr.Warning(f"Skipped {len(loaded.skipped)} file(s): " + "; ".join(loaded.skipped[:5]))
        folder = write_images(loaded.images, job.folder / "images")
        return replace(job.run, data_dir=str(folder), channels=loaded.channels)

    # -- running -----------------------------------------------------------------------------
    def stopped_before_start(self, session: str) -> bool:
        """Whether `session` pressed Stop while this run was queued, or just before it was (a client may send both
        requests at once, and Stop can arrive first)."""
        with self.lock:
            return self.early_stops.pop(session, 0) > time.monotonic()

    def begin(self, session: str, run: TabRun) -> Job:
        """A job for `session`'s run, registered; refused when the kept models fill their budget."""
        if self.kept.full(session):
            raise gr.Error(
                "This server is keeping as many trained models as it has room for, all of visitors still here: "
                "try again in a few minutes",
                print_exception=False,
            )
        with self.lock:
            if self.runs is None:
                self.runs = OwnedFolder(RUNS_PREFIX, self.root)
                atexit.register(self.close)
            job = Job(session, Path(tempfile.mkdtemp(prefix="run-", dir=self.runs.path)), run, current_event())
            self.jobs[session] = job
            if self.watchdog is None:
                self.watchdog = threading.Thread(target=self._watch, name="train-watchdog", daemon=True)
                self.watchdog.start()
        return job

    def end(self, job: Job, kept: bool) -> None:
        """The job is over: its run killed if it still runs, and its folder deleted unless kept."""
        with self.lock:
            if self.jobs.get(job.session) is job:
                del self.jobs[job.session]
        if job.runner is not None:
            job.runner.kill()
        if not kept:
            shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        """At the app's exit: every run killed, and the runs folder deleted."""
        with self.lock:
            jobs, runs = list(self.jobs.values()), self.runs
        for job in jobs:
            job.gone = True
            if job.runner is not None:
                job.runner.kill()
        if runs is not None:
            runs.remove()

    def _watch(self) -> None:
        """Kill the runs whose client went while Gradio no longer calls their handler (it drops a streaming handler
        whose client went). Gradio's own record of the client decides, not the time since the last update: a busy
        server may leave a handler waiting for a worker thread far longer than a client takes to go."""
        while True:
            time.sleep(WATCH_EVERY_S)
            with self.lock:
                stale = [
                    job
                    for job in self.jobs.values()
                    if job.runner is not None
                    and job.event is not None
                    and not job.finishing
                    and self.app.client_gone(job.event)
                ]
                for job in stale:
                    del self.jobs[job.session]
            for job in stale:
                job.abandon()

    def follow(self, job: Job):
        """Live updates while the run trains (one per new snapshot), then the final one; stops the run when its
        visitor asked, or it ran past its budget, and kills it when its client has gone."""
        runner, shown = job.runner, None
        budget = (job.run.seconds if not job.run.steps else self.app.placement.max_seconds) + STARTUP_S
        for _ in runner.updates():
            if job.gone or self.app.client_gone():
                job.gone = True
                raise gr.Error("training stopped: its client has gone", print_exception=False)
            if job.stopping or time.monotonic() - runner.started > budget:
                runner.stop()
            snapshot = runner.snapshot()
            if snapshot is not None and snapshot.step != shown:
                shown = snapshot.step
                records = [r for r in runner.metrics() if r["step"] <= snapshot.step]  # the curves to the grid's step
                yield self.live_update(job, snapshot, records, "stopping" if job.stopping else "training")
        with self.lock:
            job.finishing = not job.gone
        yield self.final_update(job)

    # -- what the visitor sees -----------------------------------------------------------------
    def _file(self, job: Job, data: bytes, suffix: str) -> str:
        """An output file of an update; those of updates before the last two are deleted (already shown)."""
        path = self.app.outputs.write(data, suffix)
        job.shown.append(path)
        while len(job.shown) > 4:
            Path(job.shown.pop(0)).unlink(missing_ok=True)
        return path

    @staticmethod
    def stats(run: TabRun, snapshot: Snapshot | None, records: list[dict], state: str) -> dict:
        """The numbers of an update, for scripts (gr.JSON): the state, the step, the budget and the latest record."""
        last = records[-1] if records else {}
        keys = ("loss_d", "loss_g", "d_real", "d_fake", "lr_g", "images_per_second", "skipped_steps")
        return {
            "state": state,
            "step": snapshot.step if snapshot else 0,
            "training_s": round(snapshot.training_s, 1) if snapshot else 0.0,
            "budget": {"steps": run.steps} if run.steps else {"seconds": run.seconds},
            **{key: _plain(last[key]) for key in keys if key in last},
        }

    def live_update(self, job: Job, snapshot: Snapshot, records: list[dict], state: str) -> tuple:
        """An update while the run trains: the grid, the figure, the status and its sentence, the numbers."""
        budget = f"{job.run.steps} steps" if job.run.steps else f"{job.run.seconds:g} s"
        title = f"step {snapshot.step}, {snapshot.training_s:.0f} s of training (budget: {budget})"
        grid = self._file(job, snapshot.grid, ".png") if snapshot.grid else gr.skip()
        figure = self._file(job, live_figure(records, snapshot.real, snapshot.generated, title), ".png")
        speed = f" · {records[-1]['images_per_second']:,.0f} images/s" if records else ""
        status = f"**Step {snapshot.step}** · {snapshot.training_s:.0f} s of {budget}{speed}"
        line = f"{status}: {explain_curves(records)}" + (" **Stopping** at this step." if state == "stopping" else "")
        return grid, figure, line, self.stats(job.run, snapshot, records, state), gr.skip(), gr.skip(), gr.skip()

    def final_update(self, job: Job) -> tuple:
        """The export as this visitor's model, its samples, the whole run's curves, the zip; GanError if it failed."""
        runner, folder = job.runner, RunFolder(job.runner.out)
        export = folder.model
        code = runner.wait()
        if job.gone:
            raise gr.Error("training stopped: its client has gone", print_exception=False)
        if code == STORAGE_EXIT:  # the trainer's advice (free space, --resume) is the server's to follow
            snapshot = runner.snapshot()
            reached = f" at step {snapshot.step}" if snapshot else ""
            raise GanError(
                f"the server could not save your run (its disk is full or failing): it stopped{reached} and was not "
                "kept; try again later"
            )
        if not (export / CONFIG_NAME).is_file():
            if code == STOPPED_CODE:  # the trainer's exit when stopped before its first step, exporting nothing
                return self.stopped_before_first_step(job.run)
            raise GanError(f"the training failed: {runner.failure()}")
        shutil.rmtree(folder.checkpoints, ignore_errors=True)  # no resuming here: the export is what counts
        ref = ModelRef(folder=str(export))
        model = self.app.models.cache.get(ref)  # loaded into the shared cache: the visitor's next sample needs no load
        steps = model.metadata["training"]["steps"]
        label = f"your model (trained here: {model.metadata.get('dataset')}, seed {job.run.seed}, {steps} steps)"
        own = OwnModel(label, ref, str(job.folder))
        name = f"{model.name}-seed{job.run.seed}"
        archive = self.app.outputs.write(zip_export(export, name), ".zip", prefix=f"{name}-")
        records, snapshot = runner.metrics(), runner.snapshot()
        scores = (snapshot.real, snapshot.generated) if snapshot else ([], [])
        title = f"step {steps}, {model.metadata['training']['time_s']:.0f} s of training: done"
        figure = self.app.outputs.write(live_figure(records, *scores, title), ".png")
        grid = self.app.outputs.write((export / SAMPLE_GRID_NAME).read_bytes(), ".png")
        ended = "stopped" if job.stopping or code != 0 else "done"
        line = (
            f"**{'Stopped' if ended == 'stopped' else 'Done'}** after {steps} steps. {explain_curves(records)} Your "
            "model is now selected in the picker above: Sample, Interpolate, Score and Project use it; download it "
            "below."
        )
        return grid, figure, line, self.stats(job.run, snapshot, records, ended), archive, own.ref, own

    def stopped_before_first_step(self, run: TabRun) -> tuple:
        """The last update of a run stopped before it trained a step: no model, one line saying so."""
        line = "**Stopped** before the first step: nothing was trained. Press Start to train."
        return None, None, line, self.stats(run, None, [], "stopped"), None, gr.skip(), gr.skip()

    # -- the handlers --------------------------------------------------------------------------
    @shows_errors
    def train(
        self,
        seed: float = 0,
        seconds: float = TabRun.seconds,
        data: str = "fashion-mnist",
        images: list[str] | None = None,
        recipe: str = TabRun.recipe,
        lr: float = 0,
        width: str = TabRun.width,
        batch_size: float = TabRun.batch_size,
        steps: float = 0,
        request: gr.Request | None = None,
    ):
        """Train a DCGAN on this server and stream its progress: every update has the fixed-seed sample grid, a
        figure of the curves (losses, D(x) and D(G(z)), D's scores on real and generated images, weight norms per
        layer, learning rate), a sentence on what they mean and the latest numbers; the last update adds the trained
        model as a zip (config.json + safetensors) and makes it this session's model. One run at a time: others wait
        in the queue.

        Args:
            seed: the run's seed, 0 to 4294967295 (the same seed and settings with a step budget give the same model)
            seconds: the training-time budget, 5 to 600 seconds
            data: "fashion-mnist", "noto-emoji" (emoji, in colour), or "images" to train on the uploaded images
            images: image files or zips of them (at least 64 images, up to 5000), for data="images"
            recipe: "default" (10x the classic learning rate, decayed at the end, an averaged generator) or "classic"
            lr: both networks' learning rate, up to 0.01; 0 for the recipe's
            width: "tiny", "small", "medium" or "large": the networks' width (8, 32, 48 or 64 channels)
            batch_size: 16, 32, 64 or 128 images per step
            steps: a step budget instead of the time budget, 1 to 20000; 0 to use seconds

        Returns:
            the sample grid (PNG), the curves (PNG), a sentence on them (Markdown), the latest numbers (step, training
            seconds, losses, D(x) as d_real, D(G(z)) as d_fake, learning rate, images per second, state), and at the
            end the trained model as a zip
        """
        session = _session(request)
        with self.app.jobs.running(request):
            run = self.checked(seed, seconds, data, recipe, lr, width, batch_size, steps)
            if self.stopped_before_start(session):
                yield self.stopped_before_first_step(run)
                return
            job = self.begin(session, run)
            kept = False
            try:
                waiting = "Reading your images" if data == IMAGES else f"Loading {SOURCES_OFFERED[data].title}"
                line = f"{waiting} and starting the trainer (a few seconds)..."
                yield None, None, line, self.stats(job.run, None, [], "starting"), None, gr.skip(), gr.skip()
                job.run = self.with_data(job, data, images)
                if job.stopping:  # Stop came while the images were read
                    yield self.stopped_before_first_step(job.run)
                    return
                job.runner = self.app.placement.start(job.folder, job.run)
                for update in self.follow(job):
                    if isinstance(update[-1], OwnModel):
                        kept = self.keep(job)
                    yield update
            finally:
                self.end(job, kept)

    def keep(self, job: Job) -> bool:
        """The job's folder becomes its visitor's kept model, unless they left meanwhile (False then)."""
        with self.lock:
            if job.gone:
                return False
            self.kept.keep(job.session, job.folder)
            return True

    def stop_training(self, request: gr.Request | None = None) -> None:
        """Stop this visitor's training run: it ends at its current step, exported and made their model as at the
        end of its budget. A run still waiting in the queue ends as soon as its turn comes."""
        session = _session(request)
        with self.lock:
            job = self.jobs.get(session)
            if job is None:  # queued, or about to be: its run will end before its first step
                queued = self.app.jobs.holds("training", session)
                self.early_stops[session] = math.inf if queued else time.monotonic() + STOP_AHEAD_S
                return
            job.stopping = True
        if job.runner is not None:
            job.runner.stop()

    def leave(self, request: gr.Request) -> None:
        """The visitor closed the page (demo.unload): their run is killed and its files deleted; their model may go
        when its space is needed (gan.ui.trained)."""
        session = request.session_hash
        with self.lock:
            job = self.jobs.pop(session, None)
            self.early_stops.pop(session, None)
        if job is not None:
            job.abandon()
        self.kept.left(session)

    def forget(self, own: OwnModel | None) -> None:
        """The own-model state's delete_callback (Gradio dropped the session's state): the model's files go."""
        if own is not None:
            self.kept.forget(Path(own.folder))

    def show_model(self, own: OwnModel | None):
        """The picker after a run: this visitor's model listed (for them alone) and selected, and its summary."""
        if own is None:
            return gr.skip(), gr.skip()
        choices = [*self.app.models.choices, own.label]
        return gr.Dropdown(choices=choices, value=own.label), model_summary(self.app.current(own.ref))

    @shows_errors
    def publish(
        self,
        name: str,
        own: OwnModel | None = None,
        profile: gr.OAuthProfile | None = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> str:
        """Publish this visitor's trained model to their Hub account as USER/NAME, as `python -m gan push` does
        (one commit with the export and a model card), with the token of their login: never a pasted one."""
        if own is None:
            raise gr.Error("train a model first: there is nothing to publish yet")
        if oauth_token is None:
            raise gr.Error("sign in with Hugging Face first (the button above), then publish")
        name = (name or "").strip()
        if not REPO_NAME.match(name):
            raise gr.Error("name the model repo with letters, digits, '-', '_' and '.' (up to 96), e.g. my-dcgan")
        user = profile.username if profile is not None else None
        if not user:
            from huggingface_hub import HfApi

            with hub_errors("finding your account", name, writing=True, token=oauth_token.token):
                user = HfApi(token=oauth_token.token).whoami()["name"]
        published = push_export(Path(own.ref.folder), f"{user}/{name}", token=oauth_token.token)
        repo = markdown_text(published.repo_id)
        return f"Published to [{repo}]({published.url}) (commit `{published.commit[:7]}`)."


def own_model_state(tab: TrainTab) -> gr.State:
    """The model a visitor trained (an OwnModel, or None): per session, its files deleted with the session."""
    return gr.State(None, delete_callback=tab.forget)


def _settings(tab: TrainTab) -> dict[str, gr.components.Component]:
    """The settings a learner cares about, with the measured defaults (bench/train_tab.py)."""
    data_default, defaults = next(iter(tab.sources_here), IMAGES), tab.app.placement.defaults
    if tab.app.placement.note:
        gr.Markdown(tab.app.placement.note)
    with gr.Row(equal_height=True):
        data = RadioInput(DATA_CHOICES, value=data_default, label="Data", scale=2, elem_id="train-data")
        recipe = RadioInput(RECIPE_CHOICES, value=defaults.recipe, label="Recipe", scale=2)
        width = RadioInput(WIDTH_CHOICES, value=defaults.width, label="Width", scale=3)
    with gr.Row(equal_height=True):
        seconds = SliderInput(
            5,
            tab.app.placement.max_seconds,
            value=defaults.seconds,
            step=5,
            label="Time budget (s)",
            scale=3,
            elem_id="train-seconds",
        )
        batch = RadioInput([(str(b), b) for b in BATCH_SIZES], value=defaults.batch_size, label="Batch size", scale=2)
        lr = NumberInput(value=0, minimum=0, maximum=0.01, label="Learning rate (0: the recipe's)", scale=1)
        seed = seed_input("Seed", scale=1)
    images = file_input(
        f"My images: a zip, or several files (at least {MIN_IMAGES}; trained at 32x32, grey or colour)",
        "multiple",
        elem_id="train-upload",
        height=120,
        visible=data_default == IMAGES,
    )
    data.change(lambda choice: gr.File(visible=choice == IMAGES), data, images, api_visibility="private", queue=False)
    with gr.Accordion("A step budget instead (reproducible)", open=False):
        steps = NumberInput(
            value=0,
            precision=0,
            minimum=0,
            maximum=MAX_TRAIN_STEPS,
            label="Steps (0: the time budget)",
            elem_id="steps",
        )
    return {"inputs": [seed, seconds, data, images, recipe, lr, width, batch, steps]}


def _live_view() -> list[gr.components.Component]:
    """The live view's components, in the train endpoint's output order."""
    explanation = gr.Markdown("Press **Start** to train.", elem_id="train-explanation")
    with gr.Row():
        # the grid about as high as the figure beside it
        grid = image_output("Samples of seeds 0-63", 440, fill=True, scale=2, elem_id="train-grid")
        figure = image_output("How it learns", pixelated=False, scale=5, elem_id="train-figure")
    export = gr.DownloadButton("Download your model (zip: config.json + safetensors)", elem_id="train-export")
    with gr.Accordion("The latest numbers", open=False):
        numbers = gr.JSON(elem_id="train-numbers")
    return [grid, figure, explanation, numbers, export]


def _publishing(tab: TrainTab, own: gr.State) -> None:
    """Publish to the visitor's Hub account, where OAuth is configured (a Space with hf_oauth: true); elsewhere
    Gradio would fake the login with the machine's own token, and fail without one."""
    if not os.environ.get("OAUTH_CLIENT_ID"):
        gr.Markdown(
            "*Publishing to your Hub account appears where this app runs as a Space with sign-in; here, download the "
            "zip and publish it with `python -m gan push FOLDER --hub-model-id YOUR_NAME/NAME`.*"
        )
        return
    with gr.Row(equal_height=True):
        gr.LoginButton(scale=1)
        name = gr.Textbox(label="Model repo name", value="my-dcgan", scale=2)
        button = gr.Button("Publish to my Hub account", scale=1)
    result = gr.Markdown()
    button.click(tab.publish, [name, own], result, api_visibility="private", concurrency_id="loading")


def build(tab: TrainTab, picker: PickerRow, own: gr.State, demo: gr.Blocks) -> TrainTab:
    """The Train tab, its events wired to `tab`'s handlers, and the visitor's leaving to its cleanup."""
    app = tab.app
    with gr.Tab("Train"):
        gr.Markdown(INTRO)
        settings = _settings(tab)
        with gr.Row():
            start = gr.Button("Start", variant="primary", elem_id="train-start")
            stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
        outputs = _live_view()
        _publishing(tab, own)
    trained = start.click(
        tab.train,
        settings["inputs"],
        [*outputs, picker.session_model, own],
        api_name="train",
        **app.group("training"),
    )
    trained.success(tab.show_model, [own], [picker.choice, picker.summary], api_visibility="private", queue=False)
    stop.click(tab.stop_training, None, None, api_name="stop_training", api_visibility="undocumented", queue=False)
    demo.unload(tab.leave)
    return tab
