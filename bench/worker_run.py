"""The Train tab's run as on a ZeroGPU Space, in this process: gan.training.worker.train_in_worker with the GPU
defaults (GPU_DEFAULTS, the time budget from --seconds) on CUDA with bf16 where there is a GPU, then the export
scored on the evaluator's feature space (Fashion-MNIST's domain features). Prints one JSON line: the device, steps,
images per second, seconds to the first snapshot, snapshots, wall time, FD and KID. bench/gpu_check.sh runs it on a
lent GPU (an H200 there, not a Space's Blackwell half-card):

    PYTHONPATH=. python3 bench/worker_run.py --seconds 60 [--data-dir DIR_WITH_FASHION_MNIST_IDX_GZ]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from gan.checkpoint import load_model
from gan.data import load_dataset
from gan.evaluation import evaluate_generator
from gan.features import feature_extractor
from gan.precision import describe_device
from gan.training.worker import EXPORT, GPU_DEFAULTS, SNAPSHOT, train_in_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's IDX files (default: the Debian package's)")
    parser.add_argument("--num", type=int, default=10_000, help="samples scored")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    flags = replace(GPU_DEFAULTS, seconds=args.seconds).flags() + (
        ["--data-dir", args.data_dir] if args.data_dir else []
    )
    out = Path(tempfile.mkdtemp(prefix="worker-run-")) / "run"
    started, first, snapshots, last, export = time.perf_counter(), None, 0, {}, None
    for item in train_in_worker(flags, str(out)):
        if item["kind"] == SNAPSHOT:
            first = first or time.perf_counter() - started
            snapshots += 1
            last = item["records"][-1] if item["records"] else last
        elif item["kind"] == EXPORT:
            export = item
        else:
            raise SystemExit(f"the run ended with {item}")
    wall = time.perf_counter() - started
    model = load_model(out / "model")
    train = load_dataset("fashion-mnist", args.data_dir, 32, download=False)
    test = load_dataset("fashion-mnist", args.data_dir, 32, download=False, split="test")
    scores = evaluate_generator(
        model.generator.to(device), feature_extractor("fashion-mnist", None, device), train, args.num, test
    )
    print(
        json.dumps(
            {
                "device": describe_device(device),
                "settings": {
                    "seconds": args.seconds,
                    "width": GPU_DEFAULTS.width,
                    "batch_size": GPU_DEFAULTS.batch_size,
                },
                "steps": model.metadata["training"]["steps"],
                "images_per_second": last.get("images_per_second"),
                "first_snapshot_s": round(first or 0, 2),
                "snapshots": snapshots,
                "wall_s": round(wall, 1),
                "export_files": sorted(export["files"]) if export else [],
                **{key: scores[key] for key in ("fd", "kid") if key in scores},
            }
        )
    )


if __name__ == "__main__":
    main()
