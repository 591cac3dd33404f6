"""The Train tab's memory, measured: the peak data memory (VmData, what RLIMIT_DATA caps), resident memory (VmRSS)
and address space (VmSize) of the largest run the tab allows, width "large" (64) and batch 128, on Fashion-MNIST
and on 5000 uploaded colour images (the folder of 32 px PNGs the tab writes for the trainer: random pixels here,
which cost the trainer what any picture does).

Each run is exactly what the tab starts (gan.training.runner: TabRun's flags, TrainingProcess: one thread, live
snapshots, the export at the end), without a memory cap, for --steps steps; this process reads /proc/PID/status
every few milliseconds (VmHWM is the kernel's own peak of the resident set; the others are peaks of the readings).
MEMORY_BYTES, the tab's cap, is set from these figures with a margin (docs/app.md says which):

    .venv/bin/python bench/train_memory.py
    .venv/bin/python bench/train_memory.py --steps 50 --case images
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import torch

from gan.data.idx import DEBIAN_FASHION_MNIST
from gan.precision import describe_device
from gan.training.runner import LIVE_EVERY, MEMORY_BYTES, TabRun, TrainingProcess
from gan.uploads import MAX_FILES, write_images

FIELDS = ("VmData", "VmRSS", "VmHWM", "VmSize")


def read_status(pid: int) -> dict[str, int]:
    """The FIELDS of /proc/PID/status, in bytes ({} once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in FIELDS:
            values[name] = int(value.split()[0]) * 1024
    return values


def measure(run: TabRun, work: Path, every_s: float = 0.005) -> dict:
    """Run `run` as the tab does, without a cap; the peaks of FIELDS over its life, its steps and its wall time."""
    folder = Path(tempfile.mkdtemp(prefix="tab-memory-", dir=work))
    started = time.perf_counter()
    child = TrainingProcess(folder, run.flags(), LIVE_EVERY, None)
    peaks = dict.fromkeys(FIELDS, 0)

    def poll() -> None:
        while child.running():
            for name, value in read_status(child.process.pid).items():
                peaks[name] = max(peaks[name], value)
            time.sleep(every_s)

    watcher = threading.Thread(target=poll)
    watcher.start()
    code = child.wait()
    watcher.join()
    if code != 0:
        raise SystemExit(f"the run failed (exit {code}): {child.failure()}")
    return {**peaks, "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--case", choices=("both", "fashion-mnist", "images"), default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="train-memory-bench-"))
    largest = {"width": "large", "batch_size": 128, "steps": args.steps}
    cases = {}
    if args.case in ("both", "fashion-mnist"):
        if not DEBIAN_FASHION_MNIST.is_dir():
            raise SystemExit(f"Fashion-MNIST is not at {DEBIAN_FASHION_MNIST} (apt-get install dataset-fashion-mnist)")
        cases["Fashion-MNIST"] = TabRun(**largest)
    if args.case in ("both", "images"):
        images = torch.randint(0, 256, (MAX_FILES, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator())
        folder = write_images(images, work / "uploaded")
        cases[f"{MAX_FILES} colour images"] = TabRun(**largest, data_dir=str(folder), channels=3)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"{describe_device(device)}; torch {torch.__version__}; width large (64), batch 128, {args.steps} steps")
    print(f"{'data':24s} {'VmData':>9s} {'VmRSS':>9s} {'VmHWM':>9s} {'VmSize':>9s} {'wall s':>7s}")
    for name, run in cases.items():
        peaks = measure(run, work)
        mib = " ".join(f"{peaks[field] / 2**20:8.0f}M" for field in FIELDS)
        print(f"{name:24s} {mib} {peaks['wall_s']:7.1f}", flush=True)
    print(f"the tab's cap (MEMORY_BYTES): {MEMORY_BYTES / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
