"""The trainer: both networks, their optimizers and every RNG of a run, one step at a time."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch

from .. import checkpoint as ckpt
from ..augment import diff_augment, parse_policy
from ..data import ImageDataset
from ..distributed import World
from ..errors import CheckpointError
from ..images import uint8_to_model_input
from ..losses import LOSSES, r1_penalty
from ..models import Discriminator, Generator, ModelConfig, add_spectral_norm
from ..precision import choose_precision
from .settings import RunSettings

EMA_RAMPUP = 0.05  # the EMA half-life is at most this fraction of the steps so far


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


def plan_fraction(step: int, training_s: float, total_steps: int | None, seconds: float | None) -> float:
    """How far through its plan a run is: by steps, or by the time budget (--seconds) where that comes first."""
    by_steps = step / total_steps if total_steps else 0.0
    by_time = training_s / seconds if seconds else 0.0
    return min(1.0, max(by_steps, by_time))


def lr_scale(fraction_done: float, decay: float) -> float:
    """The learning rates' share of --lr-g/--lr-d at `fraction_done`: 1, then linear to 0 over the last `decay`."""
    return max(0.0, min(1.0, (1.0 - fraction_done) / decay)) if decay > 0 else 1.0


class Trainer:
    """Owns both networks, their optimizers and every RNG of a run; one `train_step` per generator update.

    `settings` is the run's, with --amp the precision chosen (never `auto`): checkpoints record it, so a resumed run
    keeps it."""

    def __init__(self, settings: RunSettings, dataset: ImageDataset, device: torch.device, world: World | None = None):
        world = world or World()
        self.device = device
        self.world = world
        self.batch_size = settings.batch_size // world.size  # --batch-size is the global batch
        self.loss = LOSSES[settings.loss]
        d_norm = "none" if settings.spectral_norm else "batch"
        self.config = ModelConfig(
            settings.nz, settings.ngf, settings.ndf, dataset.channels, settings.image_size, d_norm
        )
        self._build_networks(settings)
        self.policy = parse_policy("" if settings.diffaugment == "none" else settings.diffaugment)
        fused = {"fused": True} if device.type == "cuda" else {}
        betas = (settings.beta1, settings.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), settings.lr_g, betas=betas, **fused)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), settings.lr_d, betas=betas, **fused)
        precision = choose_precision(settings.amp, device, self.generator, self.discriminator, self.batch_size)
        self.precision = world.gather(precision)[0]  # under torchrun, rank 0's verdict for every rank
        self.settings = replace(settings, amp=self.precision.amp)
        self.scaler = torch.amp.GradScaler(device.type) if self.precision.dtype == torch.float16 else None
        self.images = dataset.images[world.rank :: world.size].to(device)  # this rank's shard
        self.data_rng = torch.Generator(device).manual_seed(settings.seed + 1 + 1000 * world.rank)
        self.noise_rng = torch.Generator(device).manual_seed(settings.seed + 2 + 1000 * world.rank)
        self.step = 0
        self.skipped_steps = 0
        self.elapsed = 0.0

    def _build_networks(self, settings: RunSettings) -> None:
        """G and D (the same initial weights on every rank), their training forms and the EMA copy of G."""
        torch.manual_seed(settings.seed)
        self.generator = Generator(self.config).to(self.device, memory_format=torch.channels_last)
        self.discriminator = Discriminator(self.config)
        if settings.spectral_norm:
            add_spectral_norm(self.discriminator)
        self.discriminator.to(self.device, memory_format=torch.channels_last)
        if self.world.distributed:  # then each rank its own augmentation draws
            torch.manual_seed(settings.seed + 1000 * self.world.rank)
        # the modules that train: DDP wrappers under torchrun, optionally compiled; sampling and
        # export use the plain modules (or the EMA copy), so the compiled ones never switch mode
        self.g_train = self.world.wrap(self.generator, self.device)
        self.d_train = self.world.wrap(self.discriminator, self.device)
        if settings.compile:
            self.g_train, self.d_train = torch.compile(self.g_train), torch.compile(self.d_train)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False) if settings.ema > 0 else None
        self.ema_calibrated_at: int | None = None  # the step whose EMA weights the BatchNorm statistics fit

    # -- one step -------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        index = torch.randint(self.images.shape[0], (self.batch_size,), generator=self.data_rng, device=self.device)
        return uint8_to_model_input(self.images[index]).contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        dtype = self.precision.dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def _update(
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

    def set_learning_rates(self, fraction_done: float) -> None:
        """Both learning rates for a run `fraction_done`: constant, then (--lr-decay) linear to 0 at the end."""
        scale = lr_scale(fraction_done, self.settings.lr_decay)
        for optimizer, lr in ((self.opt_g, self.settings.lr_g), (self.opt_d, self.settings.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = lr * scale

    def advance(self, fraction_done: float) -> dict[str, torch.Tensor]:
        """One step of a run `fraction_done`: its learning rates, a fresh batch, the update, the step count."""
        self.set_learning_rates(fraction_done)
        stats = self.train_step(self.next_batch())
        self.step += 1
        return stats

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator update on real + fake, then one generator update."""
        settings = self.settings
        d_buffers = [b.clone() for b in self.discriminator.buffers()]
        g_buffers = [b.clone() for b in self.generator.buffers()]
        z = torch.randn(real.shape[0], self.config.nz, generator=self.noise_rng, device=self.device)
        r1_step = settings.r1 > 0 and self.step % settings.r1_every == 0
        real.requires_grad_(r1_step)
        with self._autocast():
            fake = self.g_train(z)
            logits_real = self._d_logits(real)
            logits_fake = self._d_logits(fake.detach())
            loss_d = self.loss.discriminator(logits_real, logits_fake)
        if r1_step:
            loss_d = loss_d + r1_penalty(logits_real, real, settings.r1, settings.r1_every)
        self._update(loss_d, self.discriminator, self.opt_d, d_buffers)
        with self._autocast():
            loss_g = self.loss.generator(self._d_logits(fake))
        self._update(loss_g, self.generator, self.opt_g, g_buffers)
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
        half_life = min(math.log(0.5) / math.log(self.settings.ema), EMA_RAMPUP * self.step)
        decay = 0.5 ** (1 / half_life) if half_life > 0 else 0.0
        for averaged, live in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            averaged.lerp_(live, 1 - decay)

    def sampling_generator(self) -> Generator:
        """The generator to sample and export: the EMA copy, with BatchNorm statistics measured for its own
        weights (the live generator's running statistics belong to other weights), or the live one."""
        if self.ema is None:
            return copy.deepcopy(self.generator) if self.settings.compile else self.generator
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
            "args": self.settings.to_record(),
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self._load_weights(state)
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

    def _load_weights(self, state: dict) -> None:
        """Both networks, the EMA copy, both optimizers and the loss scaler."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
            self.ema_calibrated_at = None
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
