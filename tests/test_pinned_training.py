"""Four training configurations whose results must not change when the code is reorganised: each trains a tiny model
in-process and compares its export (every tensor of every safetensors file, config.json), its metrics (timings and the
machine left out) and its training-state arguments with what `tests/data/pinned_training.json` recorded.

Each configuration trains in a fresh interpreter whose arithmetic is the same on every x86-64 CPU: ATen's portable
kernels (ATEN_CPU_CAPABILITY=default, not AVX2/AVX-512), MKL's conditional bitwise reproducibility
(MKL_CBWR=COMPATIBLE), neither oneDNN nor NNPACK (whose kernels and blockings follow the CPU), one thread, `--amp off`.
Then the weights are compared bit for bit, by digest: in a GAN even a 1e-7 difference in a gradient can flip an Adam
step's sign, so a tolerance would either pass real changes or fail on a new CPU.

Re-record (only for an intended change of behaviour, saying so in the commit):
    python tests/test_pinned_training.py --record
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, make_idx_folder, tiny_mnist_args, train
from images_for_tests import blob_pngs

PINNED = Path(__file__).parent / "data" / "pinned_training.json"
PORTABLE_ARITHMETIC = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# What differs between machines and runs: timings, the machine and torch's version
MACHINE_KEYS = {"time_s", "elapsed_s", "images_per_second", "device", "torch"}
COMMON = ["--amp", "off", "--log-every", "2", "--sample-every", "4", "--checkpoint-every", "4", "--eval-every", "0"]
CONFIGURATIONS = {
    "classic": ["--recipe", "classic", "--steps", "8"],
    "studio": ["--steps", "9"],  # the default recipe: its learning-rate decay and EMA
    "hinge-sn-diffaugment-r1": [
        *("--loss", "hinge", "--spectral-norm", "--diffaugment", "color,translation,cutout"),
        *("--r1", "1", "--r1-every", "2", "--steps", "8"),
    ],
    "folder-64px-rgb-resumed": [],  # a 64 px colour folder, stopped at step 4 and resumed to step 8
}


def _without_machine(value):
    if isinstance(value, dict):
        return {key: _without_machine(item) for key, item in value.items() if key not in MACHINE_KEYS}
    if isinstance(value, list):
        return [_without_machine(item) for item in value]
    return value


def _placeholders(value, folders: dict[str, Path]):
    """Paths of the run's own folders, which differ per run, as placeholders."""
    if isinstance(value, dict):
        return {key: _placeholders(item, folders) for key, item in value.items()}
    if isinstance(value, list):
        return [_placeholders(item, folders) for item in value]
    if isinstance(value, str):
        for name, folder in folders.items():
            value = value.replace(str(folder), f"<{name}>")
    return value


def run_configuration(name: str, root: Path) -> dict:
    """Train configuration `name` under `root` in this process; what the comparison reads of the result."""
    import torch
    from safetensors.torch import load_file

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    out = root / name
    if name == "folder-64px-rgb-resumed":
        data = root / "colour"
        data.mkdir(parents=True)
        for file_name, png in blob_pngs(24, colour=True).items():
            (data / file_name).write_bytes(png)
        flags = ["--dataset", "folder", "--data-dir", str(data), "--image-size", "64", "--channels", "3"]
        flags += ["--out", str(out), "--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "8", *COMMON]
        assert train([*flags, "--steps", "4"]) == 0
        assert train([*flags, "--steps", "8", "--resume", "auto"]) == 0
    else:
        data = root / "mnist"
        make_idx_folder(data)
        assert train(tiny_mnist_args(data, out, *COMMON, *CONFIGURATIONS[name])) == 0
    export = out / "model"
    tensors = {
        f"{file.name}:{key}": hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()[:16]
        for file in sorted(export.glob("*.safetensors"))
        for key, tensor in sorted(load_file(file).items())
    }
    state = torch.load(sorted((out / "checkpoints").glob("*.pt"))[-1], map_location="cpu", weights_only=True)
    result = {
        "tensors": tensors,
        "config": json.loads((export / "config.json").read_text()),
        "metrics": [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()],
        "state_args": state.get("args"),
    }
    return _placeholders(_without_machine(result), {"out": out, "data": data})


def train_portably(root: Path) -> dict:
    """`run_configuration` of every configuration, in one fresh interpreter with PORTABLE_ARITHMETIC (which takes
    effect when torch loads)."""
    env = {**os.environ, **PORTABLE_ARITHMETIC, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), "--run", str(root)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    return train_portably(tmp_path_factory.mktemp("pinned"))


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_training_gives_the_recorded_weights_config_metrics_and_state(name, measured):
    recorded = json.loads(PINNED.read_text())[name]
    for part in ("tensors", "metrics", "config", "state_args"):
        assert measured[name][part] == recorded[part], f"{name}: its {part} changed"


if __name__ == "__main__":
    if sys.argv[1] == "--run":  # for train_portably
        print(json.dumps({name: run_configuration(name, Path(sys.argv[2]) / name) for name in CONFIGURATIONS}))
    elif sys.argv[1] == "--record":
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            results = train_portably(Path(folder))
        PINNED.parent.mkdir(exist_ok=True)
        PINNED.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"recorded {', '.join(results)} in {PINNED}", file=sys.stderr)
