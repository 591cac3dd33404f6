"""Training speed: the classic DCGAN loop vs this project's trainer, same model, batch and device, one run.

(a) classic: torchvision dataset + DataLoader (ToTensor/Normalize per sample), fp32, eager, `.item()` every
    step, as pytorch/examples' dcgan/main.py does it;
(b) project: the in-memory uint8 dataset with seeded index draws, channels_last, the default precision (--amp auto:
    bf16 on CUDA; on a CPU bf16 only where it is measured faster, see gan/precision.py), fused Adam on CUDA, host syncs
    only when logging; optionally torch.compile.
Prints images/second for each, the ratio, and achieved TFLOP/s from a FLOP count of one training step.

    .venv/bin/python bench/train_speed.py                      # CPU, Fashion-MNIST-shaped data (1x32x32)
    python bench/train_speed.py --device cuda --image-size 64 --channels 3 --batch-size 256 --compile
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from gan.data import ImageDataset
from gan.models import Discriminator, Generator, ModelConfig
from gan.precision import describe_device
from gan.training.settings import RunSettings
from gan.training.trainer import Trainer

BF16_DENSE_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # SXM dense bf16


def synthetic_dataset(count: int, channels: int, size: int) -> ImageDataset:
    """CIFAR-10/Fashion-MNIST-shaped uint8 data (the real sets cannot be downloaded on a lent GPU)."""
    images = torch.randint(
        0, 256, (count, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return ImageDataset(images, "synthetic", "random uint8")


def classic_loop(dataset: ImageDataset, config: ModelConfig, batch: int, steps: int, device: torch.device) -> float:
    """pytorch/examples-style loop; returns images/second over `steps` timed steps after 3 warm-up steps."""
    float_images = dataset.images.float().div(127.5).sub(1)  # what ToTensor + Normalize(0.5, 0.5) produce per sample
    loader = DataLoader(
        TensorDataset(float_images),
        batch_size=batch,
        shuffle=True,
        num_workers=2 if device.type == "cuda" else 0,
        drop_last=True,
        pin_memory=device.type == "cuda",
    )
    generator, discriminator = Generator(config).to(device), Discriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), 2e-4, betas=(0.5, 0.999))
    done, start = 0, None
    while done < steps + 3:
        for (real,) in loader:
            if done == 3:
                _sync(device)
                start = time.perf_counter()
            real = real.to(device)
            z = torch.randn(batch, config.nz, 1, 1, device=device)
            fake = generator(z)
            loss_d = F.binary_cross_entropy_with_logits(
                discriminator(real), torch.ones(batch, device=device)
            ) + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), torch.zeros(batch, device=device))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.binary_cross_entropy_with_logits(discriminator(fake), torch.ones(batch, device=device))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            loss_d.item(), loss_g.item()  # the classic loop logs every step
            done += 1
            if done == steps + 3:
                break
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def project_loop(
    dataset: ImageDataset, settings: RunSettings, steps: int, device: torch.device, compile_models: bool
) -> tuple[float, Trainer]:
    trainer = Trainer(settings, dataset, device)
    if compile_models:
        trainer.generator.compile()
        trainer.discriminator.compile()
    for _ in range(3 if not compile_models else 10):
        trainer.train_step(trainer.next_batch())
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        stats = trainer.train_step(trainer.next_batch())
    stats["loss_d"].item()
    _sync(device)
    return steps * settings.batch_size / (time.perf_counter() - start), trainer


def flops_per_step(trainer: Trainer) -> int:
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(trainer.next_batch())
    return counter.get_total_flops()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--recipe", default="classic", help="the project trainer's recipe (classic = same maths as (a))"
    )
    parser.add_argument("--amp", default="auto")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd G and D")
    options = parser.parse_args()
    device = torch.device(options.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dataset = synthetic_dataset(50_000 if device.type == "cuda" else 10_000, options.channels, options.image_size)
    config = ModelConfig(100, options.width, options.width, options.channels, options.image_size)
    settings = RunSettings(
        recipe=options.recipe,
        amp=options.amp,
        batch_size=options.batch_size,
        ngf=options.width,
        ndf=options.width,
        image_size=options.image_size,
        eval_every=0,
    )
    results = {
        "device": describe_device(device),
        "image": f"{options.channels}x{options.image_size}x{options.image_size}",
        "batch": options.batch_size,
        "width": options.width,
        "recipe": options.recipe,
        "amp": options.amp,
        "torch": torch.__version__,
    }
    results["classic_img_s"] = round(classic_loop(dataset, config, options.batch_size, options.steps, device), 1)
    fast, trainer = project_loop(dataset, settings, options.steps, device, compile_models=False)
    results["project_img_s"] = round(fast, 1)
    results["project_precision"] = trainer.precision.reason
    flops = flops_per_step(trainer)
    results["gflop_per_step"] = round(flops / 1e9, 2)
    results["project_tflop_s"] = round(flops * fast / options.batch_size / 1e12, 3)
    if options.compile:
        results["project_compiled_img_s"] = round(
            project_loop(dataset, settings, options.steps, device, compile_models=True)[0], 1
        )
    results["speedup"] = round(
        max(results["project_img_s"], results.get("project_compiled_img_s", 0)) / results["classic_img_s"], 2
    )
    peak = next((v for k, v in BF16_DENSE_PEAK_TFLOPS.items() if k in results["device"]), None)
    if peak:
        best = max(results["project_img_s"], results.get("project_compiled_img_s", 0))
        results["fraction_of_bf16_peak"] = round(flops * best / options.batch_size / 1e12 / peak, 4)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
