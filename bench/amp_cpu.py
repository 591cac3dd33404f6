"""Choose the CPU training precision: fp32 vs bf16 autocast, same seed and steps, on real Fashion-MNIST.

Prints speed (ms per training step) and a sample-quality proxy for each: the Frechet distance
between 5000 generated and 5000 real images in raw pixel space (1024-d). Pixel FD is crude, but
it compares two runs of one recipe fairly. Then what `--amp auto` chooses on this machine, and why. Every figure
belongs to the CPU named in the first line. Run on an idle machine:

    .venv/bin/python bench/amp_cpu.py --steps 600
"""

from __future__ import annotations

import argparse
import time

import torch

from gan.data import load_dataset
from gan.images import uint8_to_model_input
from gan.metrics import frechet_distance
from gan.precision import choose_precision, describe_device
from gan.sampling import generate, latents_for_seeds
from gan.training.settings import RunSettings
from gan.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--num", type=int, default=5000)
    options = parser.parse_args()
    print(f"machine: {describe_device('cpu')}; torch {torch.__version__}")
    dataset = load_dataset("fashion-mnist", download=False)
    real = uint8_to_model_input(
        dataset.images[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[: options.num]]
    )
    medians = {}
    for amp in ("off", "bf16"):
        settings = RunSettings(amp=amp, seed=0)
        trainer = Trainer(settings, dataset, torch.device("cpu"))
        times = []
        for _ in range(options.steps):
            start = time.perf_counter()
            trainer.train_step(trainer.next_batch())
            times.append(time.perf_counter() - start)
        fake = uint8_to_model_input(generate(trainer.generator, latents_for_seeds(10_000, options.num, settings.nz)))
        distance = frechet_distance(fake.flatten(1), real.flatten(1))
        medians[amp] = median_ms = sorted(times)[len(times) // 2] * 1000
        print(
            f"amp={amp:5s} {median_ms:6.0f} ms/step (median of {options.steps})  "
            f"pixel-FD after {options.steps} steps: {distance:.2f}"
        )
    print(f"bf16 / fp32 step time: {medians['bf16'] / medians['off']:.2f}")
    auto = choose_precision("auto", torch.device("cpu"), trainer.generator, trainer.discriminator, settings.batch_size)
    print(f"--amp auto here: {auto.reason}")


if __name__ == "__main__":
    main()
