"""Classic DCGAN vs the default recipe at an equal wall-clock training budget, on real Fashion-MNIST or Noto emoji.

Every variant trains for the same number of seconds (same batch, widths, image size and precision; --flags adds
train.py flags to every variant). Variants run side by side, each on its own core with one thread, so they share the
machine alike (waves of as many variants as there are cores); --seeds repeats each variant with train.py's --seed.
At each time in --at and at the end, the training clock stops while the project's evaluator scores samples in the
dataset's offline feature space (gan/evaluation.py: against the training images, with the test images as the
real-vs-real floor; for a set without a test split, against one half of it by groups, the other half as the floor).
Learning-rate decay (--lr-decay) is planned over the --seconds budget, so scores at earlier --at times are snapshots
of a run not yet at its end. Run it on an otherwise idle machine:

    .venv/bin/python bench/quality.py --seconds 1500 --at 420,900 --plot docs/quality.png
    .venv/bin/python bench/quality.py --seconds 420 --variant classic --variant "studio --lr-g 4e-4"
    .venv/bin/python bench/quality.py --dataset noto-emoji --flags "--ngf 32 --ndf 32 --batch-size 64" --seeds 3 \
        --seconds 480 --variant classic --variant studio --variant "studio --diffaugment color,translation,cutout"
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

from gan.evaluation import evaluate_generator, evaluation_sets
from gan.features import feature_extractor
from gan.training.settings import parse_flags
from gan.training.trainer import Trainer


def train_and_evaluate(dataset: str, variant: str, seed: int, times: list[float], num: int) -> None:
    """Train one variant (its recipe and flags) from `seed`, printing a JSON line of scores at each time in `times`."""
    recipe, *flags = shlex.split(variant)
    flags += ["--seed", str(seed)]
    settings, _ = parse_flags(["--dataset", dataset, "--recipe", recipe, *flags])
    sets = evaluation_sets(dataset, image_size=settings.image_size)
    num = min(num, len(sets.reference), len(sets.held_out))
    features = feature_extractor(dataset)
    trainer = Trainer(settings, sets.train, torch.device("cpu"))
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
            scores = evaluate_generator(generator, features, sets.reference, num, sets.held_out)
            scores["held_out"] = sets.how
            row = {"variant": label, "seed": seed, "seconds": until, "steps": trainer.step, **scores}
            print(json.dumps(row), flush=True)


def run_side_by_side(dataset: str, runs: list[tuple[str, int]], times: list[float], num: int) -> list[dict]:
    """One child process per (variant, seed), pinned to its own core with one thread; waves of len(cores) runs."""
    cores = sorted(os.sched_getaffinity(0))
    rows = []
    for first in range(0, len(runs), len(cores)):
        children = []
        for core, (variant, seed) in zip(cores, runs[first : first + len(cores)], strict=False):
            command = [
                sys.executable,
                __file__,
                "--dataset",
                dataset,
                "--worker",
                variant,
                "--seed",
                str(seed),
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


def print_table(rows: list[dict], variants: list[str], dataset: str) -> None:
    """Every run, then each variant's mean over its seeds; FD as a ratio of the first variant's mean at that time."""
    times = sorted({row["seconds"] for row in rows})
    variants = list(dict.fromkeys([*variants, *(row["variant"] for row in rows)]))  # and the [live G] rows
    mean = {
        (v, t): _mean([r for r in rows if r["variant"] == v and r["seconds"] == t]) for v in variants for t in times
    }
    print(
        f"\n{rows[0]['num']} samples of {dataset}, one thread per run, runs side by side; floor: {rows[0]['held_out']}"
    )
    header = f"{'variant':52s} {'seed':>4s} {'seconds':>7s} {'steps':>6s} {'FD':>8s} {'KID':>8s} {'precision':>9s}"
    print(f"{header} {'recall':>7s} {'FD/' + variants[0][:12]:>16s}")
    order = sorted(rows, key=lambda r: (r["seconds"], variants.index(r["variant"]), r["seed"]))
    for row in order + [{**mean[v, t], "variant": v, "seed": "mean"} for t in times for v in variants]:
        classic = mean[variants[0], row["seconds"]]["fd"]
        print(
            f"{row['variant']:52s} {row['seed']:>4} {row['seconds']:7.0f} {row['steps']:6.0f} {row['fd']:8.2f} "
            f"{row['kid']:8.4f} {row['precision']:9.3f} {row['recall']:7.3f} {row['fd'] / classic:16.2f}"
        )
    reference = rows[0]["real_vs_real"]
    print(
        f"{'real vs real (the floor)':52s} {'':4s} {'':7s} {'':6s} {reference['fd']:8.2f} {reference['kid']:8.4f} "
        f"{reference['precision']:9.3f} {reference['recall']:7.3f}"
    )


def _mean(rows: list[dict]) -> dict:
    keys = ("seconds", "steps", "fd", "kid", "precision", "recall")
    return {key: sum(row[key] for row in rows) / len(rows) for key in keys}


def plot(rows: list[dict], path: str, common: str = "") -> None:
    """FD, precision and recall against training time, each variant's mean over its seeds (`common`: the flags of
    every variant, left out of the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for variant in dict.fromkeys(row["variant"] for row in rows):
        times = sorted({r["seconds"] for r in rows if r["variant"] == variant})
        mine = [_mean([r for r in rows if (r["variant"], r["seconds"]) == (variant, t)]) for t in times]  # over seeds
        minutes = [r["seconds"] / 60 for r in mine]
        for axis, key in zip(axes, ("fd", "precision", "recall"), strict=True):
            axis.plot(minutes, [r[key] for r in mine], marker="o", label=variant.replace(common, "").replace("  ", " "))
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
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "noto-emoji"))
    parser.add_argument("--variant", action="append", help="recipe name plus train.py flags (default: classic, studio)")
    parser.add_argument("--flags", default="", help="train.py flags for every variant (widths, batch size)")
    parser.add_argument("--seeds", type=int, default=1, help="runs of each variant, with --seed 0, 1, ...")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--plot", default=None, help="write FD/precision/recall against training time to this PNG")
    parser.add_argument("--rows", default=None, help="print the table of the JSON lines a run printed (a saved log)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    times = sorted(
        {float(t) for t in options.at.split(",") if t} | ({options.seconds} if not options.worker else set())
    )
    if options.worker:
        torch.set_num_threads(1)
        train_and_evaluate(options.dataset, options.worker, options.seed, times, options.num)
        return
    variants = [f"{variant} {options.flags}".strip() for variant in options.variant or ["classic", "studio"]]
    if options.rows:
        with open(options.rows) as log:
            rows = [json.loads(line) for line in log if line.startswith("{")]
    else:
        runs = [(variant, seed) for seed in range(options.seeds) for variant in variants]
        rows = run_side_by_side(options.dataset, runs, times, options.num)
    print_table(rows, variants, options.dataset)
    if options.plot:
        plot(rows, options.plot, options.flags)


if __name__ == "__main__":
    main()
