"""Which precision a run trains in, chosen for the machine at hand, and how to name that machine.

On CUDA, `--amp auto` is bf16 autocast where the GPU supports it (fp16 with loss scaling otherwise). On a CPU,
bf16 autocast is only fast with native bf16 instructions (AVX512-BF16 or AMX): without them it is emulated, many
times slower than fp32 (docs/speed.md has the figures per machine). So `--amp auto` on a CPU without native bf16 is
fp32, decided from the CPU's flags without running anything; with native bf16 a short, time-capped probe times a few
fp32 and bf16 steps of the run's own networks (copies, under a forked RNG, so the run itself is unchanged) and
bf16 is taken only where it is faster. The verdict is cached per CPU, torch version, thread count and network
shape in the project's cache folder, so the probe runs once per machine and model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from .files import atomic_write, cache_dir
from .losses import LOSSES

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# /proc/cpuinfo flags worth naming next to a measured figure, in this order
VECTOR_EXTENSIONS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
BF16_MIN_SPEEDUP = 1.1  # bf16 must beat fp32 by this factor: a tie is not worth its rounding
PROBE_STEPS = 3  # timed steps per precision, after one warm-up step each
PROBE_SLOWDOWN_CAP = 4.0  # a bf16 warm-up step this many times slower than fp32's steps ends the probe at once
PROBE_CACHE_NAME = "precision.json"


@dataclass(frozen=True)
class Precision:
    """A run's autocast dtype (None = fp32) and why it was chosen, in words for the run's first line."""

    dtype: torch.dtype | None
    reason: str
    warning: str | None = None  # said once, e.g. bf16 asked for on a CPU that emulates it

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def amp(self) -> str:
        """The --amp value that gives this precision again (what a checkpoint records)."""
        return "off" if self.dtype is None else self.name


@dataclass(frozen=True)
class Cpu:
    model: str
    flags: frozenset[str]
    family: str = ""  # x86 "cpu family": tells apart CPUs that virtual machines all name "AMD EPYC"

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def describe(self) -> str:
        """e.g. 'AMD EPYC family 25 (AVX2)' or 'Intel Xeon Platinum 8481C family 6 (AVX2, AVX-512, AVX512-BF16,
        AMX-BF16)'."""
        extensions = [label for flag, label in VECTOR_EXTENSIONS.items() if flag in self.flags]
        family = f" family {self.family}" if self.family else ""
        return f"{self.model}{family} ({', '.join(extensions) or ('no AVX2' if self.flags else 'flags unknown')})"


@lru_cache(maxsize=1)
def this_cpu() -> Cpu:
    """The CPU's model name and feature flags, from /proc/cpuinfo (Linux); elsewhere no flags are known."""
    model, family, flags = "", "", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = " ".join(value.split())
        elif key == "cpu family" and not family:
            family = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return Cpu(model or platform.processor() or platform.machine() or "unknown CPU", flags, family)


def describe_device(device: torch.device | str = "cpu") -> str:
    """The machine a figure was measured on: the GPU's name, or the CPU with its vector extensions and threads."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU {this_cpu().describe()}, {threads} thread{'s' if threads != 1 else ''}"


def choose_precision(
    requested: str,
    device: torch.device,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    batch_size: int,
    probe=None,
) -> Precision:
    """The precision for `--amp requested` on `device`. `probe(generator, discriminator, batch_size)` returns the
    bf16/fp32 step-time ratio (default: `bf16_slowdown`, cached); tests inject their own."""
    if requested not in ("auto", *AMP_DTYPES):
        raise ValueError(f"unknown --amp {requested!r}")
    if device.type == "cuda":
        if requested != "auto":
            return _explicit(requested)
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, "bf16 autocast: supported by this GPU")
        return Precision(torch.float16, "fp16 autocast with loss scaling: this GPU has no bf16")
    cpu = this_cpu()
    if requested != "auto":
        emulated = requested == "bf16" and not cpu.native_bf16
        return replace(
            _explicit(requested),
            warning=f"--amp bf16 on a CPU without native bf16 ({cpu.describe()}): bf16 "
            "is emulated here and can be many times slower than --amp off"
            if emulated
            else None,
        )
    if not cpu.native_bf16:
        return Precision(None, f"fp32: this CPU has no native bf16 ({cpu.describe()})")
    ratio = (probe or cached_bf16_slowdown)(generator, discriminator, batch_size)
    if ratio * BF16_MIN_SPEEDUP <= 1:
        return Precision(
            torch.bfloat16, f"bf16 autocast: measured {1 / ratio:.1f}x faster than fp32 on this CPU ({cpu.describe()})"
        )
    verdict = f"{ratio:.1f}x slower" if ratio >= 1 else f"only {1 / ratio:.2f}x faster"
    return Precision(None, f"fp32: bf16 measured {verdict} on this CPU ({cpu.describe()})")


def _explicit(requested: str) -> Precision:
    dtype = AMP_DTYPES[requested]
    return Precision(dtype, f"{'fp32' if dtype is None else requested + ' autocast'} (--amp {requested})")


def _probe_step(
    generator: torch.nn.Module, discriminator: torch.nn.Module, batch_size: int, dtype: torch.dtype | None
) -> float:
    """Seconds for one training-shaped step: D on real and fake, then G through D, both backwards."""
    config = generator.config
    started = time.perf_counter()
    loss = LOSSES["bce"]
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        real = torch.rand(batch_size, config.nc, config.image_size, config.image_size) * 2 - 1
        fake = generator(torch.randn(batch_size, config.nz))
        loss_d = loss.discriminator(discriminator(real).float(), discriminator(fake.detach()).float())
    loss_d.backward()
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss_g = loss.generator(discriminator(fake).float())
    loss_g.backward()
    return time.perf_counter() - started


def bf16_slowdown(
    generator: torch.nn.Module, discriminator: torch.nn.Module, batch_size: int, steps: int = PROBE_STEPS
) -> float:
    """Median bf16 step time over median fp32 step time, for copies of the networks in training mode. Runs under a
    forked RNG and touches neither the networks nor any RNG a run uses. A bf16 warm-up step PROBE_SLOWDOWN_CAP
    times slower than fp32 ends it early (an emulated bf16 step of a full-size model is that slow)."""
    generator, discriminator = copy.deepcopy(generator).train(), copy.deepcopy(discriminator).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _probe_step(generator, discriminator, batch_size, None)  # warm-up
        fp32 = sorted(_probe_step(generator, discriminator, batch_size, None) for _ in range(steps))[steps // 2]
        warm_up = _probe_step(generator, discriminator, batch_size, torch.bfloat16)
        if warm_up > PROBE_SLOWDOWN_CAP * fp32:
            return warm_up / fp32
        bf16 = sorted(_probe_step(generator, discriminator, batch_size, torch.bfloat16) for _ in range(steps))[
            steps // 2
        ]
    return bf16 / fp32


def probe_cache_path() -> Path:
    return cache_dir() / PROBE_CACHE_NAME


def probe_key(generator: torch.nn.Module, discriminator: torch.nn.Module, batch_size: int) -> str:
    """What the verdict depends on: the CPU's flags, torch's version, the thread count and the networks' shapes."""
    cpu = this_cpu()
    shapes = [tuple(p.shape) for p in (*generator.parameters(), *discriminator.parameters())]
    parts = [
        cpu.model,
        " ".join(sorted(cpu.flags)),
        torch.__version__,
        str(torch.get_num_threads()),
        str(shapes),
        str(batch_size),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def cached_bf16_slowdown(generator: torch.nn.Module, discriminator: torch.nn.Module, batch_size: int) -> float:
    """`bf16_slowdown`, measured once per key and kept in the cache folder (an unreadable cache is measured again)."""
    path, key = probe_cache_path(), probe_key(generator, discriminator, batch_size)
    try:
        verdicts = json.loads(path.read_text())
    except (OSError, ValueError):
        verdicts = {}
    verdicts = verdicts if isinstance(verdicts, dict) else {}
    try:
        ratio = float(verdicts[key]["bf16_over_fp32"])
        if ratio > 0:
            return ratio
    except (KeyError, TypeError, ValueError):
        pass
    ratio = bf16_slowdown(generator, discriminator, batch_size)
    verdicts[key] = {
        "bf16_over_fp32": round(ratio, 4),
        "cpu": this_cpu().describe(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "measured": time.strftime("%Y-%m-%d"),
    }
    try:
        atomic_write(path, lambda p: Path(p).write_text(json.dumps(verdicts, indent=1) + "\n"))
    except OSError:  # a read-only cache: the verdict is measured again next time
        pass
    return ratio
