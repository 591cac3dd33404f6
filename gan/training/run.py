"""A training run: the loop, logging, evaluation, checkpoints, signals and the STOP file, the export and scheduled Hub
pushes. The run folder's paths and housekeeping are gan.run_folder's."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .. import checkpoint as ckpt
from ..data import ImageDataset, dataset_slug
from ..distributed import parameter_digest
from ..errors import GanError
from ..evaluation import TrainingEvaluator
from ..features import FEATURE_DATASETS, feature_extractor
from ..hub import publish
from ..models import without_spectral_norm
from ..plots import plot_losses, plot_weight_norms
from ..precision import describe_device
from ..run_folder import LOSS_PLOT_NAME, METRICS_NAME, SAMPLE_GRID_NAME, WEIGHTS_PLOT_NAME, RunFolder
from ..runlog import read_metrics
from ..sampling import generate, grid_image, latents_for_seeds
from .settings import RunSettings
from .tracking import TENSORBOARD_DIR, Tracker, open_trackers, parse_report_to
from .trainer import Trainer, plan_fraction

NUM_FIXED_SAMPLES = 64

StepHook = Callable[["Run"], None]


def layer_norms(module: torch.nn.Module) -> dict[str, float]:
    """L2 norm of each layer's weight (before spectral normalisation), keyed by the layer's index."""
    return {
        name.removeprefix("main.").split(".")[0]: round(param.detach().float().norm().item(), 5)
        for name, param in module.named_parameters()
        if name.endswith(("weight", "weight.original"))
    }


class Run:
    """A training run in its folder: logging, sample grids, checkpoints, signals and the final export.

    Everything the run logs goes through `write_record` (each metrics.jsonl line) and `save_samples` (the sample
    grid, with the plots); both also feed the --report-to trackers."""

    def __init__(self, trainer: Trainer, dataset: ImageDataset, out: Path, total_steps: int | None):
        self.trainer = trainer
        self.dataset = dataset
        self.out = out
        self.folder = RunFolder(out)
        self.total_steps = total_steps  # None: no step limit (a --seconds budget alone)
        self.settings = trainer.settings
        self.seconds = trainer.settings.seconds  # the training-time budget, if any
        self.fixed_latents = latents_for_seeds(0, NUM_FIXED_SAMPLES, trainer.config.nz)
        self._grid: tuple[int, Image.Image] | None = None  # the sample grid, and the step it shows
        self.tracker = Tracker()  # --report-to's, while train() runs on rank 0
        self._tracked_grid_step: int | None = None
        self.bar: tqdm | None = None  # the progress bar, from the first step on
        self.stop_signal: int | None = None
        self.stopped = False  # ended before its plan (a signal or the STOP file)
        self.metrics: dict[str, torch.Tensor] = {}
        self.steps_since_log = 0
        self.last_record: dict = {}
        # callables(run) after each step (e.g. scheduled Hub pushes); their time is not training time
        self.step_hooks: list[StepHook] = []
        self.evaluator = make_evaluator(trainer, dataset)
        self.last_eval: dict | None = None
        self.best: dict | None = None  # the best evaluation so far, when --keep-best

    def _handle_signal(self, signum, _frame):
        self.stop_signal = signum
        signal.signal(signum, signal.SIG_DFL)  # a second Ctrl-C stops at once

    def stopped_code(self) -> int:
        return 128 + (self.stop_signal or signal.SIGTERM)

    def stop_requested(self) -> bool:
        """Whether the run should end at this step: a signal (or the app gone, see live.watch_stdin), or the STOP
        file. A file, unlike a signal, can come at any moment, even before this process could handle a signal."""
        return self.stop_signal is not None or self.folder.stop.exists()

    # -- the loop ---------------------------------------------------------------------------
    def train(self) -> int:
        """Train to total_steps (or until SIGINT/SIGTERM or the STOP file), then checkpoint and export; a run stopped
        before its first step writes nothing. Returns an exit code: 128 + the signal (SIGTERM's for the STOP file)
        for a run stopped before its plan."""
        # signals reach the main thread only (a run in another thread, as in a ZeroGPU worker, stops by its STOP file)
        handled = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
        previous = {sig: signal.signal(sig, self._handle_signal) for sig in handled}
        try:
            if self.trainer.world.is_main:
                self.tracker = self.start_tracking()
            self._train_steps()
            self.folder.stop.unlink(missing_ok=True)
            if self.stopped and self.trainer.step == 0:  # no model to export
                print("stopped before the first step: nothing was trained or exported")
                return self.stopped_code()
            return self._finish()
        finally:
            self.tracker.close()
            self.tracker = Tracker()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start_tracking(self) -> Tracker:
        """--report-to's trackers; a resumed run passes them what was logged up to its step (metrics.jsonl is cut
        back to it by then), for the trackers that rebuild the tracked run."""
        names, step = parse_report_to(self.settings.report_to), self.trainer.step
        if not names:
            return Tracker()
        history = read_metrics(self.folder.metrics) if step else []
        grids = self.folder.saved_grids(step) if step else {}
        return open_trackers(names, self.out, self.settings.to_record(), step, history, grids)

    def _train_steps(self) -> None:
        trainer = self.trainer
        self.bar = tqdm(
            total=self.total_steps,
            initial=trainer.step,
            unit="step",
            dynamic_ncols=True,
            desc="training",
            disable=not trainer.world.is_main,
        )
        self.started = time.perf_counter() - trainer.elapsed
        self.window_start = time.perf_counter()
        try:
            while not self.planned_end():
                if trainer.world.any(self.stop_requested()):
                    self.stopped = True
                    break
                stats = trainer.advance(self.fraction_done())
                self.steps_since_log += 1
                for key, value in stats.items():
                    self.metrics[key] = self.metrics.get(key, 0) + value
                self.bar.update(1)
                if trainer.step % self.settings.checkpoint_every == 0:
                    self.save_checkpoint()
                if trainer.world.is_main:
                    self._after_step()
        finally:
            self.bar.close()  # also when a write fails: the error line then stands alone

    def training_time(self) -> float:
        """Seconds trained so far (step hooks not counted), resumed runs included; while the loop runs."""
        return time.perf_counter() - self.started

    def fraction_done(self) -> float:
        """How far through its plan the run is, for the learning-rate decay: by steps, or by the time budget
        (--seconds) where that comes first. (Under torchrun every rank must agree: the time budget is for one
        process.)"""
        return plan_fraction(self.trainer.step, self.training_time(), self.total_steps, self.seconds)

    def planned_end(self) -> bool:
        """Whether the run has reached its step plan or its time budget."""
        if self.total_steps is not None and self.trainer.step >= self.total_steps:
            return True
        return self.seconds is not None and self.training_time() >= self.seconds

    def _after_step(self) -> None:
        """Rank 0's work after a step: the metrics line, the sample grid, the evaluation and the step hooks."""
        step, settings = self.trainer.step, self.settings
        if step % settings.log_every == 0:
            self.log_progress()
        if step % settings.sample_every == 0:
            self.save_samples()
        if self.evaluator is not None and step % settings.eval_every == 0:
            self.evaluate()
        if self.step_hooks:
            paused = time.perf_counter()
            for hook in self.step_hooks:
                hook(self)
            spent = time.perf_counter() - paused
            self.started, self.window_start = self.started + spent, self.window_start + spent

    def _finish(self) -> int:
        """The last checkpoint, metrics line, evaluation, sample grid and export; the exit code."""
        trainer = self.trainer
        self.save_checkpoint()
        self.check_ranks_agree()
        if not trainer.world.is_main:
            return 0
        if self.steps_since_log:
            self.log_progress()
        if self.evaluator is not None and trainer.step % self.settings.eval_every:
            self.evaluate()  # the final state competes for --keep-best too
        self.save_samples()
        if self.best is None:
            self.export()
        else:  # the best state was exported when reached; model/ takes it, with the whole run's curves
            shutil.copytree(self.folder.best, self.folder.model, dirs_exist_ok=True)
            self.copy_history(self.folder.model)
            print(
                f"kept the best evaluated state (step {self.best['step']}, fd {self.best['fd']}) in {self.folder.model}"
            )
        if self.stopped:
            print(f"stopped at step {trainer.step}; resume with: --out {self.out} --resume auto")
            return self.stopped_code()
        return 0

    # -- logging ----------------------------------------------------------------------------
    def log_progress(self) -> None:
        """Average the step statistics since the last line (one host sync), write and show them."""
        trainer, now = self.trainer, time.perf_counter()
        trainer.elapsed = now - self.started
        images_per_second = self.steps_since_log * self.settings.batch_size / max(now - self.window_start, 1e-9)
        record = {
            "step": trainer.step,
            "epoch": round(trainer.step * self.settings.batch_size / len(self.dataset), 4),
            **{k: round(v.item() / self.steps_since_log, 5) for k, v in self.metrics.items()},
            "lr_g": float(f"{trainer.opt_g.param_groups[0]['lr']:.6g}"),  # those of the interval's last step
            "lr_d": float(f"{trainer.opt_d.param_groups[0]['lr']:.6g}"),
            "images_per_second": round(images_per_second, 1),
            "skipped_steps": trainer.skipped_steps,
            "elapsed_s": round(trainer.elapsed, 2),
            "weight_norms_g": layer_norms(trainer.generator),
            "weight_norms_d": layer_norms(trainer.discriminator),
        }
        self.metrics.clear()
        self.steps_since_log, self.window_start = 0, now
        if record["d_real"] > 0.95 and record["d_fake"] < 0.05:
            self._alarm(
                record, "the discriminator wins outright (D(x) > 0.95, D(G(z)) < 0.05): the generator gets no signal"
            )
        self.last_record = record
        self.write_record(record)
        self.bar.set_postfix(
            loss_d=f"{record['loss_d']:.3f}",
            loss_g=f"{record['loss_g']:.3f}",
            D_x=f"{record['d_real']:.2f}",
            D_G_z=f"{record['d_fake']:.2f}",
            img_s=f"{images_per_second:.0f}",
            refresh=False,
        )

    def write_record(self, record: dict) -> None:
        """One line of metrics.jsonl: every record the run logs (step statistics, evaluations) passes here."""
        with open(self.folder.metrics, "a") as log:
            log.write(json.dumps(record) + "\n")
        self.tracker.log_record(record)

    def _alarm(self, record: dict, message: str) -> None:
        record.setdefault("alarms", []).append(message)
        self.bar.write(f"warning at step {self.trainer.step}: {message}")

    def evaluate(self) -> None:
        """Quick quality scores, logged as an `eval` line; with --keep-best, export each new best."""
        scores = self.evaluator(self.trainer.sampling_generator())
        self.last_eval = {**scores, "step": self.trainer.step, "num": self.settings.eval_num}
        record = {"step": self.trainer.step, "eval": scores}
        if scores["diversity"] < 0.5:
            self._alarm(record, f"samples are {scores['diversity']:.2f}x as varied as real images: mode collapse?")
        self.write_record(record)
        if self.settings.keep_best and (self.best is None or scores["fd"] < self.best["fd"]):
            self.best = self.last_eval
            self.export(self.folder.best)

    def sample_grid(self) -> Image.Image:
        """The fixed-seed sample grid of the current step, rendered once per step (samples/ and exports share it)."""
        if self._grid is None or self._grid[0] != self.trainer.step:
            images = generate(self.trainer.sampling_generator(), self.fixed_latents)
            self._grid = (self.trainer.step, grid_image(images, columns=8))
        return self._grid[1]

    def save_samples(self) -> None:
        """The sample grid into samples/, and the plots of the metrics so far."""
        path = self.folder.sample_grid(self.trainer.step)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sample_grid().save(path)
        if self._tracked_grid_step != self.trainer.step:  # the last step and a push can save the same grid again
            self.tracker.log_image(self.trainer.step, self.sample_grid())
            self._tracked_grid_step = self.trainer.step
        records = read_metrics(self.folder.metrics)
        if records:
            plot_losses(records, self.folder.loss_plot, self.trainer.loss.label)
            plot_weight_norms(records, self.folder.weights_plot)

    # -- checkpoints and exports ------------------------------------------------------------
    def save_checkpoint(self) -> None:
        state = self.trainer.state_dict()  # collective under torchrun: every rank calls it
        if self.trainer.world.is_main:
            ckpt.save_training_state(ckpt.state_path(self.folder.checkpoints, self.trainer.step), state)
            ckpt.prune_training_states(self.folder.checkpoints, self.settings.keep_last)

    def check_ranks_agree(self) -> None:
        """Under torchrun, verify that every rank ends with the same weights (DDP's promise), and record it."""
        trainer = self.trainer
        digests = trainer.world.gather(
            {"generator": parameter_digest(trainer.generator), "discriminator": parameter_digest(trainer.discriminator)}
        )
        if any(d != digests[0] for d in digests):
            raise GanError(
                f"the {len(digests)} processes ended with different weights; "
                "please report this with the run's arguments"
            )

    def export(self, folder: Path | None = None) -> Path:
        """Export the current state to `folder` (default: model/); with --keep-best, model/ gets the best one."""
        trainer = self.trainer
        discriminator = trainer.discriminator
        if self.settings.spectral_norm:
            discriminator = without_spectral_norm(discriminator)
        raw = trainer.generator if trainer.ema is not None else None
        generator = trainer.sampling_generator()
        folder = ckpt.export_model(folder or self.folder.model, generator, discriminator, self._metadata(), raw)
        self.sample_grid().save(folder / SAMPLE_GRID_NAME)
        self.copy_history(folder)
        return folder

    def _metadata(self) -> dict:
        """What an export's config.json says besides the architecture: the data, the training, the scores."""
        trainer = self.trainer
        return {
            "name": f"dcgan-{dataset_slug(self.dataset.name)}",
            **self.dataset.metadata(),  # the dataset, its credit and licence (a Hub dataset's repo and commit too)
            "training": {
                "steps": trainer.step,
                "images_seen": trainer.step * self.settings.batch_size,
                "train_images": len(self.dataset),
                "time_s": round(trainer.elapsed, 1),
                "device": describe_device(trainer.device),
                "precision": trainer.precision.name,
                "skipped_steps": trainer.skipped_steps,
                "world_size": trainer.world.size,
                "generator_digest": parameter_digest(trainer.generator),
                "torch": torch.__version__,
                "args": self.settings.to_record(),
            },
            "final_metrics": {k: v for k, v in self.last_record.items() if not k.startswith("weight_norms")},
            "evaluation": self.last_eval,
        }

    def copy_history(self, folder: Path) -> None:
        """The run's plots, metrics log and TensorBoard event files, as they stand, into an export."""
        for name in (LOSS_PLOT_NAME, WEIGHTS_PLOT_NAME, METRICS_NAME):
            if (self.out / name).exists():
                shutil.copyfile(self.out / name, folder / name)
        if (self.out / TENSORBOARD_DIR).is_dir():
            shutil.rmtree(folder / TENSORBOARD_DIR, ignore_errors=True)
            shutil.copytree(self.out / TENSORBOARD_DIR, folder / TENSORBOARD_DIR)


def make_evaluator(trainer: Trainer, dataset: ImageDataset) -> TrainingEvaluator | None:
    """The quick evaluator for --eval-every, where the dataset has an offline feature network."""
    settings = trainer.settings
    if settings.eval_every <= 0 or dataset.name not in FEATURE_DATASETS:
        if settings.keep_best:
            print(f"warning: no offline quality score exists for {dataset.name}; --keep-best keeps the last state")
        return None
    return TrainingEvaluator(feature_extractor(dataset.name, device=trainer.device), dataset, settings.eval_num)


def scheduled_push(settings: RunSettings) -> StepHook | None:
    """A step hook pushing the export every --push-every steps (not at the last step: the final push does that).
    A failed scheduled push is reported and training goes on."""
    if not (settings.push_to_hub and settings.push_every):
        return None

    def push(run: Run) -> None:
        step = run.trainer.step
        if step % settings.push_every or run.planned_end():
            return
        run.save_samples()
        folder = run.export()
        try:
            published = publish.push_export(
                folder,
                settings.hub_model_id,
                token=settings.hub_token,
                private=settings.hub_private,
                revision=settings.hub_revision,
                commit_message=f"Training checkpoint: step {step} of {run.total_steps or f'{run.seconds:g} s'}",
            )
        except GanError as error:
            print(f"\nwarning: the scheduled push at step {step} failed: {error}; training goes on", file=sys.stderr)
        else:
            print(f"\npushed step {step} to {published.url} (commit {published.commit[:7]})")

    return push
