"""What the tests share besides fixtures: paths, tiny model flags, data in real formats, training in-process, the
launched app and scripts run in a fresh interpreter. Importing this module sets the offline environment first."""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402 (after the environment: libraries read it when imported)
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from gan.testing import RunningApp, free_port  # noqa: E402, F401 (shared with bench/)

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
NOTO_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
needs_noto_emoji = pytest.mark.skipif(
    not NOTO_EMOJI_FONT.is_file(),
    reason="Debian's fonts-noto-color-emoji is not installed (apt-get install fonts-noto-color-emoji)",
)
TINY_MODEL_ARGS = ["--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "8"]
TINY_MODEL_SETTINGS = {"nz": 8, "ngf": 4, "ndf": 4, "batch_size": 8}  # the same, for RunSettings


def tiny_mnist_args(idx_dir, out, *extra: str) -> list[str]:
    """train.py flags for a tiny model on the IDX files of `idx_dir` (written by make_idx_folder), into `out`;
    `extra` last, so that it overrides any of these."""
    data = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--no-download"]
    return [*data, "--out", str(out), *TINY_MODEL_ARGS, *extra]


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3 (the MNIST file format): magic 0x00000803, count, rows, cols, then uint8 pixels; gzipped."""
    header = struct.pack(">IIII", 0x803, *images.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes())


def make_idx_folder(folder: Path, count: int = 64, seed: int = 0) -> np.ndarray:
    """A flat folder of the four MNIST IDX .gz files holding random blob images; returns the train images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:28, :28]
    train = np.stack(
        [
            (255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))).astype(np.uint8)
            for cy, cx, s in zip(
                rng.uniform(8, 20, count), rng.uniform(8, 20, count), rng.uniform(2, 6, count), strict=True
            )
        ]
    )
    write_idx_images(folder / "train-images-idx3-ubyte.gz", train)
    write_idx_labels(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, count))
    write_idx_images(folder / "t10k-images-idx3-ubyte.gz", train[:8])
    write_idx_labels(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 8))
    return train


def train(args: list[str]) -> int:
    from gan.training import main

    return main(args)


PRELUDE = '''
import contextlib, io, json, os, sys
from pathlib import Path
result = {}

def call(main, args):
    """Exit code, stdout and stderr of a command's main(args)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit:
            code = exit.code
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
'''


def run_script(env: dict[str, str], code: str, timeout_s: float = 120, **variables) -> dict:
    assignments = "".join(f"{name} = {value!r}\n" for name, value in variables.items())
    script = PRELUDE + assignments + textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def open_png(path) -> Image.Image:
    """The image at `path`, checked to be a PNG."""
    image = Image.open(path)
    assert image.format == "PNG"
    return image


def server_paths(*paths) -> list[str]:
    """The folders a visitor must never see named: the server's temporary folder (the app's own folders, its runs and
    their data live there), the checkout, the home folder and `paths` (a root-level home, "/", is left out)."""
    folders = [tempfile.gettempdir(), ROOT, Path.home(), *paths]
    return sorted({str(folder) for folder in folders if len(Path(folder).parts) > 1})


def assert_no_server_paths(content: bytes | str, forbidden: list[str], what: str) -> None:
    """`content` (a file's bytes, a message, a JSON value's text) names none of the `forbidden` folders."""
    data = content.encode() if isinstance(content, str) else content
    for folder in forbidden:
        at = data.find(folder.encode())
        assert at < 0, f"{what} names the server's {folder}: ...{data[max(0, at - 80) : at + 120]!r}..."


COMMAND_LINE_WORDS = re.compile(r"(?<![\w-])--[a-z]|\bHF_[A-Z]|`hf |python -m |train\.py|failed validation")


def assert_web_words(message: str) -> None:
    """`message` is for a visitor of the app: no command-line flag, environment variable or command (nor Gradio's
    "N parameter(s) failed validation"): a visitor has none of them to act on."""
    assert not COMMAND_LINE_WORDS.search(message), message
