"""Classic DCGAN vs the default recipe at an equal wall-clock training budget, on real Fashion-MNIST.

Each variant trains for the same number of seconds on this machine (same batch, widths, image size and
precision), then the project's evaluator scores 10k samples against 10k training images in the domain
feature space, next to the real-vs-real reference (10k test images). Run it on an otherwise idle machine:

    .venv/bin/python bench/quality.py --seconds 600
    .venv/bin/python bench/quality.py --seconds 120 --variant classic --variant "studio --diffaugment none"
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan.data import load_dataset  # noqa: E402
from gan.evaluation import evaluate_generator  # noqa: E402
from gan.features import DomainFeatures  # noqa: E402
from gan.training import Trainer, parse_args  # noqa: E402


def train_for(variant: str, seconds: float, dataset) -> tuple[Trainer, int]:
    recipe, *flags = shlex.split(variant)
    trainer = Trainer(parse_args(["--recipe", recipe, *flags]), dataset, torch.device("cpu"))
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step(trainer.next_batch())
        trainer.step += 1
    return trainer, trainer.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="training budget per variant")
    parser.add_argument("--num", type=int, default=10_000, help="samples and real images per evaluation")
    parser.add_argument("--variant", action="append", help="recipe name plus train.py flags (default: classic, studio)")
    options = parser.parse_args()
    variants = options.variant or ["classic", "studio"]
    train = load_dataset("fashion-mnist", download=False)
    test = load_dataset("fashion-mnist", download=False, split="test")
    features = DomainFeatures("fashion-mnist")
    rows = []
    for variant in variants:
        trainer, steps = train_for(variant, options.seconds, train)
        scores = evaluate_generator(trainer.sampling_generator(), features, train, options.num, test)
        rows.append({"variant": variant, "steps": steps, **scores})
        print(json.dumps(rows[-1]), flush=True)
    reference = rows[0]["real_vs_real"]
    print(f"\n{options.seconds:.0f} s of training each on {torch.get_num_threads()} CPU threads, {options.num} samples, "
          f"Fashion-MNIST domain features")
    print(f"{'variant':40s} {'steps':>6s} {'FD':>8s} {'KID':>8s} {'precision':>10s} {'recall':>8s} {'FD/classic':>11s}")
    for row in rows:
        print(f"{row['variant']:40s} {row['steps']:6d} {row['fd']:8.2f} {row['kid']:8.4f} {row['precision']:10.3f} "
              f"{row['recall']:8.3f} {row['fd'] / rows[0]['fd']:11.2f}")
    print(f"{'real vs real (test images)':40s} {'':6s} {reference['fd']:8.2f} {reference['kid']:8.4f} "
          f"{reference['precision']:10.3f} {reference['recall']:8.3f}")


if __name__ == "__main__":
    main()
