"""The Train tab, measured: what its runs reach in their time budget, and what a run costs the rest of the app.

`quality` (the default) runs exactly what the tab runs (gan.training.runner: the trainer in a child process with one
thread, the tab's flags, its live snapshots and memory cap) for each variant and seed, two at a time, each child
pinned to its own core, then scores each export with `python -m gan evaluate` (domain features for Fashion-MNIST, on
the same core) and prints a table with the CPU. A variant is the tab's recipe ("default" or "classic") with the tab's
settings (--width, --batch-size, --lr, --seconds; train.py flags after them are appended, for exploring). The first
variant is the reference of the ratio column. Run it on an otherwise idle machine:

    .venv/bin/python bench/train_tab.py --seeds 0,1,2 --num 10000
    .venv/bin/python bench/train_tab.py --seeds 0 --num 5000 --variant default --variant "default --width large"

`app` launches the app and measures another client's `/sample` p50 (8 samples) idle and while a visitor's training
runs with the tab's defaults, and how long Stop takes to end a run with its export (the Stop button's handler to
the final update):

    .venv/bin/python bench/train_tab.py app
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from gan.precision import describe_device
from gan.training.runner import LIVE_EVERY, MEMORY_BYTES, TabRun, TrainingProcess

ROOT = Path(__file__).resolve().parents[1]


def parse_variant(text: str) -> tuple[str, dict, list[str]]:
    parser = argparse.ArgumentParser(prog="variant", add_help=False)
    parser.add_argument("recipe", choices=("default", "classic"))
    parser.add_argument("--width", default=TabRun.width)
    parser.add_argument("--batch-size", type=int, default=TabRun.batch_size)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seconds", type=float, default=TabRun.seconds)
    known, extra = parser.parse_known_args(shlex.split(text))
    return text, vars(known), extra


def train_and_evaluate(variant: str, seed: int, core: int, num: int, work: Path) -> dict:
    """One run as the tab runs it, on `core`, then its evaluation there; the scores and the run's facts."""
    _, settings, extra = parse_variant(variant)
    run = TabRun(seed=seed, **settings)
    folder = Path(tempfile.mkdtemp(prefix=f"tab-{seed}-", dir=work))
    started = time.perf_counter()
    child = TrainingProcess(folder, run.flags() + extra, LIVE_EVERY, MEMORY_BYTES)
    os.sched_setaffinity(child.process.pid, {core})
    code = child.wait()
    wall = time.perf_counter() - started
    export = child.out / "model"
    if code != 0 or not (export / "config.json").is_file():
        raise SystemExit(f"{variant} seed {seed} failed (exit {code}): {child.failure()}")
    training = json.loads((export / "config.json").read_text())["training"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = ["taskset", "-c", str(core), sys.executable, "-m", "gan", "evaluate", "--checkpoint", str(export)]
    evaluated = subprocess.run([*command, "--num", str(num)], capture_output=True, text=True, env=env, check=True)
    scores = json.loads(evaluated.stdout.strip().splitlines()[-1])
    return {
        "variant": variant,
        "seed": seed,
        "steps": training["steps"],
        "training_s": training["time_s"],
        "wall_s": round(wall, 1),
        "precision_used": training["precision"],
        **{key: scores[key] for key in ("fd", "kid", "precision", "recall", "real_vs_real")},
    }


def run_all(variants: list[str], seeds: list[int], num: int) -> list[dict]:
    """Every (variant, seed), two at a time: one worker per core, each run and its evaluation on that core."""
    jobs: queue.Queue = queue.Queue()
    for seed in seeds:
        for variant in variants:
            jobs.put((variant, seed))
    rows, lock = [], threading.Lock()
    work = Path(tempfile.mkdtemp(prefix="train-tab-bench-"))

    def worker(core: int) -> None:
        while True:
            try:
                variant, seed = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                row = train_and_evaluate(variant, seed, core, num, work)
            except (SystemExit, Exception) as error:  # a thread's exception would pass unseen
                print(f"{variant} seed {seed}: {error}", file=sys.stderr, flush=True)
                continue
            with lock:
                rows.append(row)
                print(json.dumps(row), flush=True)

    cores = sorted(os.sched_getaffinity(0))[:2]
    threads = [threading.Thread(target=worker, args=(core,)) for core in cores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return rows


def print_table(rows: list[dict], variants: list[str], num: int) -> None:
    reference = {row["seed"]: row["fd"] for row in rows if row["variant"] == variants[0]}
    print(f"\n{describe_device(torch.device('cpu'))}; each run one thread on its own core, two at a time")
    print(f"FD etc.: {num} samples vs {num} training images, Fashion-MNIST domain features (python -m gan evaluate)")
    header = f"{'variant':40s} {'seed':>4s} {'steps':>6s} {'train s':>7s} {'FD':>7s} {'prec':>6s} {'recall':>6s}"
    print(header + f" {'FD / ' + variants[0][:20]:>26s}")
    for variant in variants:
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        for row in mine:
            ratio = row["fd"] / reference[row["seed"]] if row["seed"] in reference else float("nan")
            print(
                f"{variant:40s} {row['seed']:4d} {row['steps']:6d} {row['training_s']:7.1f} {row['fd']:7.2f} "
                f"{row['precision']:6.3f} {row['recall']:6.3f} {ratio:26.2f}"
            )
        if len(mine) > 1:
            mean_fd = statistics.mean(r["fd"] for r in mine)
            precision, recall = (statistics.mean(r[key] for r in mine) for key in ("precision", "recall"))
            mean_ref = statistics.mean(reference[r["seed"]] for r in mine if r["seed"] in reference)
            print(
                f"{variant + ' (mean)':40s} {'':4s} {'':6s} {'':7s} {mean_fd:7.2f} "
                f"{precision:6.3f} {recall:6.3f} {mean_fd / mean_ref:26.2f}"
            )
    real = rows[0]["real_vs_real"]
    print(
        f"{'real vs real (test images)':40s} {'':4s} {'':6s} {'':7s} {real['fd']:7.2f} {real['precision']:6.3f} "
        f"{real['recall']:6.3f}"
    )


def quality(options: argparse.Namespace) -> None:
    variants = options.variant or ["classic", "default"]
    seeds = [int(seed) for seed in options.seeds.split(",")]
    rows = run_all(variants, seeds, options.num)
    print_table(rows, variants, options.num)


# -- the app while a visitor trains -------------------------------------------------------
def _p50(client, count: int = 20) -> float:
    times = []
    for index in range(count):
        started = time.perf_counter()
        client.predict(seed=index, count=8, api_name="/sample")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def app(options: argparse.Namespace) -> None:
    from gradio_client import Client

    from gan.testing import RunningApp

    log = Path(tempfile.mkdtemp(prefix="train-tab-app-")) / "app.log"
    running = RunningApp(log, [])
    try:
        visitor, trainer = (Client(running.url, verbose=False) for _ in range(2))
        _p50(visitor, 5)  # warm up
        idle = _p50(visitor)
        job = trainer.submit(seed=0, seconds=options.seconds, api_name="/train")
        while len(job.outputs()) < 3:  # the run is training and streaming
            time.sleep(0.2)
        busy = _p50(visitor)
        before = len(job.outputs())
        started = time.perf_counter()
        trainer.predict(api_name="/stop_training")
        job.result(timeout=120)
        stopped = time.perf_counter() - started
        print(f"\n{describe_device(torch.device('cpu'))}; the app serves the bundled model")
        print(f"/sample (8 samples) p50 idle: {idle * 1000:.1f} ms")
        print(
            f"/sample (8 samples) p50 while a visitor trains (tab defaults): {busy * 1000:.1f} ms "
            f"({busy / idle:.2f}x idle; target <= 2x)"
        )
        print(f"Stop to the final update with the export: {stopped:.2f} s (updates before Stop: {before})")
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("quality", "app"), default="quality")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (quality)")
    parser.add_argument("--num", type=int, default=10_000, help="samples and real images per evaluation (quality)")
    parser.add_argument("--variant", action="append", help="the tab's recipe and settings (quality)")
    parser.add_argument("--seconds", type=float, default=60, help="the visitor's training budget (app)")
    options = parser.parse_args()
    (quality if options.mode == "quality" else app)(options)


if __name__ == "__main__":
    main()
