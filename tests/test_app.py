"""The launched app, driven over HTTP with gradio_client: every endpoint and every bad upload."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers import open_png
from PIL import Image

from gan.checkpoint import load_model
from gan.sampling import generate, latents_for_seeds, upscale

pytestmark = pytest.mark.slow


def test_sample_returns_the_seeded_grid(client, tiny_run):
    path = client.predict(seed=5, count=4, api_name="/sample")
    gallery = client.predict(seed=5, count=4, api_name="/sample_gallery")
    grid = open_png(path)
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
    # and each sample alone, at native size, names its model, revision and own seed
    assert [item["caption"] for item in gallery] == [f"seed {5 + i}" for i in range(4)]
    for i, item in enumerate(gallery):
        single = open_png(item["image"])
        assert single.size == (32, 32) and np.array_equal(np.asarray(single), expected[i, 0].numpy())
        assert single.text["seed"] == str(5 + i) and single.text["model"] == model.name
        assert single.text["revision"] == grid.text["revision"] and grid.text["revision"].startswith("local sha256:")


def test_same_seed_same_bytes_and_grid_tiles_are_single_seeds(client):
    first = open(client.predict(seed=123, count=3, api_name="/sample"), "rb").read()
    second = open(client.predict(seed=123, count=3, api_name="/sample"), "rb").read()
    assert first == second
    grid = open_png(client.predict(seed=123, count=3, api_name="/sample"))
    native_grid = np.asarray(grid.resize((grid.width // int(grid.text["scale"]),) * 2, Image.Resampling.NEAREST))
    single = open_png(client.predict(seed=124, count=1, api_name="/sample"))
    native_single = np.asarray(
        single.resize((single.width // int(single.text["scale"]),) * 2, Image.Resampling.NEAREST)
    )
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
    strip = open_png(strip_path)
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
    gallery, table, message, histogram = client.predict(
        images=[handle_file(uploads[n]) for n in names], api_name="/score"
    )
    rows = table["data"]
    assert sorted(r[0] for r in rows) == sorted(names)
    logits = [r[1] for r in rows]
    assert logits == sorted(logits, reverse=True)
    for _, logit, probability, _ in rows:
        assert probability == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-3)
    notes = {r[0]: r[3] for r in rows}
    assert "transparency composited on black" in notes["rgba.png"]
    assert "scaled to 8 bits" in notes["sixteen.png"]
    assert "the first frame of several" in notes["animated.gif"]
    assert "CMYK converted to RGB" in notes["cmyk.jpg"]
    assert len(gallery) == len(names)
    assert message == "All files scored."
    assert "palette expanded" in notes["palette.png"]
    assert open_png(histogram).width >= 600


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
    gallery, table, message, histogram = client.predict(
        images=[handle_file(uploads["good.png"]), handle_file(uploads[name])], api_name="/score"
    )
    assert [r[0] for r in table["data"]] == ["good.png"]
    assert f"{name}: {problem}" in message
    with pytest.raises(AppError, match=f"{name}: {problem}"):
        client.predict(images=[handle_file(uploads[name])], api_name="/score")
    assert app.alive()


def test_too_many_files_are_refused(client, uploads):
    with pytest.raises(AppError, match="65 files is over the limit of 64"):
        client.predict(images=[handle_file(uploads["good.png"])] * 65, api_name="/score")
    assert client.predict(seed=0, count=1, api_name="/sample")


def test_truncation_and_columns_are_applied_and_reproducible(client, tiny_run):
    grid_path = client.predict(seed=40, count=6, truncation=0.5, columns=6, api_name="/sample")
    gallery = client.predict(seed=40, count=6, truncation=0.5, api_name="/sample_gallery")
    grid = open_png(grid_path)
    scale = int(grid.text["scale"])
    assert grid.size == (scale * (2 + 6 * 34), scale * 36) and grid.text["truncation"] == "0.5"
    model = load_model(tiny_run / "model")
    expected = generate(model.generator, latents_for_seeds(40, 6, model.config.nz, truncation=0.5))
    for i, item in enumerate(gallery):
        single = open_png(item["image"])
        assert np.array_equal(np.asarray(single), expected[i, 0].numpy())
        assert (single.text["seed"], single.text["truncation"]) == (str(40 + i), "0.5")
    again = client.predict(seed=40, count=6, truncation=0.5, columns=6, api_name="/sample")
    assert open(again, "rb").read() == open(grid_path, "rb").read()


def test_interpolate_ping_pong_and_frame_rate(client):
    # GIF stores delays in 1/100 s: at 10 fps each frame is exactly 100 ms, so the total counts the frames
    # even where Pillow merges identical neighbours
    def total_ms(path) -> int:
        gif = Image.open(path)
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        return sum(durations)

    gif, strip = client.predict(
        seed_a=3, seed_b=4, frames=5, mode="slerp", pingpong=True, fps=10, api_name="/interpolate"
    )
    assert total_ms(gif) == 800  # 5 frames there, 3 back: a, b, c, d, e, d, c, b
    text = open_png(strip).text
    assert (text["frames"], text["pingpong"], text["fps"]) == ("5", "True", "10")
    once, _ = client.predict(
        seed_a=3, seed_b=4, frames=5, mode="slerp", pingpong=False, fps=10, api_name="/interpolate"
    )
    assert total_ms(once) == 500


def test_new_parameters_are_checked(client, app):
    with pytest.raises(AppError, match="truncation must be 0 .off. or at least 0.05"):
        client.predict(seed=0, count=1, truncation=0.01, api_name="/sample")
    with pytest.raises(AppError, match="Value 65 is greater than maximum value 64"):
        client.predict(seed=0, count=1, columns=65, api_name="/sample")
    with pytest.raises(AppError, match="Value 0 is less than minimum value 1"):
        client.predict(seed_a=0, seed_b=1, frames=3, mode="lerp", fps=0, api_name="/interpolate")
    assert app.alive()


def test_score_takes_a_folder_too_and_draws_the_histogram(client, uploads):
    gallery, table, message, histogram = client.predict(
        images=[handle_file(uploads["good.png"])],
        folder=[handle_file(uploads["rgb.jpg"]), handle_file(uploads["notes.txt"])],
        api_name="/score",
    )
    assert sorted(r[0] for r in table["data"]) == ["good.png", "rgb.jpg"]
    assert "notes.txt: not an image" in message
    assert open_png(histogram).size[0] >= 600
    with pytest.raises(AppError, match="65 files is over the limit of 64"):  # the cap counts both
        client.predict(
            images=[handle_file(uploads["good.png"])] * 60,
            folder=[handle_file(uploads["rgb.jpg"])] * 5,
            api_name="/score",
        )
    with pytest.raises(AppError, match="upload one or more image files"):
        client.predict(images=[], api_name="/score")


def test_nearest_training_images(client, tiny_run):
    gallery, note = client.predict(seed=3, api_name="/nearest")
    assert len(gallery) == 9 and gallery[0]["caption"] == "seed 3"
    distances = [float(item["caption"].split(": ")[1]) for item in gallery[1:]]  # "#INDEX: DISTANCE"
    assert distances == sorted(distances) and all(item["caption"].startswith("#") for item in gallery[1:])
    model = load_model(tiny_run / "model")
    expected = generate(model.generator, latents_for_seeds(3, 1, model.config.nz))[0, 0].numpy()
    assert np.array_equal(np.asarray(open_png(gallery[0]["image"])), expected)
    assert "8 nearest of 64 mnist training images" in note


def test_concurrent_clients_with_identical_requests(app, uploads):
    """10 visitors at once, each sampling the default seed (byte-identical outputs, which break PIL outputs in
    Gradio 6.31), one grid of its own, the same interpolation and the same upload: not one error, and identical
    requests get identical files. Files are fetched by URL, a few per answer (the client would fetch all 16
    gallery images one by one, which is the client's time, not the app's)."""
    from gradio_client import Client

    def fetch(file: dict) -> bytes:
        with urllib.request.urlopen(file["url"], timeout=30) as response:
            return response.read()

    def visitor(index: int) -> dict[str, bytes]:
        own = Client(app.url, verbose=False, download_files=False)
        grid = own.predict(seed=0, count=16, api_name="/sample")
        gallery = own.predict(seed=0, count=16, api_name="/sample_gallery")
        own.predict(seed=100 * index, count=4, truncation=0.7, api_name="/sample")
        gif, strip = own.predict(seed_a=0, seed_b=1, frames=6, mode="slerp", api_name="/interpolate")
        seen, table, message, histogram = own.predict(images=[handle_file(uploads["good.png"])], api_name="/score")
        files = {
            "grid": grid,
            "first": gallery[0]["image"],
            "last": gallery[-1]["image"],
            "gif": gif,
            "strip": strip,
            "seen": seen[0]["image"],
            "histogram": histogram,
        }
        return {key: fetch(file) for key, file in files.items()} | {"table": repr(table["data"]).encode()}

    start = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(visitor, range(10)))  # any failed request raises here
    assert time.perf_counter() - start < 45  # ~10 s on one free core: the bound catches a lock serialising everything
    for key in answers[0]:
        assert len({answer[key] for answer in answers}) == 1, key
    assert Image.open(io.BytesIO(answers[0]["grid"])).text["seeds"] == "0-15"
    assert Image.open(io.BytesIO(answers[0]["last"])).text["seed"] == "15"
    assert app.alive()


def test_upscale_is_nearest_neighbour():
    image = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    big = upscale(image, 8)
    assert big.size == (8, 8) and set(np.unique(np.asarray(big))) == {0, 255}


def _project(client, path, **options):
    target, reconstruction, z_file, distance, report, curve = client.predict(
        image=handle_file(path), **{"steps": 60, "restarts": 2, **options}, api_name="/project"
    )
    return {
        "target": target,
        "reconstruction": reconstruction,
        "z": z_file,
        "distance": distance,
        "report": report,
        "curve": curve,
    }


@pytest.fixture(scope="module")
def projected(client):
    """Seed 3's own sample (from /sample's gallery) projected back into the latent space."""
    gallery = client.predict(seed=3, count=1, api_name="/sample_gallery")
    return {"sample": gallery[0]["image"], **_project(client, gallery[0]["image"])}


def test_project_finds_a_generated_sample_again(projected, tiny_run):
    from gan.projection import load_latent

    sample = np.asarray(open_png(projected["sample"]))
    assert np.array_equal(np.asarray(open_png(projected["target"])), sample)  # a 32x32 upload is taken as it is
    reconstruction = open_png(projected["reconstruction"])
    assert reconstruction.size == (32, 32) and reconstruction.text["image"] == "reconstruction"
    distance = projected["distance"]
    assert distance == pytest.approx(np.abs(np.asarray(reconstruction, float) - sample).mean() / 255, abs=1e-4)
    assert distance < 0.02, distance  # measured 0.001 with the tiny test model
    assert f"Distance {distance:.4f}" in projected["report"] and "60 steps x 2 restarts" in projected["report"]
    assert open_png(projected["curve"]).text["steps"] == "60"
    # the downloaded z regenerates the reconstruction exactly
    model = load_model(tiny_run / "model")
    z = load_latent(projected["z"], model.config.nz)
    assert projected["z"].endswith(".npy") and Path(projected["z"]).name.startswith("z-")
    assert np.array_equal(generate(model.generator, z[None])[0, 0].numpy(), np.asarray(reconstruction))


def test_a_downloaded_z_walks_to_a_seed_and_to_another_z(client, projected):
    gif, strip = client.predict(
        z_a=handle_file(projected["z"]), seed_b=4, frames=5, mode="lerp", fps=10, api_name="/interpolate_latent"
    )
    gif = Image.open(gif)
    assert gif.format == "GIF"
    total = 0
    for index in range(gif.n_frames):
        gif.seek(index)
        total += gif.info["duration"]
    assert total == 500  # 5 frames of 100 ms (Pillow may merge identical ones, never drop time)
    strip = open_png(strip)
    assert strip.text["seed_b"] == "4" and strip.text["z_a"].startswith("z-") and strip.text["frames"] == "5"
    scale = strip.height // 36  # one row of 32 px tiles with 2 px padding, upscaled
    native = np.asarray(strip.resize((strip.width // scale, 36), Image.Resampling.NEAREST))
    assert np.array_equal(native[2:34, 2:34], np.asarray(open_png(projected["reconstruction"])))  # starts at G(z)
    # z_b, when given, is the end (it wins over seed_b)
    gif, strip = client.predict(
        z_a=handle_file(projected["z"]),
        seed_b=4,
        z_b=handle_file(projected["z"]),
        frames=3,
        api_name="/interpolate_latent",
    )
    assert "z_b" in open_png(strip).text and "seed_b" not in open_png(strip).text


def test_bad_latents_and_bad_uploads_get_clear_errors(client, app, projected, uploads, tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(5, np.float32))
    np.save(tmp_path / "nan.npy", np.full(8, np.nan, np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not an array")
    for name, problem in [
        ("short.npy", r"z_a: short.npy: shape \(5,\) does not fit this model; expected \(8,\)"),
        ("nan.npy", "z_a: nan.npy: 8 of 8 values are NaN or infinite"),
        ("objects.npy", "z_a: objects.npy: holds Python objects"),
        ("text.npy", "z_a: text.npy: not a .npy array file"),
    ]:
        with pytest.raises(AppError, match=problem):
            client.predict(z_a=handle_file(tmp_path / name), seed_b=1, api_name="/interpolate_latent")
    with pytest.raises(AppError, match=r"z_b: short.npy: shape \(5,\)"):
        client.predict(
            z_a=handle_file(projected["z"]), z_b=handle_file(tmp_path / "short.npy"), api_name="/interpolate_latent"
        )
    with pytest.raises(AppError, match="give the end of the walk: seed_b, or a second latent z_b"):
        client.predict(z_a=handle_file(projected["z"]), seed_b=None, api_name="/interpolate_latent")
    with pytest.raises(AppError, match="upload the start latent z_a"):
        client.predict(z_a=None, seed_b=1, api_name="/interpolate_latent")
    # bad image uploads get the Score tab's messages
    for name, problem in [
        ("notes.txt", "not an image"),
        ("empty.png", "the file is empty"),
        ("truncated.png", "the image data is truncated or corrupt"),
        ("tiny.png", "1x1 pixels is too small"),
        ("bomb.png", "400,000,000 pixels is over the limit"),
    ]:
        with pytest.raises(AppError, match=f"{name}: {problem}"):
            _project(client, uploads[name], steps=1, restarts=1)
    with pytest.raises(AppError, match="Value 1001 is greater than maximum value 1000"):
        _project(client, uploads["good.png"], steps=1001)
    assert app.alive()
    assert client.predict(seed=0, count=1, api_name="/sample")


def test_a_28x28_upload_is_padded_like_the_training_data(client, tmp_path):
    Image.new("L", (28, 28), 255).save(tmp_path / "white28.png")
    gallery, table, message, histogram = client.predict(
        images=[handle_file(tmp_path / "white28.png")], api_name="/score"
    )
    assert table["data"][0][3] == "28x28 padded to 32x32 like the training data"
    result = _project(client, tmp_path / "white28.png", steps=1, restarts=1)
    target = np.asarray(open_png(result["target"]))
    assert target.shape == (32, 32) and (target[2:30, 2:30] == 255).all() and target.sum() == 255 * 28 * 28
    assert "28x28 padded to 32x32 like the training data" in result["report"]


def _call(app, api_name: str, body: str) -> tuple[str, str]:
    """POST raw JSON to /gradio_api/call/API_NAME, then read its result: (SSE event, data) of the last message."""
    post = urllib.request.Request(
        f"{app.url}gradio_api/call/{api_name}", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(post, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{app.url}gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        messages = response.read().decode().strip().split("\n\n")
    event, data = (line.split(": ", 1)[1] for line in messages[-1].splitlines())
    return event, data


@pytest.fixture(scope="module")
def uploaded(app, uploads) -> str:
    """good.png uploaded to the app, as the FileData JSON that raw API calls send."""
    boundary = "dcgan-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="good.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    body = head.encode() + uploads["good.png"].read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    post = urllib.request.Request(
        f"{app.url}gradio_api/upload", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(post, timeout=30) as response:
        path = json.loads(response.read())[0]
    return json.dumps({"path": path, "meta": {"_type": "gradio.FileData"}})


SEED = f"seed must be a whole number between 0 and {2**32 - 1}"


@pytest.mark.parametrize(
    "api_name, data, message",
    [
        ("sample", "[NaN, 4, 0, 0]", SEED),
        ("sample", '["abc", 4, 0, 0]', SEED),
        ("sample", "[Infinity, 4, 0, 0]", SEED),
        ("sample", "[true, 4, 0, 0]", SEED),
        ("sample", '[0, "4", 0, 0]', "count must be a whole number between 1 and 64"),
        ("sample", "[0, NaN, 0, 0]", "count must be a whole number between 1 and 64"),
        ("sample", "[0, 4, NaN, 0]", "truncation must be a number between 0 and 3"),
        ("sample", '[0, 4, 0, "abc"]', "columns must be a whole number between 0 and 64"),
        ("sample", "[-1, 4, 0, 0]", "seed: Value -1 is less than minimum value 0"),
        ("sample_gallery", "[NaN, 4, 0]", SEED),
        ("nearest", '["abc", 0]', SEED),
        ("nearest", "[0, -Infinity]", "truncation must be a number between 0 and 3"),
        ("interpolate", '[0, NaN, 24, "slerp", false, 12]', SEED.replace("seed", "seed_b")),
        ("interpolate", '[0, 1, "many", "slerp", false, 12]', "frames must be a whole number between 2 and 120"),
        ("interpolate", '[0, 1, 24, "slerp", false, NaN]', "fps must be a number between 1 and 50"),
        ("interpolate", '[0, 1, 24, ["slerp"], false, 12]', r"mode must be one of lerp, slerp, got \['slerp'\]"),
        ("interpolate_latent", '[null, 1, null, 24, "slerp", false, "abc"]', "fps must be a number between 1 and 50"),
        ("project", "[FILE, NaN, 3]", "steps must be a whole number between 1 and 1000"),
        ("project", '[FILE, 20, "abc"]', "restarts must be a whole number between 1 and 8"),
    ],
)
def test_raw_json_numbers_get_the_apps_message(app, client, uploaded, api_name, data, message):
    """NaN, infinities, booleans and strings sent as raw JSON, which Gradio's own number checks fail on with a generic
    error, are named by the app's message; the app serves on."""
    event, answer = _call(app, api_name, f'{{"data": {data.replace("FILE", uploaded)}}}')
    assert event == "error" and re.search(message, json.loads(answer)["error"]), answer
    assert client.predict(seed=0, count=1, api_name="/sample")
