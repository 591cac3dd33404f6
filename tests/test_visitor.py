"""What a web visitor gets from the launched app, driven with gradio_client: no file or message names a server path
(the app's temporary folders, a run's folder or data, the checkout, the home folder), and the messages are the app's
own words, not the command line's (flags, environment variables) nor Gradio's validation wording."""

from __future__ import annotations

import io
import json
import resource
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import RunningApp, assert_no_server_paths, assert_web_words, server_paths
from hub_server import FakeHub, hub_env
from images_for_tests import blob_pngs, write_zip
from PIL import Image

from gan.uploads import MIN_IMAGES

pytestmark = pytest.mark.slow

TINY = {"width": "tiny", "batch_size": 16}
TINY_CHECKPOINT_BYTES = 1_100_000  # a training state of the tiny width, about: over the file-size limit below


def _pieces(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """A handed-out file as what a visitor can read of it: its bytes, each member of a zip (in turn), an image's
    metadata (PNG text chunks, compressed or not; a GIF's comment)."""
    yield name, data
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _pieces(f"{name}/{member}", archive.read(member))
        return
    try:
        image = Image.open(io.BytesIO(data))
    except OSError:
        return
    yield f"{name} (metadata)", json.dumps(image.info, default=repr).encode()


def handed_out(value, where: str, downloads: Path) -> Iterator[tuple[str, bytes]]:
    """Every piece of an endpoint's outputs (as gradio_client returns them: files downloaded into `downloads`,
    galleries as lists of image and caption): files through `_pieces`, anything else as its JSON."""
    if isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from handed_out(item, f"{where}[{index}]", downloads)
    elif isinstance(value, dict) and "image" in value:  # a gallery item
        yield from handed_out(value["image"], f"{where} image", downloads)
        yield f"{where} caption", json.dumps(value.get("caption")).encode()
    elif isinstance(value, str) and value.startswith(f"{downloads}/"):
        yield from _pieces(f"{where} {Path(value).name}", Path(value).read_bytes())
    else:
        yield where, json.dumps(value).encode()


@pytest.fixture(scope="module")
def blobs_zip(tmp_path_factory) -> Path:
    return write_zip(tmp_path_factory.mktemp("zips") / "blobs.zip", blob_pngs(MIN_IMAGES))


def test_no_file_or_message_the_app_hands_out_names_a_server_path(app, tiny_run, idx_dir, blobs_zip, tmp_path):
    """Every endpoint once, on the tiny model and a Train run of the visitor's images: every file (each member of
    the run's zip, PNG and GIF metadata, the .npy latents), every caption, message and number."""
    downloads = tmp_path / "downloads"
    client = Client(app.url, verbose=False, download_files=str(downloads))
    image = handle_file(str(Path(__file__).parent.parent / "examples" / "drawn-tshirt.png"))
    train = client.submit(
        seed=1, seconds=300, data="images", images=[handle_file(str(blobs_zip))], steps=8, **TINY, api_name="/train"
    )
    final = train.result(timeout=120)
    assert final[4].endswith(".zip")
    z_file = client.predict(image=image, steps=1, restarts=1, api_name="/project")[2]
    outputs = {
        "train": [*train.outputs(), final],
        "project": z_file,
        "sample": client.predict(seed=1, count=4, api_name="/sample"),
        "sample_gallery": client.predict(seed=1, count=2, api_name="/sample_gallery"),
        "nearest": client.predict(seed=1, api_name="/nearest"),
        "interpolate": client.predict(seed_a=1, seed_b=2, frames=3, api_name="/interpolate"),
        "interpolate_latent": client.predict(z_a=handle_file(z_file), seed_b=2, api_name="/interpolate_latent"),
        "score": client.predict(images=[image], api_name="/score"),
        "saliency": client.predict(images=[image], seed=2, api_name="/saliency"),
        "arithmetic": client.predict(seeds_a="1, 2", seeds_b="3", seeds_c="4", neighbours=2, api_name="/arithmetic"),
        "directions": client.predict(seed=3, d1=1.5, api_name="/directions"),
        "select_model": client.predict(revision="", api_name="/select_model"),  # the app's model: its summary
    }
    forbidden = server_paths(tiny_run, idx_dir)
    pieces = [piece for name, value in outputs.items() for piece in handed_out(value, name, downloads)]
    names = {name.rsplit("/", 1)[-1] for name, _ in pieces}
    assert {"config.json", "metrics.jsonl", "samples.png", "model.safetensors"} <= names  # the zip's members
    assert any(name.endswith(".npy") for name in names) and any(name.endswith(".gif") for name in names)
    for name, data in pieces:
        assert_no_server_paths(data, forbidden, name)


@pytest.mark.hub
def test_the_model_picker_says_hub_failures_in_the_apps_words(tiny_run, tmp_path):
    """A missing repo, a private one and a missing revision, typed into the picker of an app online (as on a Space):
    what is wrong and whose it is to fix, not `hf auth login`, --hub-token or the server's HF_ENDPOINT."""
    with FakeHub() as hub:
        hub.create_repo("alice/secret", private=True)
        hub.create_repo("alice/public")
        env = hub_env(hub, tmp_path / "hf", GRADIO_ANALYTICS_ENABLED="False")
        app = RunningApp(tmp_path / "app.log", ["--checkpoint", str(tiny_run / "model")], env)
        try:
            client, refusals = Client(app.url, verbose=False), {}
            for repo, revision in (("alice/missing", ""), ("alice/secret", ""), ("alice/public", "v9")):
                with pytest.raises(AppError) as refused:
                    client.predict(model=repo, revision=revision, api_name="/select_model")
                refusals[repo] = str(refused.value)
        finally:
            app.stop()
    private = "not found, or it is private: this app needs a token that can read it"
    assert refusals == {
        "alice/missing": f"model repo alice/missing {private}",
        "alice/secret": f"model repo alice/secret {private}",
        "alice/public": "revision 'v9' not found in alice/public: give a branch, tag or commit of the repo",
    }
    for message in refusals.values():
        assert_web_words(message)
        assert hub.url not in message


def test_a_full_disk_ends_a_train_run_in_the_apps_words(tiny_run, blobs_zip, tmp_path):
    """A Train run whose trainer cannot write its last training state, as on a full disk: a file-size limit on the
    app (RLIMIT_FSIZE, which its trainer inherits) makes that write fail with EFBIG, one of the errors of a full or
    failing disk. The visitor reads that the server could not save the run, not the trainer's advice to free space
    and continue with `--out ./run --resume auto`."""
    app = RunningApp(tmp_path / "app.log", ["--checkpoint", str(tiny_run / "model")])
    try:
        hard = resource.prlimit(app.process.pid, resource.RLIMIT_FSIZE)[1]
        resource.prlimit(app.process.pid, resource.RLIMIT_FSIZE, (TINY_CHECKPOINT_BYTES // 2, hard))
        client = Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
        with pytest.raises(AppError) as failed:
            client.predict(data="images", images=[handle_file(str(blobs_zip))], steps=8, **TINY, api_name="/train")
        assert app.alive()
    finally:
        app.stop()
    message = str(failed.value)
    assert message == (
        "the server could not save your run (its disk is full or failing): it stopped at step 8 and was not kept; "
        "try again later"
    )
