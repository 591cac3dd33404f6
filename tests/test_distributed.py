"""torchrun with 2 CPU processes (gloo): identical weights on both ranks, rank 0 alone writes, exact resume.

On CPU, SyncBatchNorm is unavailable, so each rank normalises its own half-batch: a 2-process run is not
bitwise a 1-process run of the global batch. What holds, and is tested: DDP averages the gradients, so
every rank applies the same update and ends with the same weights as rank 0's export; resuming a torchrun
run continues it exactly, as for one process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, tiny_mnist_args
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def torchrun(tmp_path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*TORCHRUN, str(ROOT / "train.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _parameter_digest(path) -> str:
    """sha256 of the weights (BatchNorm running statistics are per rank and left out),
    as gan.distributed digests them."""
    tensors = load_file(path)
    keys = sorted(k for k in tensors if "running_" not in k and "num_batches" not in k)
    return hashlib.sha256(b"".join(tensors[k].numpy().tobytes() for k in keys)).hexdigest()


def test_two_processes_train_identical_weights_and_resume_exactly(tmp_path, idx_dir):
    def common(out, *extra: str) -> list[str]:
        every = ["--log-every", "2", "--sample-every", "100", "--checkpoint-every", "100", "--eval-every", "0"]
        return tiny_mnist_args(idx_dir, out, *every, *extra)

    straight, split = tmp_path / "straight", tmp_path / "split"
    result = torchrun(tmp_path, common(straight, "--steps", "6", "--report-to", "tensorboard"))
    assert result.stdout.count("training a 32x32 DCGAN") == 1  # rank 0 alone reports
    assert len(list((straight / "tensorboard").glob("events.out.tfevents.*"))) == 1  # and alone logs
    training = json.loads((straight / "model" / "config.json").read_text())["training"]
    assert training["world_size"] == 2
    # every rank checked that it holds the same weights as every other; rank 0's are the ones exported
    assert training["generator_digest"] == _parameter_digest(straight / "model" / "generator_raw.safetensors")
    torchrun(tmp_path, common(split, "--steps", "3"))
    torchrun(tmp_path, common(split, "--steps", "6", "--resume", "auto"))
    assert _parameter_digest(split / "model" / "generator_raw.safetensors") == training["generator_digest"]
