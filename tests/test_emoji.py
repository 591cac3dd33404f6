"""The noto-emoji source: every glyph of the colour bitmap strike of Debian's fonts-noto-color-emoji, once each, on
white, at the run's size; the cache that spares a second load the font; the one line when the package is missing;
the groups of skin-tone siblings; the registry entry reaching the model card, train.py and the Train tab's flags."""

from __future__ import annotations

import io
import json
import os
import sys
import time

import numpy as np
import pytest
import torch
from helpers import NOTO_EMOJI_FONT, needs_noto_emoji, train
from PIL import Image

from gan.data import SOURCES, emoji, load_dataset
from gan.errors import DataError

GLYPHS_READ, GLYPHS_KEPT = 3_926, 3_916
GRINNING_FACE = "u1F600"  # a round face: its bitmap's corners are transparent
THUMBS_UP = 0x1F44D


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory) -> emoji.Glyphs:
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.getbasetemp() / "dcgan-cache")  # before the autouse fixture
    return emoji.read_glyphs(NOTO_EMOJI_FONT)


@pytest.fixture(scope="module")
def emoji64(glyphs):
    """The set at its default side, loaded (and cached) once; with the seconds the load took."""
    started = time.perf_counter()
    dataset = load_dataset("noto-emoji", image_size=64)
    return dataset, time.perf_counter() - started


@needs_noto_emoji
def test_every_glyph_of_the_strike_is_read_and_byte_identical_bitmaps_are_kept_once(glyphs):
    font = emoji._open_font(NOTO_EMOJI_FONT)
    pngs = emoji.read_strike(font)
    assert len(pngs) == glyphs.read == GLYPHS_READ
    assert len(font.getBestCmap()) < 1_500  # the cmap alone reaches few of them: the rest are GSUB ligatures
    assert len(glyphs.names) == len(set(glyphs.pngs)) == len(glyphs.pngs) == GLYPHS_KEPT == SOURCES["noto-emoji"].images
    assert glyphs.names == [name for name in pngs if name in set(glyphs.names)]  # the strike's order, first kept
    assert Image.open(io.BytesIO(pngs[GRINNING_FACE])).size == (136, 128)


@needs_noto_emoji
def test_the_default_side_is_64_and_32_is_asked_for_as_the_train_tab_does(emoji64):
    from gan.training.settings import parse_flags

    dataset, _ = emoji64
    assert dataset.images.shape == (GLYPHS_KEPT, 3, 64, 64) and dataset.images.dtype == torch.uint8
    small = load_dataset("noto-emoji", image_size=32)
    assert small.images.shape == (GLYPHS_KEPT, 3, 32, 32) and small.images.dtype == torch.uint8
    assert parse_flags(["--dataset", "noto-emoji"])[0].image_size == 64  # the source's own side
    assert parse_flags(["--dataset", "noto-emoji", "--image-size", "32"])[0].image_size == 32
    assert parse_flags(["--dataset", "fashion-mnist"])[0].image_size == 32
    assert parse_flags(["--dataset", "folder"])[0].image_size == 32


@needs_noto_emoji
def test_transparent_pixels_become_white(glyphs, emoji64):
    dataset, _ = emoji64
    png = glyphs.pngs[glyphs.names.index(GRINNING_FACE)]
    with Image.open(io.BytesIO(png)) as opened:
        assert opened.mode == "P" and "transparency" in opened.info  # a palette image with a tRNS chunk
        alpha = np.asarray(opened.convert("RGBA"))[..., 3]
    assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
    image = dataset.images[glyphs.names.index(GRINNING_FACE)]
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert image[:, y, x].tolist() == [255, 255, 255]
    assert (image.float().mean(0) < 200).sum() > 64 * 64 / 4  # and the face is there


@needs_noto_emoji
def test_a_second_load_reads_the_cache_not_the_font(emoji64, monkeypatch):
    dataset, first = emoji64
    monkeypatch.setitem(sys.modules, "fontTools", None)  # any import of fontTools now fails
    monkeypatch.setitem(sys.modules, "fontTools.ttLib", None)
    with pytest.raises(DataError, match="fontTools"):
        emoji._open_font(NOTO_EMOJI_FONT)
    started = time.perf_counter()
    again = load_dataset("noto-emoji", image_size=64)
    print(f"first load {first:.2f} s, cached {time.perf_counter() - started:.2f} s")
    assert torch.equal(again.images, dataset.images) and again.credit == dataset.credit


def test_a_missing_font_names_the_package_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(emoji.FONT_ENV, str(tmp_path / "NotoColorEmoji.ttf"))
    assert not SOURCES["noto-emoji"].here()
    with pytest.raises(DataError) as missing:
        load_dataset("noto-emoji", download=True)
    message = str(missing.value)
    assert "\n" not in message and message.endswith("apt install fonts-noto-color-emoji")
    assert str(tmp_path / "NotoColorEmoji.ttf") in message


@needs_noto_emoji
def test_skin_tone_siblings_share_one_base_sequence(glyphs, emoji64):
    groups = emoji.base_sequences()
    assert groups == glyphs.groups and len(groups) == GLYPHS_KEPT
    thumbs = [name for name, group in zip(glyphs.names, groups, strict=True) if group == f"u{THUMBS_UP:04X}"]
    assert len(thumbs) == 6  # the yellow thumb and its five skin tones
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1])
    assert 1_900 < len(sizes) < 2_200 and (sizes == 6).sum() > 300


@needs_noto_emoji
def test_the_registry_entry_reaches_the_model_card(emoji64):
    from gan.hub.model_card import model_card

    dataset, _ = emoji64
    assert (
        dataset.credit.startswith("Noto Color Emoji by Google (font 2.") and "fonts-noto-color-emoji" in dataset.credit
    )
    config = {"nz": 100, "nc": 3, "image_size": 64, **dataset.metadata()}
    card = model_card(config, "alice/dcgan-noto-emoji", ["config.json"])
    assert card.data.license == "apache-2.0" and "noto-emoji" in card.data.tags
    assert f"{dataset.credit}. Licence: Apache-2.0 (the images; the font is OFL-1.1)." in card.text


@needs_noto_emoji
def test_train_py_trains_a_64px_colour_model_offline(emoji64, tmp_path, capsys):
    from gan.checkpoint import load_model
    from gan.cli import main as cli_main

    out = tmp_path / "run"
    flags = ["--dataset", "noto-emoji", "--steps", "2", "--ngf", "8", "--ndf", "8", "--batch-size", "16"]
    assert train([*flags, "--out", str(out)]) == 0
    model = load_model(out / "model")
    assert (model.config.image_size, model.config.nc) == (64, 3)
    assert model.metadata["dataset"] == "noto-emoji" and model.metadata["dataset_credit"] == emoji64[0].credit
    # evaluated in the set's pixel PCA, the floor being one half of the base sequences against the other
    assert cli_main(["evaluate", "--checkpoint", str(out / "model"), "--num", "300"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["feature_space"].startswith("noto-emoji pixel PCA (64 components") and scores["num"] == 300
    assert scores["held_out"].startswith("one half of the groups against the other (")
    assert scores["fd"] > 5 * scores["real_vs_real"]["fd"] and scores["real_vs_real"]["precision"] > 0.5
    assert scores["copies"]["samples"] == 1000 and scores["copies"]["unit"] == "group"


@needs_noto_emoji
def test_the_train_tab_trains_emoji_in_colour_at_32px(tmp_path):
    from gan.checkpoint import load_model
    from gan.training.runner import TabRun
    from gan.ui.train import DATA_CHOICES

    assert ("Noto emoji (colour) (3,916 images)", "noto-emoji") in DATA_CHOICES
    flags = TabRun(dataset="noto-emoji", steps=2, width="tiny", batch_size=16).flags()
    assert train([*flags, "--out", str(tmp_path / "run")]) == 0
    config = load_model(tmp_path / "run" / "model").config
    assert (config.image_size, config.nc) == (32, 3)
