"""Every supported (image size, channels) trains end to end and round-trips through export/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import train
from PIL import Image

from gan.checkpoint import load_model
from gan.errors import CheckpointError
from gan.models import Discriminator, Generator, ModelConfig, add_spectral_norm, without_spectral_norm
from gan.sampling import generate, latents_for_seeds


@pytest.mark.parametrize(
    "recipe",
    [
        ["--recipe", "classic"],
        ["--recipe", "studio", "--spectral-norm", "--loss", "hinge", "--diffaugment", "translation,cutout"],
    ],
    ids=["classic", "studio-sn-hinge-diffaugment"],
)
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_train_export_load_round_trip(tmp_path, size, channels, recipe):
    rng = np.random.default_rng(size + channels)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "run"
    assert (
        train(
            [
                "--dataset",
                "folder",
                "--data-dir",
                str(tmp_path),
                "--channels",
                str(channels),
                "--image-size",
                str(size),
                "--steps",
                "2",
                "--batch-size",
                "4",
                "--nz",
                "16",
                "--ngf",
                "8",
                "--ndf",
                "8",
                "--out",
                str(out),
                *recipe,
            ]
        )
        == 0
    )
    model = load_model(out / "model")
    d_norm = "none" if "--spectral-norm" in recipe else "batch"
    assert model.config == ModelConfig(nz=16, ngf=8, ndf=8, nc=channels, image_size=size, d_norm=d_norm)
    assert (out / "model" / "generator_raw.safetensors").exists() == ("studio" in recipe)  # EMA on
    images = generate(model.generator, latents_for_seeds(0, 3, 16))
    assert images.shape == (3, channels, size, size) and images.dtype == torch.uint8
    again = generate(load_model(out / "model").generator, latents_for_seeds(0, 3, 16))
    assert torch.equal(images, again)
    logits = model.discriminator(images.float() / 127.5 - 1)
    assert logits.shape == (3,)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_dcgan_init(size, channels):
    config = ModelConfig(nc=channels, image_size=size)
    generator, discriminator = Generator(config), Discriminator(config)
    images = generator(torch.randn(5, 100))
    assert images.shape == (5, channels, size, size) and images.abs().max() <= 1
    assert discriminator(images).shape == (5,)
    assert not isinstance(discriminator.main[-1], torch.nn.Sigmoid)
    first = generator.main[0].weight
    assert abs(first.std().item() - 0.02) < 0.002 and abs(first.mean().item()) < 0.002


def test_exported_discriminator_computes_what_the_spectrally_normalised_one_did():
    discriminator = add_spectral_norm(Discriminator(ModelConfig(d_norm="none")))
    images = torch.randn(4, 1, 32, 32)
    for _ in range(3):  # a few power iterations, as training runs them
        discriminator(images)
    discriminator.eval()
    expected = discriminator(images)
    plain = without_spectral_norm(discriminator)
    assert not any("parametrizations" in name for name, _ in plain.named_parameters())
    torch.testing.assert_close(plain.eval()(images), expected)


def test_unsupported_config_is_refused():
    with pytest.raises(ValueError, match="image_size must be one of"):
        ModelConfig(image_size=48)


def test_load_rejects_incomplete_or_mismatched_exports(tiny_run, tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_model(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((tiny_run / "model" / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "ngf": 16}))
    (broken / "model.safetensors").write_bytes((tiny_run / "model" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_model(broken)
    (broken / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_model(broken)
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(broken)


def test_config_ranges_admit_trainable_models_and_refuse_absurd_ones():
    for nz, width in ((1, 1), (100, 64), (512, 512), (4096, 128)):  # train.py's defaults and far beyond
        config = ModelConfig(nz=nz, ngf=width, ndf=width, nc=3, image_size=64)
        with torch.device("meta"):  # the count that caps the size is the networks' own
            built = sum(p.numel() for net in (Generator(config), Discriminator(config)) for p in net.parameters())
        assert config.parameters == built
    for field, value in (
        ("nz", 0),
        ("nz", 4097),
        ("nz", 8.0),
        ("nz", True),
        ("ngf", 2**62),
        ("ndf", float("nan")),
        ("ngf", "64"),
        ("nc", 3.0),
        ("image_size", True),
    ):
        with pytest.raises(ValueError, match=f"^{field} must be "):
            ModelConfig(**{field: value})
    with pytest.raises(ValueError, match="weights, over the limit of 1,073,741,824"):
        ModelConfig(ngf=1024, ndf=1024, image_size=64)
