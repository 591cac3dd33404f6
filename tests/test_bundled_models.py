"""Both bundled models as the app lists them beside the model it serves (conftest's app, on the tiny export):
the picker lists each, and every endpoint that works on the session's model answers with each, through
gradio_client (the Train tab trains a model of its own, whatever is picked: tests/test_train_tab.py). The colour
model's memorisation check and Score's reference histogram read real emoji."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from helpers import needs_fashion_mnist, needs_noto_emoji, open_png
from PIL import Image

from gan import BUNDLED_MODELS
from gan.checkpoint import load_model
from gan.sampling import generate, latents_for_seeds
from gan.ui.project import max_projection_steps

pytestmark = pytest.mark.slow
NEEDS = {"dcgan-fashion-mnist": needs_fashion_mnist, "dcgan-noto-emoji": needs_noto_emoji}


def _bundled(folder: Path):
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder.name} is not in this checkout")
    return load_model(folder)


@pytest.mark.parametrize("folder", [pytest.param(f, marks=NEEDS[f.name], id=f.name) for f in BUNDLED_MODELS])
def test_every_endpoint_answers_with_each_bundled_model(app, folder, tmp_path):
    model = _bundled(folder)
    size, channels = model.config.image_size, model.config.nc
    client = Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
    choices = client.view_api(return_format="dict")["named_endpoints"]["/select_model"]["parameters"][0]
    label = f"{folder.name} (bundled)"
    assert {f"{f.name} (bundled)" for f in BUNDLED_MODELS if f.is_dir()} <= set(choices["type"]["enum"])
    summary = client.predict(model=label, revision="", api_name="/select_model")
    assert f"**From:** `models/{folder.name}`" in summary and f"**Dataset:** {model.metadata['dataset']}" in summary

    mode = "RGB" if channels == 3 else "L"
    assert open_png(client.predict(seed=0, count=4, api_name="/sample")).mode == mode
    gallery = client.predict(seed=0, count=2, api_name="/sample_gallery")  # each sample at its native size
    expected = generate(model.generator, latents_for_seeds(0, 1, model.config.nz))[0].permute(1, 2, 0).numpy()
    single = np.asarray(open_png(gallery[0]["image"]))
    assert len(gallery) == 2 and np.array_equal(single.reshape(size, size, channels), expected)  # its own pixels

    gallery, note = client.predict(seed=3, api_name="/nearest")  # the memorisation check, on its own data
    assert len(gallery) == 9 and f"nearest of {len(_data(model)):,} {model.metadata['dataset']} training" in note
    gif, strip = client.predict(seed_a=1, seed_b=2, frames=3, mode="slerp", api_name="/interpolate")
    assert Image.open(gif).n_frames == 3 and open_png(strip).mode == mode

    upload = tmp_path / "upload.png"
    Image.fromarray(expected if channels == 3 else expected[..., 0]).resize((96, 96)).save(upload)
    target, reconstruction, z, distance, *_ = client.predict(
        image=handle_file(upload), steps=20, restarts=1, api_name="/project"
    )
    assert open_png(reconstruction).size == (size, size) and 0 <= float(distance) < 1
    walk, _ = client.predict(z_a=handle_file(z), seed_b=1, frames=3, mode="lerp", api_name="/interpolate_latent")
    assert Image.open(walk).n_frames == 3

    seen, table, message, histogram = client.predict(images=[handle_file(upload)], api_name="/score")
    assert len(table["data"]) == 1 and message == "All files scored." and open_png(histogram).width >= 600
    assert open_png(histogram).text["real_scores"] == "512"  # the reference: real images of its own dataset
    maps = client.predict(images=[handle_file(upload)], seed=0, api_name="/saliency")[0]
    assert [item["caption"].split(" ", 1)[1] for item in maps] == ["upload.png", "seed 0"]  # the upload, a sample
    figure, result, _ = client.predict(seeds_a="1", seeds_b="2", seeds_c="3", neighbours=0, api_name="/arithmetic")
    assert open_png(result).size[0] >= size
    sample, strips, table, _ = client.predict(seed=0, d1=1.0, api_name="/directions")
    assert open_png(sample).size[0] >= size and len(table["data"]) == 8


def _data(model):
    from gan.data import load_dataset

    return load_dataset(model.metadata["dataset"], image_size=model.config.image_size, download=False)


def test_a_costlier_model_projects_fewer_steps():
    from gan.models import ModelConfig
    from gan.ui.project import step_cost

    grey = ModelConfig(nz=100, ngf=64, ndf=64, nc=1, image_size=32)
    colour = ModelConfig(nz=100, ngf=64, ndf=64, nc=3, image_size=64)
    assert step_cost(grey) == 1 and 5.5 < step_cost(colour) < 6.5  # a 64 px colour model costs about 6x
    assert max_projection_steps(grey) == 1000 and max_projection_steps(colour) == int(1000 / step_cost(colour))
