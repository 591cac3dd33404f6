"""DCGAN training: the command line of `train.py`, the training loop, run folders and resume.

A run folder (`--out DIR`) holds:
    checkpoints/step_XXXXXXX.pt   full training states (resume with --resume auto|PATH)
    samples/step_XXXXXXX.png      fixed-noise grids (seeds 0..63) during training
    metrics.jsonl                 one JSON line per --log-every steps
    loss.png, weights.png         loss curves and per-layer weight norms over time
    model/                        the final export (config.json + safetensors), the sample grid and plots
"""

from __future__ import annotations

import argparse
import copy
import errno
import fcntl
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint as ckpt
from .augment import diff_augment, parse_policy
from .data import CREDITS, DATASETS, ImageDataset, load_dataset
from .distributed import World, init_world, parameter_digest
from .errors import CheckpointError, GanError
from .evaluation import TrainingEvaluator
from .features import FEATURE_DATASETS, DomainFeatures
from .hub import publish
from .images import uint8_to_model_input
from .models import Discriminator, Generator, ModelConfig, add_spectral_norm, without_spectral_norm
from .plots import parse_metrics, plot_losses, plot_weight_norms, read_metrics
from .precision import AMP_DTYPES, choose_precision, describe_device
from .sampling import generate, grid_image, latents_for_seeds

AMP_CHOICES = ("auto", *AMP_DTYPES)
LOSSES = ("bce", "hinge")
RECIPES = {
    "classic": {
        "loss": "bce",
        "spectral_norm": False,
        "ema": 0.0,
        "diffaugment": "none",
        "r1": 0.0,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "lr_decay": 0.0,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    # chosen by bench/quality.py (README, "Sample quality"): the classic recipe with 10x the learning rates,
    # decayed to 0 over the last third of the run, and an EMA generator
    "studio": {
        "loss": "bce",
        "spectral_norm": False,
        "ema": 0.999,
        "diffaugment": "none",
        "r1": 0.0,
        "lr_g": 2e-3,
        "lr_d": 2e-3,
        "lr_decay": 0.33,
        "beta1": 0.5,
        "beta2": 0.999,
    },
}
DEFAULT_RECIPE = "studio"
EMA_RAMPUP = 0.05  # the EMA half-life is at most this fraction of the steps so far
# Arguments a resumed run must share with the run it continues.
RESUME_LOCKED = (
    "dataset",
    "data_dir",
    "image_size",
    "channels",
    "nz",
    "ngf",
    "ndf",
    "batch_size",
    "seed",
    "amp",
    "recipe",
    *RECIPES["classic"],
    "r1_every",
)
# Run-folder names and the export's extra files.
SAMPLE_GRID_NAME = "samples.png"
LOSS_PLOT_NAME = "loss.png"
WEIGHTS_PLOT_NAME = "weights.png"
METRICS_NAME = "metrics.jsonl"
LOCK_NAME = ".lock"
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO)
NUM_FIXED_SAMPLES = 64


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a DCGAN and export it for the app (config.json + safetensors).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    data.add_argument(
        "--data-dir", default=None, help="torchvision root, a folder with the raw files, or (folder) your images"
    )
    data.add_argument(
        "--no-download", action="store_true", help="never download; fail with a hint if the data is missing"
    )
    data.add_argument("--channels", type=int, choices=(1, 3), default=3, help="channels for --dataset folder")
    model = parser.add_argument_group("model")
    model.add_argument("--image-size", type=int, choices=(32, 64), default=32)
    model.add_argument("--nz", type=int, default=100, help="latent size")
    model.add_argument("--ngf", type=int, default=64, help="generator width")
    model.add_argument("--ndf", type=int, default=64, help="discriminator width")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--batch-size", type=int, default=128)
    optim.add_argument("--epochs", type=float, default=5, help="an epoch is dataset size / batch size steps")
    optim.add_argument("--steps", type=int, default=None, help="generator updates; wins over --epochs")
    optim.add_argument("--seed", type=int, default=0)
    recipe = parser.add_argument_group("recipe", "each flag left out takes the --recipe's value (see README)")
    recipe.add_argument(
        "--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE, help="'classic' is Radford et al.'s DCGAN"
    )
    recipe.add_argument("--loss", choices=LOSSES, default=None, help="bce: non-saturating BCE-with-logits; hinge")
    recipe.add_argument(
        "--spectral-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="spectral normalisation in D (which then has no BatchNorm)",
    )
    recipe.add_argument("--ema", type=float, default=None, help="EMA decay of the sampling generator (0 = off)")
    recipe.add_argument("--diffaugment", default=None, help="comma-separated: color,translation,cutout ('none' = off)")
    recipe.add_argument("--r1", type=float, default=None, help="R1 penalty weight on real images (0 = off)")
    recipe.add_argument("--r1-every", type=int, default=16, help="lazy R1: apply every N steps, scaled by N")
    recipe.add_argument("--lr-g", type=float, default=None)
    recipe.add_argument("--lr-d", type=float, default=None)
    recipe.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        metavar="FRACTION",
        help="decay both learning rates linearly to 0 over this last fraction of the run's steps",
    )
    recipe.add_argument("--beta1", type=float, default=None)
    recipe.add_argument("--beta2", type=float, default=None)
    run = parser.add_argument_group("run")
    run.add_argument("--out", default=None, help="run folder (default: runs/<dataset>)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        default="auto",
        help="autocast precision; auto = bf16 on CUDA, and on a CPU only where bf16 is measured faster than fp32 "
        "(CPUs without native bf16 train in fp32)",
    )
    run.add_argument(
        "--compile", action="store_true", help="torch.compile G and D for training (see README for when it helps)"
    )
    run.add_argument("--log-every", type=int, default=50, help="steps between metrics lines and progress-bar updates")
    run.add_argument("--sample-every", type=int, default=500, help="steps between fixed-noise sample grids")
    run.add_argument("--checkpoint-every", type=int, default=1000, help="steps between training states")
    run.add_argument("--keep-last", type=int, default=3, help="training states to keep (0 = all)")
    run.add_argument(
        "--eval-every",
        type=int,
        default=500,
        help="steps between quick quality evaluations (where an offline feature network exists; 0 = off)",
    )
    run.add_argument("--eval-num", type=int, default=1000, help="samples per quick evaluation")
    run.add_argument("--keep-best", action="store_true", help="export the evaluated best state, not the last one")
    run.add_argument("--resume", default=None, help="a training state to continue, or 'auto' for the newest in --out")
    publish.add_publish_arguments(parser)
    if suppress_defaults:  # parse only what the user typed (to check it against a resumed run)
        for action in parser._actions:
            action.default = argparse.SUPPRESS
    return parser


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise GanError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse train.py's arguments; each recipe flag left out takes the chosen recipe's value."""
    args = build_parser().parse_args(argv)
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


@torch.no_grad()
def recalibrate_batchnorm(generator: Generator, device: torch.device, batches: int = 16, batch_size: int = 256) -> None:
    """Re-measure BatchNorm running statistics as the exact mean over fixed latents (seeded, CPU-drawn)."""
    noise = torch.Generator().manual_seed(0)
    batchnorms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for module in batchnorms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the batches below
    generator.train()
    for _ in range(batches):
        generator(torch.randn(batch_size, generator.config.nz, generator=noise).to(device))
    for module in batchnorms:
        module.momentum = 0.1
    generator.eval()


def layer_norms(module: torch.nn.Module) -> dict[str, float]:
    """L2 norm of each layer's weight (before spectral normalisation), keyed by the layer's index."""
    return {
        name.removeprefix("main.").split(".")[0]: round(param.detach().float().norm().item(), 5)
        for name, param in module.named_parameters()
        if name.endswith(("weight", "weight.original"))
    }


class Trainer:
    """Owns both networks, their optimizers and every RNG of a run; one `train_step` per generator update."""

    def __init__(
        self, args: argparse.Namespace, dataset: ImageDataset, device: torch.device, world: World | None = None
    ):
        world = world or World()
        self.args = args
        self.device = device
        self.world = world
        self.batch_size = args.batch_size // world.size  # --batch-size is the global batch
        d_norm = "none" if args.spectral_norm else "batch"
        self.config = ModelConfig(args.nz, args.ngf, args.ndf, dataset.channels, args.image_size, d_norm)
        torch.manual_seed(args.seed)  # the same initial weights on every rank
        self.generator = Generator(self.config).to(device, memory_format=torch.channels_last)
        self.discriminator = Discriminator(self.config)
        if args.spectral_norm:
            add_spectral_norm(self.discriminator)
        self.discriminator.to(device, memory_format=torch.channels_last)
        if world.distributed:  # then each rank its own augmentation draws
            torch.manual_seed(args.seed + 1000 * world.rank)
        # the modules that train: DDP wrappers under torchrun, optionally compiled; sampling and
        # export use the plain modules (or the EMA copy), so the compiled ones never switch mode
        self.g_train = world.wrap(self.generator, device)
        self.d_train = world.wrap(self.discriminator, device)
        if args.compile:
            self.g_train, self.d_train = torch.compile(self.g_train), torch.compile(self.d_train)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False) if args.ema > 0 else None
        self.ema_calibrated_at: int | None = None  # the step whose EMA weights the BatchNorm statistics fit
        self.policy = parse_policy("" if args.diffaugment == "none" else args.diffaugment)
        fused = {"fused": True} if device.type == "cuda" else {}
        self.opt_g = torch.optim.Adam(self.generator.parameters(), args.lr_g, betas=(args.beta1, args.beta2), **fused)
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), args.lr_d, betas=(args.beta1, args.beta2), **fused
        )
        precision = choose_precision(args.amp, device, self.generator, self.discriminator, self.batch_size)
        self.precision = world.gather(precision)[0]  # under torchrun, rank 0's verdict for every rank
        self.amp_dtype = self.precision.dtype
        args.amp = self.precision.amp  # checkpoints record the precision chosen, so a resumed run keeps it
        self.scaler = torch.amp.GradScaler(device.type) if self.amp_dtype == torch.float16 else None
        self.images = dataset.images[world.rank :: world.size].to(device)  # this rank's shard
        self.data_rng = torch.Generator(device).manual_seed(args.seed + 1 + 1000 * world.rank)
        self.noise_rng = torch.Generator(device).manual_seed(args.seed + 2 + 1000 * world.rank)
        self.step = 0
        self.skipped_steps = 0
        self.elapsed = 0.0

    # -- one step -------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        index = torch.randint(self.images.shape[0], (self.batch_size,), generator=self.data_rng, device=self.device)
        return uint8_to_model_input(self.images[index]).contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        )

    def _apply(
        self, loss: torch.Tensor, module: torch.nn.Module, optimizer: torch.optim.Optimizer, buffers: list[torch.Tensor]
    ) -> None:
        """Backward and step, unless the loss or a gradient is non-finite: then skip, count, and put the
        module's BatchNorm statistics back to `buffers` so nothing of the bad step remains."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
        else:
            loss.backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if bool(torch.stack([loss.isfinite()] + [g.isfinite().all() for g in grads]).all()):
            if self.scaler is not None:
                self.scaler.step(optimizer)
            else:
                optimizer.step()
        else:
            self.skipped_steps += 1
            for buffer, saved in zip(module.buffers(), buffers, strict=True):
                buffer.copy_(saved)
        if self.scaler is not None:
            self.scaler.update()

    def _d_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.d_train(diff_augment(images, self.policy) if self.policy else images).float()

    def set_progress(self, fraction: float) -> None:
        """Set both learning rates for a run `fraction` done: constant, then (--lr-decay) linear to 0 at the end."""
        decay = self.args.lr_decay
        scale = max(0.0, min(1.0, (1.0 - fraction) / decay)) if decay > 0 else 1.0
        for optimizer, lr in ((self.opt_g, self.args.lr_g), (self.opt_d, self.args.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = lr * scale

    def advance(self, fraction: float) -> dict[str, torch.Tensor]:
        """One step of a run `fraction` done: its learning rates, a fresh batch, the update, the step count."""
        self.set_progress(fraction)
        stats = self.train_step(self.next_batch())
        self.step += 1
        return stats

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator update on real + fake, then one generator update."""
        args = self.args
        d_buffers = [b.clone() for b in self.discriminator.buffers()]
        g_buffers = [b.clone() for b in self.generator.buffers()]
        z = torch.randn(real.shape[0], self.config.nz, generator=self.noise_rng, device=self.device)
        r1_step = args.r1 > 0 and self.step % args.r1_every == 0
        real.requires_grad_(r1_step)
        with self._autocast():
            fake = self.g_train(z)
            logits_real = self._d_logits(real)
            logits_fake = self._d_logits(fake.detach())
            if args.loss == "hinge":
                loss_d = F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
            else:  # BCE-with-logits against 1 for real and 0 for fake, written as softplus
                loss_d = F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()
        if r1_step:  # lazy R1 (Mescheder et al. 2018): gradient penalty on reals, every r1_every steps
            (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            loss_d = loss_d + args.r1 / 2 * args.r1_every * grad.float().square().sum(dim=[1, 2, 3]).mean()
        self._apply(loss_d, self.discriminator, self.opt_d, d_buffers)
        with self._autocast():
            logits = self._d_logits(fake)
            loss_g = -logits.mean() if args.loss == "hinge" else F.softplus(-logits).mean()
        self._apply(loss_g, self.generator, self.opt_g, g_buffers)
        if self.ema is not None:
            self._update_ema()
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(logits_real.detach()).mean(),
            "d_fake": torch.sigmoid(logits_fake.detach()).mean(),
        }

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA of the generator's weights. As in StyleGAN2-ADA, the average's half-life ramps up to that of
        --ema as 5% of the steps so far: early on, while the generator still changes fast, a long average
        lags behind it (measured: README, "Sample quality")."""
        half_life = min(math.log(0.5) / math.log(self.args.ema), EMA_RAMPUP * self.step)
        decay = 0.5 ** (1 / half_life) if half_life > 0 else 0.0
        for averaged, live in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            averaged.lerp_(live, 1 - decay)

    def sampling_generator(self) -> Generator:
        """The generator to sample and export: the EMA copy, with BatchNorm statistics measured for its own
        weights (the live generator's running statistics belong to other weights), or the live one."""
        if self.ema is None:
            return copy.deepcopy(self.generator) if self.args.compile else self.generator
        if self.ema_calibrated_at != self.step:  # samples, evaluation and export at one step share one calibration
            recalibrate_batchnorm(self.ema, self.device)
            self.ema_calibrated_at = self.step
        return self.ema

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The full training state; under torchrun a collective call (every rank's RNG states are gathered)."""
        rng = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state(), "noise": self.noise_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        rng = {key: value.cpu() for key, value in rng.items()}
        return {
            "format_version": ckpt.FORMAT_VERSION,
            "step": self.step,
            "skipped_steps": self.skipped_steps,
            "elapsed": self.elapsed,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": self.world.gather(rng),  # one entry per rank
            "args": saved_args(self.args),
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
                self.ema_calibrated_at = None
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.scaler is not None and state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            if len(state["rng"]) != self.world.size:
                raise ValueError(
                    f"it was saved by {len(state['rng'])} process(es); resume it with as many, not {self.world.size}"
                )
            rng = state["rng"][self.world.rank]
            torch.set_rng_state(rng["torch"])
            self.data_rng.set_state(rng["data"])
            self.noise_rng.set_state(rng["noise"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(f"the training state does not fit this run ({str(error).splitlines()[0]})") from None
        self.step, self.skipped_steps, self.elapsed = state["step"], state["skipped_steps"], state["elapsed"]


def saved_args(args: argparse.Namespace) -> dict:
    """The run's arguments as plain values, without anything secret."""
    return {k: v for k, v in vars(args).items() if "token" not in k}


class Run:
    """A training run in its folder: logging, sample grids, checkpoints, signals and the final export."""

    def __init__(self, trainer: Trainer, dataset: ImageDataset, out: Path, total_steps: int):
        self.trainer = trainer
        self.dataset = dataset
        self.out = out
        self.total_steps = total_steps
        self.args = trainer.args
        self.fixed_latents = latents_for_seeds(0, NUM_FIXED_SAMPLES, trainer.config.nz)
        self.stop_signal: int | None = None
        self.metrics: dict[str, torch.Tensor] = {}
        self.steps_since_log = 0
        self.last_record: dict = {}
        # callables(run) after each step (e.g. scheduled Hub pushes); their time is not training time
        self.step_hooks: list = []
        self.evaluator = make_evaluator(trainer, dataset)
        self.last_eval: dict | None = None
        self.best: dict | None = None  # the best evaluation so far, when --keep-best

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    def _handle_signal(self, signum, _frame):
        self.stop_signal = signum
        signal.signal(signum, signal.SIG_DFL)  # a second Ctrl-C stops at once

    def run(self) -> int:
        """Train to total_steps (or until a signal), then checkpoint and export. Returns an exit code."""
        previous = {sig: signal.signal(sig, self._handle_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._train()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _train(self) -> int:
        trainer, args = self.trainer, self.args
        main = trainer.world.is_main
        bar = tqdm(
            total=self.total_steps,
            initial=trainer.step,
            unit="step",
            dynamic_ncols=True,
            desc="training",
            disable=not main,
        )
        self.started = time.perf_counter() - trainer.elapsed
        self.window_start = time.perf_counter()
        try:
            while trainer.step < self.total_steps and not trainer.world.any(self.stop_signal is not None):
                stats = trainer.advance(trainer.step / self.total_steps)
                self.steps_since_log += 1
                for key, value in stats.items():
                    self.metrics[key] = self.metrics.get(key, 0) + value
                bar.update(1)
                if trainer.step % args.checkpoint_every == 0:
                    self.save_checkpoint()
                if not main:
                    continue
                if trainer.step % args.log_every == 0:
                    self._log(bar)
                if trainer.step % args.sample_every == 0:
                    self.save_samples()
                if self.evaluator is not None and trainer.step % args.eval_every == 0:
                    self.evaluate(bar)
                if self.step_hooks:
                    paused = time.perf_counter()
                    for hook in self.step_hooks:
                        hook(self)
                    spent = time.perf_counter() - paused
                    self.started, self.window_start = self.started + spent, self.window_start + spent
        finally:
            bar.close()  # also when a write fails: the error line then stands alone
        self.save_checkpoint()
        self.check_ranks_agree()
        if not main:
            return 0
        if self.steps_since_log:
            self._log(bar)
        if self.evaluator is not None and trainer.step % args.eval_every:
            self.evaluate(bar)  # the final state competes for --keep-best too
        self.save_samples()
        if self.best is None:
            self.export()
        else:  # the best state was exported when reached; model/ takes it, with the whole run's curves
            shutil.copytree(self.out / "best", self.out / "model", dirs_exist_ok=True)
            self.copy_history(self.out / "model")
            print(
                f"kept the best evaluated state (step {self.best['step']}, fd {self.best['fd']}) "
                f"in {self.out / 'model'}"
            )
        if self.stop_signal is not None:
            print(f"stopped by signal at step {trainer.step}; resume with: --out {self.out} --resume auto")
            return 128 + self.stop_signal
        return 0

    def _log(self, bar: tqdm) -> None:
        """Average the step statistics since the last line (one host sync), write and show them."""
        trainer, now = self.trainer, time.perf_counter()
        trainer.elapsed = now - self.started
        images_per_second = self.steps_since_log * self.args.batch_size / max(now - self.window_start, 1e-9)
        record = {
            "step": trainer.step,
            "epoch": round(trainer.step * self.args.batch_size / len(self.dataset), 4),
            **{k: round(v.item() / self.steps_since_log, 5) for k, v in self.metrics.items()},
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
                record,
                bar,
                "the discriminator wins outright (D(x) > 0.95, D(G(z)) < 0.05): the generator gets no signal",
            )
        self.last_record = record
        self._append(record)
        bar.set_postfix(
            loss_d=f"{record['loss_d']:.3f}",
            loss_g=f"{record['loss_g']:.3f}",
            D_x=f"{record['d_real']:.2f}",
            D_G_z=f"{record['d_fake']:.2f}",
            img_s=f"{images_per_second:.0f}",
            refresh=False,
        )

    def _append(self, record: dict) -> None:
        with open(self.out / METRICS_NAME, "a") as log:
            log.write(json.dumps(record) + "\n")

    def _alarm(self, record: dict, bar: tqdm, message: str) -> None:
        record.setdefault("alarms", []).append(message)
        bar.write(f"warning at step {self.trainer.step}: {message}")

    def evaluate(self, bar: tqdm) -> None:
        """Quick quality scores, logged as an `eval` line; with --keep-best, export each new best."""
        scores = self.evaluator(self.trainer.sampling_generator())
        self.last_eval = {**scores, "step": self.trainer.step, "num": self.args.eval_num}
        record = {"step": self.trainer.step, "eval": scores}
        if scores["diversity"] < 0.5:
            self._alarm(record, bar, f"samples are {scores['diversity']:.2f}x as varied as real images: mode collapse?")
        self._append(record)
        if self.args.keep_best and (self.best is None or scores["fd"] < self.best["fd"]):
            self.best = self.last_eval
            self.export(self.out / "best")

    def save_samples(self) -> Path:
        grid = grid_image(generate(self.trainer.sampling_generator(), self.fixed_latents), columns=8)
        path = self.out / "samples" / f"step_{self.trainer.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)
        records = read_metrics(self.out / METRICS_NAME)
        if records:
            plot_losses(records, self.out / LOSS_PLOT_NAME)
            plot_weight_norms(records, self.out / WEIGHTS_PLOT_NAME)
        return path

    def save_checkpoint(self) -> None:
        state = self.trainer.state_dict()  # collective under torchrun: every rank calls it
        if self.trainer.world.is_main:
            ckpt.save_training_state(ckpt.state_path(self.checkpoints, self.trainer.step), state)
            ckpt.prune_training_states(self.checkpoints, self.args.keep_last)

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
        trainer, args = self.trainer, self.args
        credit, licence = CREDITS[self.dataset.name]
        metadata = {
            "name": f"dcgan-{self.dataset.name}",
            "dataset": self.dataset.name,
            "dataset_credit": credit,
            "dataset_license": licence,
            "training": {
                "steps": trainer.step,
                "images_seen": trainer.step * args.batch_size,
                "train_images": len(self.dataset),
                "time_s": round(trainer.elapsed, 1),
                "device": describe_device(trainer.device),
                "precision": trainer.precision.name,
                "skipped_steps": trainer.skipped_steps,
                "world_size": trainer.world.size,
                "generator_digest": parameter_digest(trainer.generator),
                "torch": torch.__version__,
                "args": saved_args(args),
            },
            "final_metrics": {k: v for k, v in self.last_record.items() if not k.startswith("weight_norms")},
            "evaluation": self.last_eval,
        }
        discriminator = without_spectral_norm(trainer.discriminator) if args.spectral_norm else trainer.discriminator
        raw = trainer.generator if trainer.ema is not None else None
        generator = trainer.sampling_generator()
        folder = ckpt.export_model(folder or self.out / "model", generator, discriminator, metadata, raw)
        grid_image(generate(generator, self.fixed_latents), columns=8).save(folder / SAMPLE_GRID_NAME)
        self.copy_history(folder)
        return folder

    def copy_history(self, folder: Path) -> None:
        """The run's plots and metrics log, as they stand, into an export."""
        for name in (LOSS_PLOT_NAME, WEIGHTS_PLOT_NAME, METRICS_NAME):
            if (self.out / name).exists():
                shutil.copyfile(self.out / name, folder / name)


def make_evaluator(trainer: Trainer, dataset: ImageDataset) -> TrainingEvaluator | None:
    """The quick evaluator for --eval-every, where the dataset has an offline feature network."""
    args = trainer.args
    if args.eval_every <= 0 or dataset.name not in FEATURE_DATASETS:
        if args.keep_best:
            print(f"warning: no offline quality score exists for {dataset.name}; --keep-best keeps the last state")
        return None
    return TrainingEvaluator(DomainFeatures(dataset.name, trainer.device), dataset, args.eval_num)


def total_steps(args: argparse.Namespace, dataset_size: int) -> int:
    if args.steps is not None:
        return args.steps
    return max(1, math.ceil(args.epochs * math.ceil(dataset_size / args.batch_size)))


def _resume_state(args: argparse.Namespace, explicit: dict, out: Path, quiet: bool = False) -> dict | None:
    """Load the state to resume, and adopt its locked arguments (refusing explicit conflicts)."""
    if args.resume is None:
        return None
    if args.resume == "auto":
        states = ckpt.list_training_states(out / "checkpoints")
        if not states:
            if not quiet:
                print(f"no training state in {out / 'checkpoints'}; starting a new run")
            return None
        path, state = newest_readable_state(states, quiet)
    else:
        path = Path(args.resume)
        state = ckpt.load_training_state(path)
    saved = dict(state.get("args", {}))
    if saved.get("amp") == "auto":  # states of earlier versions, whose auto was bf16 everywhere
        saved["amp"] = "bf16"
    if explicit.get("amp") == "auto":  # auto on resume: the precision the run chose
        explicit = {k: v for k, v in explicit.items() if k != "amp"}
    elif "amp" in explicit and explicit["amp"] != saved.get("amp"):
        if not quiet:
            print(
                f"warning: --amp {explicit['amp']} replaces the resumed run's --amp {saved.get('amp')}: training goes "
                "on, but no longer bit for bit as the uninterrupted run would have"
            )
        saved["amp"] = explicit["amp"]
    for key in RESUME_LOCKED:
        if key in explicit and key in saved and explicit[key] != saved[key]:
            flag = "--" + key.replace("_", "-")
            raise GanError(
                f"{flag} {explicit[key]} differs from the resumed run's {saved[key]}; drop {flag} or use a new --out"
            )
        if key in saved:
            setattr(args, key, saved[key])
    if not quiet:
        print(f"resuming from {path} (step {state['step']})")
    return state


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


def truncate_metrics(path: Path, step: int) -> int:
    """Cut the metrics log back to the lines up to `step` (the state a run resumes from), so that no step appears
    twice, dropping torn lines; returns how many lines went."""
    if not path.is_file():
        return 0
    lines = path.read_text(errors="replace").splitlines()
    kept = [
        line
        for line, record in zip(lines, parse_metrics(lines), strict=True)
        if record is not None and record.get("step", 0) <= step
    ]
    if len(kept) < len(lines):
        ckpt.atomic_write(path, lambda p: Path(p).write_text("".join(line + "\n" for line in kept)))
    return len(lines) - len(kept)


def claim_run_folder(out: Path) -> int:
    """Check that --out can be written (before any data is loaded), lock it for this process, and remove the
    half-written files a killed run left there. Returns the lock's file descriptor, held until it is closed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise GanError(f"--out {out} cannot be written ({error.strerror}): choose a folder you can write to") from None
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
        raise GanError(f"--out {out} cannot be written ({error.strerror}): choose a folder you can write to") from None
    removed = [
        p for folder in (out, out / "checkpoints", out / "model", out / "best") for p in ckpt.remove_temporaries(folder)
    ]
    if removed:
        print(f"removed {len(removed)} half-written file(s) left in {out} by an interrupted run")
    return lock


def storage_failure(error: OSError, out: Path) -> str:
    """One line for a write that failed for lack of space (or a read-only or failing disk) during a run."""
    where = f" {error.filename}" if error.filename else f" to {out}"
    states = ckpt.list_training_states(out / "checkpoints")
    kept = f"the last good training state is {states[-1]}" if states else "no training state was saved yet"
    return (
        f"could not write{where} ({error.strerror or error}); {kept}: free some space, then continue with "
        f"--out {out} --resume auto"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    explicit = vars(build_parser(suppress_defaults=True).parse_args(argv))
    world = World()
    lock = None
    out = Path(args.out or f"runs/{args.dataset}")
    try:
        for flag in ("batch_size", "log_every", "sample_every", "checkpoint_every"):
            if getattr(args, flag) < 1:
                raise GanError(f"--{flag.replace('_', '-')} must be at least 1")
        try:  # before any data loads; 3 channels, the most a dataset has
            ModelConfig(args.nz, args.ngf, args.ndf, 3, args.image_size)
        except ValueError as error:
            raise GanError(f"--nz/--ngf/--ndf do not make a model this project trains: {error}") from None
        if not 0 <= args.lr_decay <= 1:
            raise GanError(
                f"--lr-decay {args.lr_decay} is not a fraction of the run: "
                "give a value from 0 (off) to 1 (the whole run)"
            )
        publish.check_push_arguments(args)  # a missing token or repo id fails now, not after training
        device = resolve_device(args.device)
        world = init_world(device.type)
        if world.distributed:
            if args.batch_size % world.size:
                raise GanError(
                    f"--batch-size {args.batch_size} (the global batch) must be divisible by the {world.size} processes"
                )
            if device.type == "cuda":
                device = torch.device("cuda", world.local_rank)
        if world.is_main:
            lock = claim_run_folder(out)
        state = _resume_state(args, explicit, out, quiet=not world.is_main)
        if state is not None and world.is_main and (cut := truncate_metrics(out / METRICS_NAME, state["step"])):
            print(f"{METRICS_NAME}: {cut} line(s) after step {state['step']} (the state resumed) removed")
        dataset = load_dataset(args.dataset, args.data_dir, args.image_size, not args.no_download, args.channels)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        trainer = Trainer(args, dataset, device, world)
        if state is not None:
            trainer.load_state_dict(state)
        steps = total_steps(args, len(dataset))
        if state is not None and args.lr_decay > 0 and world.is_main:
            planned = total_steps(argparse.Namespace(**{**vars(args), **state["args"]}), len(dataset))
            if planned != steps:
                print(
                    f"note: the run was planned for {planned} steps, now {steps}: the learning-rate decay is re-planned"
                )
        run = Run(trainer, dataset, out, steps)
        if world.is_main:
            processes = f" x {world.size} processes" if world.distributed else ""
            print(
                f"training a {args.image_size}x{args.image_size} DCGAN on {dataset.name} "
                f"({len(dataset)} images from {dataset.source}) "
                f"for {steps} steps on {describe_device(device)}{processes}, "
                f"{trainer.precision.reason}, {args.recipe} recipe; "
                f"run folder {out}"
            )
            if trainer.precision.warning:
                print(f"warning: {trainer.precision.warning}", file=sys.stderr)
            if (push_hook := publish.scheduled_push(args)) is not None:
                run.step_hooks.append(push_hook)
        code = run.run()
        if not world.is_main:
            return code
        print(f"exported the model to {out / 'model'}; try: python app.py --checkpoint {out / 'model'}")
        if args.push_to_hub and code == 0:
            publish.push_trained(args, out)  # a HubError below says where the results are; nothing is deleted
        elif args.push_to_hub:
            print(
                f"not pushed (training was stopped); push the export with: "
                f"python -m gan push {out / 'model'} --hub-model-id {args.hub_model_id}"
            )
        return code
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        print(f"\nerror: {storage_failure(error, out)}", file=sys.stderr)
        return 2
    finally:
        if lock is not None:
            os.close(lock)
        world.close()
