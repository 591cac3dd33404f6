"""`python -m gan sample`: PNG grids and .npz arrays, reproducible to the byte, and the bundled model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT
from PIL import Image

from gan import BUNDLED_MODEL
from gan.checkpoint import load_model
from gan.cli import main
from gan.sampling import generate, latents_for_seeds


def test_npz_holds_the_seeded_images(tiny_run, tmp_path):
    checkpoint = str(tiny_run / "model")
    assert (
        main(["sample", "--checkpoint", checkpoint, "--num", "5", "--seed", "40", "--out", str(tmp_path / "s.npz")])
        == 0
    )
    images = np.load(tmp_path / "s.npz", allow_pickle=False)["images"]
    assert images.shape == (5, 32, 32, 1) and images.dtype == np.uint8
    model = load_model(checkpoint)
    expected = generate(model.generator, latents_for_seeds(42, 1, model.config.nz))
    assert np.array_equal(images[2], expected[0].permute(1, 2, 0).numpy())  # image i is seed 40+i


@pytest.mark.slow
def test_png_is_byte_identical_across_processes(tiny_run, tmp_path):
    outputs = []
    for name in ("a.png", "b.png"):
        command = [
            sys.executable,
            "-m",
            "gan",
            "sample",
            "--checkpoint",
            str(tiny_run / "model"),
            "--num",
            "9",
            "--seed",
            "7",
            "--out",
            str(tmp_path / name),
        ]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    grid = Image.open(tmp_path / "a.png")
    assert grid.size == (3 * 34 + 2, 3 * 34 + 2) and grid.text["seeds"] == "7-15"


def test_bad_arguments_are_one_line_errors(tiny_run, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tiny_run / "model"), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tiny_run / "model"),
                "--seed",
                str(2**32 - 1),
                "--num",
                "2",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "must lie in 0..4294967295" in capsys.readouterr().err


@pytest.mark.skipif(not (BUNDLED_MODEL / "config.json").exists(), reason="the bundled model is not committed yet")
def test_bundled_model_samples_clothes(tmp_path):
    assert main(["sample", "--num", "16", "--out", str(tmp_path / "b.npz")]) == 0
    images = np.load(tmp_path / "b.npz")["images"]
    assert images.shape == (16, 32, 32, 1)
    # Fashion-MNIST statistics: a black background with bright garments, and distinct images per seed
    assert images[:, :2].mean() < 40 and images.mean() > 40
    assert len({image.tobytes() for image in images}) == 16
    model = load_model(BUNDLED_MODEL)
    assert model.metadata["dataset"] == "fashion-mnist" and model.discriminator is not None
    assert torch.isfinite(next(model.generator.parameters())).all()
