"""Classic DCGAN vs the default recipe at an equal wall-clock training budget, on real Fashion-MNIST.

Every variant trains for the same number of seconds (same batch, widths, image size and precision). Variants
run side by side, each on its own core with one thread, so they share the machine alike (waves of as many
variants as there are cores). At each time in --at and at the end, the training clock stops while the project's
evaluator scores --num samples against --num training images in the domain feature space; the real-vs-real
reference (test images) is printed under the table. Learning-rate decay (--lr-decay) is planned over the
--seconds budget, so scores at earlier --at times are snapshots of a run not yet at its end. Run it on an
otherwise idle machine:

    .venv/bin/python bench/quality.py --seconds 1500 --at 420,900 --plot docs/quality.png
    .venv/bin/python bench/quality.py --seconds 420 --variant classic --variant "studio --lr-g 4e-4"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import torch

from gan.data import load_dataset
from gan.evaluation import evaluate_generator
from gan.features import DomainFeatures
from gan.training.settings import parse_flags
from gan.training.trainer import Trainer


def train_and_evaluate(variant: str, times: list[float], num: int) -> None:
    """Train one variant, printing one JSON line of scores at each training time in `times`."""
    train = load_dataset("fashion-mnist", download=False)
    test = load_dataset("fashion-mnist", download=False, split="test")
    features = DomainFeatures("fashion-mnist")
    recipe, *flags = shlex.split(variant)
    settings, _ = parse_flags(["--recipe", recipe, *flags])
    trainer = Trainer(settings, train, torch.device("cpu"))
    trained = 0.0
    for until in times:
        while trained < until:
            start = time.perf_counter()
            trainer.advance(trained / times[-1])  # the budget is the last time
            trained += time.perf_counter() - start
        generators = {variant: trainer.sampling_generator()}
        if trainer.ema is not None:  # the live generator too: what EMA adds at equal steps
            generators[f"{variant} [live G]"] = trainer.generator
        for label, generator in generators.items():
            scores = evaluate_generator(generator, features, train, num, test)
            print(json.dumps({"variant": label, "seconds": until, "steps": trainer.step, **scores}), flush=True)


def run_side_by_side(variants: list[str], times: list[float], num: int) -> list[dict]:
    """One child process per variant, pinned to its own core with one thread; waves of len(cores) variants."""
    cores = sorted(os.sched_getaffinity(0))
    rows = []
    for first in range(0, len(variants), len(cores)):
        children = []
        for core, variant in zip(cores, variants[first : first + len(cores)], strict=True):
            command = [
                sys.executable,
                __file__,
                "--worker",
                variant,
                "--at",
                ",".join(map(str, times)),
                "--num",
                str(num),
            ]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            children.append(
                subprocess.Popen(["taskset", "-c", str(core), *command], stdout=subprocess.PIPE, text=True, env=env)
            )
        for child in children:
            for line in child.stdout:
                rows.append(json.loads(line))
                print(line, end="", flush=True)
            if child.wait() != 0:
                sys.exit(f"a variant failed (exit {child.returncode})")
    return rows


def print_table(rows: list[dict], variants: list[str], num: int) -> None:
    classic = {row["seconds"]: row["fd"] for row in rows if row["variant"] == variants[0]}
    labels = list(dict.fromkeys(row["variant"] for row in rows))
    print(f"\n{num} samples, Fashion-MNIST domain features, one thread per variant, variants side by side")
    print(
        f"{'variant':44s} {'seconds':>7s} {'steps':>6s} {'FD':>8s} {'KID':>8s} {'precision':>9s} {'recall':>7s} "
        f"{'FD/' + variants[0][:12]:>16s}"
    )
    for row in sorted(rows, key=lambda r: (r["seconds"], labels.index(r["variant"]))):
        print(
            f"{row['variant']:44s} {row['seconds']:7.0f} {row['steps']:6d} {row['fd']:8.2f} {row['kid']:8.4f} "
            f"{row['precision']:9.3f} {row['recall']:7.3f} {row['fd'] / classic[row['seconds']]:16.2f}"
        )
    reference = rows[0]["real_vs_real"]
    print(
        f"{'real vs real (test images)':44s} {'':7s} {'':6s} {reference['fd']:8.2f} {reference['kid']:8.4f} "
        f"{reference['precision']:9.3f} {reference['recall']:7.3f}"
    )


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seconds"])
        minutes = [r["seconds"] / 60 for r in mine]
        for axis, key in zip(axes, ("fd", "precision", "recall"), strict=True):
            axis.plot(minutes, [r[key] for r in mine], marker="o", label=variant)
    reference = rows[0]["real_vs_real"]
    for axis, key, title in zip(
        axes, ("fd", "precision", "recall"), ("Frechet distance (lower is better)", "precision", "recall"), strict=True
    ):
        axis.axhline(reference[key], color="gray", linestyle=":", label="real vs real")
        if key != "fd":
            axis.axhline(0.8 * reference[key], color="red", linestyle="--", label="target: 0.8x real vs real")
        axis.set_title(title)
        axis.set_xlabel("training minutes (one CPU core)")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[1].legend(handles=axes[1].get_lines()[-1:], fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="training budget per variant")
    parser.add_argument("--at", default="", help="comma-separated earlier training times (s) to evaluate at too")
    parser.add_argument("--num", type=int, default=10_000, help="samples and real images per evaluation")
    parser.add_argument("--variant", action="append", help="recipe name plus train.py flags (default: classic, studio)")
    parser.add_argument("--plot", default=None, help="write FD/precision/recall against training time to this PNG")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    times = sorted(
        {float(t) for t in options.at.split(",") if t} | ({options.seconds} if not options.worker else set())
    )
    if options.worker:
        torch.set_num_threads(1)
        train_and_evaluate(options.worker, times, options.num)
        return
    variants = options.variant or ["classic", "studio"]
    rows = run_side_by_side(variants, times, options.num)
    print_table(rows, variants, options.num)
    if options.plot:
        plot(rows, options.plot)


if __name__ == "__main__":
    main()
