"""The launched app, driven over HTTP with gradio_client: every endpoint and every bad upload."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from gan.checkpoint import load_model
from gan.sampling import generate, latents_for_seeds, upscale
from images_for_tests import write_test_images


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    return write_test_images(tmp_path_factory.mktemp("uploads"))


def _png(path) -> Image.Image:
    image = Image.open(path)
    assert image.format == "PNG"
    return image


def test_sample_returns_the_seeded_grid(client, tiny_run):
    path = client.predict(seed=5, count=4, api_name="/sample")
    grid = _png(path)
    assert grid.text["seeds"] == "5-8"
    scale = int(grid.text["scale"])
    assert grid.size == (scale * (2 + 2 * 34), scale * (2 + 2 * 34))  # 2x2 tiles of 32 px, 2 px padding
    # the app's pixels are the generator's pixels for those seeds, in order
    model = load_model(tiny_run / "model")
    expected = generate(model.generator, latents_for_seeds(5, 4, model.config.nz))
    native = np.asarray(grid.resize((grid.width // scale, grid.height // scale), Image.Resampling.NEAREST))
    for i in range(4):
        row, col = divmod(i, 2)
        tile = native[2 + row * 34 : 2 + row * 34 + 32, 2 + col * 34 : 2 + col * 34 + 32]
        assert np.array_equal(tile, expected[i, 0].numpy()), f"seed {5 + i}"


def test_same_seed_same_bytes_and_grid_tiles_are_single_seeds(client):
    first = open(client.predict(seed=123, count=3, api_name="/sample"), "rb").read()
    second = open(client.predict(seed=123, count=3, api_name="/sample"), "rb").read()
    assert first == second
    grid = _png(client.predict(seed=123, count=3, api_name="/sample"))
    native_grid = np.asarray(grid.resize((grid.width // int(grid.text["scale"]),) * 2, Image.Resampling.NEAREST))
    single = _png(client.predict(seed=124, count=1, api_name="/sample"))
    native_single = np.asarray(single.resize((single.width // int(single.text["scale"]),) * 2, Image.Resampling.NEAREST))
    assert native_single.shape == (32, 32)  # a one-image grid has no padding
    assert np.array_equal(native_grid[2:34, 36:68], native_single)


def test_interpolate_returns_a_gif_and_a_strip(client):
    gif_path, strip_path = client.predict(seed_a=1, seed_b=2, frames=10, mode="lerp", api_name="/interpolate")
    gif = Image.open(gif_path)
    assert gif.format == "GIF"
    # Pillow merges identical consecutive frames (likely with this barely trained model) and adds up their
    # durations, so the animation's length, not its frame count, shows that all 10 frames are there. GIF
    # stores durations in 1/100 s: ten 83 ms frames are stored as 80 ms each, one merged frame as 830 ms.
    durations = []
    for index in range(gif.n_frames):
        gif.seek(index)
        durations.append(gif.info["duration"])
    assert 800 <= sum(durations) <= 830
    strip = _png(strip_path)
    assert strip.text["frames"] == "10" and strip.width > strip.height
    slerp = client.predict(seed_a=1, seed_b=2, frames=2, mode="slerp", api_name="/interpolate")
    assert Image.open(slerp[0]).format == "GIF"


def test_out_of_range_parameters_get_clear_errors(client, app):
    # Gradio checks slider and radio ranges before the handler runs; the handler checks the rest
    with pytest.raises(AppError, match="Value 65 is greater than maximum value 64"):
        client.predict(seed=0, count=65, api_name="/sample")
    with pytest.raises(AppError, match="Value 1 is less than minimum value 2"):
        client.predict(seed_a=0, seed_b=1, frames=1, mode="lerp", api_name="/interpolate")
    with pytest.raises(AppError, match="cubic"):
        client.predict(seed_a=0, seed_b=1, frames=3, mode="cubic", api_name="/interpolate")
    with pytest.raises(AppError, match="seeds 4294967295..4294967296 run past 4294967295"):
        client.predict(seed=2**32 - 1, count=2, api_name="/sample")
    with pytest.raises(AppError, match="count must be a whole number"):
        client.predict(seed=0, count=2.5, api_name="/sample")
    assert app.alive()


def test_score_sorts_and_explains_conversions(client, uploads):
    names = ["good.png", "rgb.jpg", "rgba.png", "palette.png", "cmyk.jpg", "sixteen.png", "animated.gif"]
    gallery, table, message = client.predict(images=[handle_file(uploads[n]) for n in names], api_name="/score")
    rows = table["data"]
    assert sorted(r[0] for r in rows) == sorted(names)
    logits = [r[1] for r in rows]
    assert logits == sorted(logits, reverse=True)
    for _, logit, probability, _ in rows:
        assert probability == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-3)
    notes = {r[0]: r[3] for r in rows}
    assert "transparency composited on black" in notes["rgba.png"]
    assert "scaled to 8 bits" in notes["sixteen.png"]
    assert "first of 3 frames" in notes["animated.gif"]
    assert "CMYK converted to RGB" in notes["cmyk.jpg"]
    assert len(gallery) == len(names)
    assert message == "All files scored."


@pytest.mark.parametrize(
    "name, problem",
    [
        ("notes.txt", "not an image"),
        ("empty.png", "the file is empty"),
        ("truncated.png", "the image data is truncated or corrupt"),
        ("tiny.png", "1x1 pixels is too small"),
        ("bomb.png", "400,000,000 pixels is over the limit"),
    ],
)
def test_bad_uploads_are_named_and_the_server_survives(client, app, uploads, name, problem):
    gallery, table, message = client.predict(images=[handle_file(uploads["good.png"]), handle_file(uploads[name])], api_name="/score")
    assert [r[0] for r in table["data"]] == ["good.png"]
    assert f"{name}: {problem}" in message
    with pytest.raises(AppError, match=f"{name}: {problem}"):
        client.predict(images=[handle_file(uploads[name])], api_name="/score")
    assert app.alive()


def test_too_many_files_are_refused(client, uploads):
    with pytest.raises(AppError, match="65 files is over the limit of 64"):
        client.predict(images=[handle_file(uploads["good.png"])] * 65, api_name="/score")
    assert client.predict(seed=0, count=1, api_name="/sample")


def test_upscale_is_nearest_neighbour():
    image = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    big = upscale(image, 8)
    assert big.size == (8, 8) and set(np.unique(np.asarray(big))) == {0, 255}
