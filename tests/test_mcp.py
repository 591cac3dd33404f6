"""The app as an MCP server (gan/ui/mcp.py), through the `mcp` package's streamable-HTTP client: every listed tool
called on the launched app, each result checked to be what an agent can use (images it can see and whose URLs the app
serves, with the package's own pixels; URLs it can pass on; errors as one line), each MCP client a session of its own,
a killed client's Train run stopped, and a start-up without warnings."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import safehttpx
from PIL import Image

from gan import BUNDLED_MODEL
from gan.checkpoint import load_model
from gan.explore import arithmetic, move, principal_directions
from gan.projection import load_latent
from gan.sampling import generate, grid_image, latent_for_seed, latents_for_seeds, to_pil, upscale
from gan.scoring import score_files
from gan.ui.picker import label

pytestmark = pytest.mark.slow

TOOLS = {
    "select_model": ["model", "revision"],
    "sample": ["seed", "count", "truncation", "columns"],
    "sample_gallery": ["seed", "count", "truncation"],
    "nearest": ["seed", "truncation"],
    "interpolate": ["seed_a", "seed_b", "frames", "mode", "pingpong", "fps"],
    "project": ["image", "steps", "restarts"],
    "interpolate_latent": ["z_a", "seed_b", "z_b", "frames", "mode", "pingpong", "fps"],
    "score": ["images"],
    "saliency": ["images", "seed"],
    "arithmetic": ["seeds_a", "seeds_b", "seeds_c", "z_a", "z_b", "z_c", "neighbours", "noise", "noise_seed"],
    "directions": ["seed", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"],
    "train": ["seed", "seconds", "data", "images", "recipe", "lr", "width", "batch_size", "steps"],
    "stop_training": [],
}
FILES = {"project": ["image"], "interpolate_latent": ["z_a", "z_b"], "score": ["images"], "saliency": ["images"]}
FILES |= {"arithmetic": ["z_a", "z_b", "z_c"], "train": ["images"]}
STEP = re.compile(r"\*\*Step (\d+)\*\*")


@contextlib.asynccontextmanager
async def connected(app):
    """An MCP client session on the app."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(app.url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


@dataclass
class Shown:
    """A file a tool returned: its label (or caption), its URL, and its image content where it is an image."""

    label: str
    url: str
    data: bytes | None
    mime: str | None

    @property
    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.data))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def shown(result) -> list[Shown]:
    """The files of a successful result, each image's bytes checked to be what its URL serves."""
    assert not result.isError, result.content
    files, image = [], None
    for item in result.content:
        if item.type == "image":
            image = item
        elif "/gradio_api/file=" in item.text:
            caption, url = item.text.rsplit(": ", 1)
            data = base64.b64decode(image.data) if image else None
            files.append(Shown(caption, url, data, image.mimeType if image else None))
            image = None
    for file in files:
        if file.data is not None:
            assert fetch(file.url) == file.data
            assert file.mime == {"PNG": "image/png", "GIF": "image/gif"}[file.image.format]
    return files


def texts(result) -> list[str]:
    return [item.text for item in result.content if item.type == "text" and "/gradio_api/file=" not in item.text]


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def npy(z: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, z.astype(np.float32))
    return buffer.getvalue()


def one_line_error(result) -> str:
    assert result.isError and len(result.content) == 1, result.content
    message = result.content[0].text
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_tools_are_listed_with_schemas_an_agent_can_fill(app, model):
    async def scenario():
        async with connected(app) as session:
            return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(scenario())}
    assert {name: list(tool.inputSchema["properties"]) for name, tool in tools.items()} == TOOLS
    for name, tool in tools.items():
        assert tool.description, name
        assert "$defs" not in json.dumps(tool.inputSchema) and "$ref" not in json.dumps(tool.inputSchema), name
        for parameter, schema in tool.inputSchema["properties"].items():
            assert schema.get("description"), f"{name}({parameter}) has no description"
            if parameter in FILES.get(name, []):  # URLs, as text
                assert schema["type"] == "string" or schema["items"] == {"type": "string"}, (name, parameter)
                assert "data: URL" in schema["description"]
    assert tools["sample"].inputSchema["properties"]["count"]["description"] == "how many samples, 1 to 64."
    assert tools["select_model"].inputSchema["properties"]["model"] == {  # any Hub repo id, not only the listed
        "type": "string",
        "description": "a listed model's label, or a Hub repo id (USER/NAME) of a DCGAN Studio model.",
        "default": label(model),  # the app's model
    }
    assert tools["train"].inputSchema["properties"]["batch_size"]["enum"] == [16, 32, 64, 128]
    assert tools["project"].inputSchema["required"] == ["image"]
    assert "required" not in tools["select_model"].inputSchema  # revision: the handler's default, main
    # and the schema route lists the same (what Hugging Face reads of an MCP Space)
    listed = json.loads(fetch(app.url + "gradio_api/mcp/schema"))
    assert [(t["name"], t["inputSchema"]) for t in listed] == [(t.name, t.inputSchema) for t in tools.values()]


def test_sample_and_its_gallery_come_back_as_the_seeded_images(app, model):
    async def scenario():
        async with connected(app) as session:
            return await session.call_tool("sample", {"seed": 5, "count": 4}), await session.call_tool(
                "sample_gallery", {"seed": 5, "count": 3}
            )

    grid, gallery = asyncio.run(scenario())
    expected = generate(model.generator, latents_for_seeds(5, 4, model.config.nz))
    [served] = shown(grid)
    assert served.label == "Samples"
    assert np.array_equal(np.asarray(served.image.convert("L")), np.asarray(upscale(grid_image(expected))))
    singles = shown(gallery)
    assert [single.label for single in singles] == ["seed 5", "seed 6", "seed 7"]
    for single, image in zip(singles, expected, strict=False):
        assert np.array_equal(np.asarray(single.image), np.asarray(to_pil(image)))


def test_nearest_interpolate_and_directions(app, model):
    async def scenario():
        async with connected(app) as session:
            return [
                await session.call_tool("nearest", {"seed": 3}),
                await session.call_tool("interpolate", {"seed_a": 1, "seed_b": 2, "frames": 5, "mode": "lerp"}),
                await session.call_tool("directions", {"seed": 4, "d1": 1.5, "d3": -2}),
            ]

    nearest, walk, directions = asyncio.run(scenario())
    sample, *neighbours = shown(nearest)
    seed_3 = generate(model.generator, latent_for_seed(3, model.config.nz)[None])[0]
    assert sample.label == "seed 3" and np.array_equal(np.asarray(sample.image), np.asarray(to_pil(seed_3)))
    assert len(neighbours) == 8 and all(re.fullmatch(r"#\d+: \d+\.\d\d", n.label) for n in neighbours)
    assert "8 nearest of 64 mnist training images" in texts(nearest)[0]
    animation, strip = shown(walk)
    assert animation.image.format == "GIF" and animation.image.n_frames == 5 and strip.image.format == "PNG"
    moved_sample, strips, z_file = shown(directions)
    found = principal_directions(model.generator)
    offsets = [1.5, 0, -2] + [0] * (min(8, len(found.vectors)) - 3)
    moved = move(latent_for_seed(4, model.config.nz), found.vectors, offsets)
    assert np.array_equal(np.asarray(moved_sample.image), np.asarray(to_pil(generate(model.generator, moved[None])[0])))
    assert strips.data is not None and z_file.data is None and z_file.url.endswith(".npy")
    assert np.allclose(np.load(io.BytesIO(fetch(z_file.url))), moved.numpy(), atol=1e-6)
    [table] = texts(directions)
    assert json.loads(table.split(": ", 1)[1])["headers"] == ["direction", "variance explained (%)", "cumulative (%)"]


def test_file_inputs_by_url_and_data_url_chain_project_interpolate_score_saliency_and_arithmetic(app, model, tmp_path):
    ones = npy(np.ones(model.config.nz))
    drawn = png(Image.fromarray(np.linspace(0, 255, 40 * 40).reshape(40, 40).astype(np.uint8)))

    async def scenario():
        async with connected(app) as session:
            [sample] = shown(await session.call_tool("sample_gallery", {"seed": 7, "count": 1}))
            projected = await session.call_tool("project", {"image": sample.url, "steps": 5, "restarts": 1})
            z_url = shown(projected)[2].url
            return (
                sample,
                projected,
                [
                    await session.call_tool(
                        "interpolate_latent", {"z_a": z_url, "z_b": data_url(ones), "frames": 4, "mode": "lerp"}
                    ),
                    await session.call_tool("score", {"images": [sample.url, data_url(drawn)]}),
                    await session.call_tool("saliency", {"images": [data_url(drawn)], "seed": 2}),
                    await session.call_tool(
                        "arithmetic", {"seeds_a": "1", "seeds_b": "", "z_b": [z_url], "seeds_c": "3", "neighbours": 2}
                    ),
                ],
            )

    sample, projected, (walk, scored, maps, sums) = asyncio.run(scenario())
    # project read the sample by its URL (the app's own file route): the target is the sample itself, at 32x32
    target, reconstruction, z_file, curve = shown(projected)
    assert np.array_equal(np.asarray(target.image), np.asarray(sample.image))
    assert reconstruction.image.size == (32, 32) and curve.data is not None
    assert texts(projected)[0].startswith("Distance (mean absolute pixel error, 0 to 1): ")
    z = load_latent(_saved(tmp_path / "z.npy", fetch(z_file.url)), model.config.nz)
    animation, _ = shown(walk)
    assert animation.image.n_frames == 4
    # score: both uploads, with the logits the package gives for the same bytes
    files = {"sample.png": fetch(sample.url), "images-1.png": drawn}
    paths = [_saved(tmp_path / name, data) for name, data in files.items()]
    expected = {s.name: round(s.logit, 4) for s in score_files(model.discriminator, paths)[0]}
    table = json.loads(next(t for t in texts(scored) if t.startswith("Scores: ")).split(": ", 1)[1])
    logits = {row[0]: row[1] for row in table["data"]}
    assert logits == {Path(sample.url).name: expected["sample.png"], "images-1.png": expected["images-1.png"]}
    assert len(shown(scored)) == 3  # the two as the discriminator sees them, and the histogram
    assert [m.label.split(" ", 1)[1] for m in shown(maps)] == ["images-0.png", "seed 2"]
    # arithmetic: seed 1 - the projected z + seed 3, as the package computes it
    figure, alone, result_z = shown(sums)
    nz = model.config.nz
    result = arithmetic(model.generator, latent_for_seed(1, nz)[None], z[None], latent_for_seed(3, nz)[None], 2)
    assert np.array_equal(np.asarray(alone.image), np.asarray(to_pil(result.image)))
    assert figure.data is not None and result_z.url.endswith(".npy")


def _saved(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_errors_are_one_line_and_no_url_reads_what_the_app_does_not_serve(app):
    async def scenario():
        async with connected(app) as session:
            return [
                await session.call_tool("sample", {"seed": -1, "count": 2}),
                await session.call_tool("project", {"image": app.url + "gradio_api/file=/etc/passwd"}),
                await session.call_tool("project", {"image": "ftp://example.com/x.png"}),
                await session.call_tool("project", {"image": "data:image/png;base64,@@"}),
                await session.call_tool("score", {"images": [data_url(b"this is not an image\n", "text/plain")]}),
                await session.call_tool("interpolate_latent", {"z_a": data_url(b"not a latent", "text/plain")}),
            ]

    bad_seed, passwd, ftp, base64_error, not_image, not_latent = asyncio.run(scenario())
    assert one_line_error(bad_seed) == "seed: Value -1 is less than minimum value 0"
    assert one_line_error(passwd) == (
        "image: 127.0.0.1 is not a public address; give a public URL, a file URL this server returned, or a data: URL"
    )
    assert one_line_error(ftp) == "image: give an http(s) URL or a data: URL, not 'ftp://example.com/x.png'"
    assert one_line_error(base64_error) == "image: the data: URL's content is not valid base64"
    assert one_line_error(not_image).startswith("no usable image: images-0.txt: ")
    assert one_line_error(not_latent).startswith("z_a: z_a.txt: not a .npy array file")


def test_each_mcp_client_has_its_own_model(app, model):
    bundled = load_model(BUNDLED_MODEL)

    async def scenario():
        async with connected(app) as first, connected(app) as second:
            chosen = await first.call_tool("select_model", {"model": label(bundled)})
            return (
                chosen,
                await first.call_tool("sample", {"seed": 0, "count": 1}),
                await second.call_tool("sample", {"seed": 0, "count": 1}),
                await first.call_tool("select_model", {"model": "not a model"}),
            )

    chosen, first, second, refused = asyncio.run(scenario())
    assert texts(chosen)[0].startswith("**Model:** dcgan-fashion-mnist")
    for result, expected in ((first, bundled), (second, model)):
        grid = upscale(grid_image(generate(expected.generator, latents_for_seeds(0, 1, expected.config.nz))))
        assert np.array_equal(np.asarray(shown(result)[0].image.convert("L")), np.asarray(grid))
    assert one_line_error(refused) == "'not a model' is neither a listed model nor a Hub repo id (USER/NAME)"


def _training_zip(count: int = 64) -> bytes:
    """A zip of `count` small grey images: the data of a Train run."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            archive.writestr(f"blob-{i}.png", png(Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8))))
    return buffer.getvalue()


TRAIN = {"data": "images", "width": "tiny", "batch_size": 16}
LONG = timedelta(seconds=300)


def _trained(result, folder: Path):
    """The numbers of a finished Train call, and its model, from the zip its URL serves."""
    numbers = json.loads(next(text for text in texts(result) if text.startswith("{")))
    [export] = [file for file in shown(result) if file.label.startswith("Download your model")]
    with zipfile.ZipFile(io.BytesIO(fetch(export.url))) as archive:
        archive.extractall(folder)
    return numbers, load_model(next(folder.iterdir()))


CLIENT = """
import asyncio, json, re, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url, arguments):
    async def progress(_, __, message):
        found = re.match(r"\\*\\*Step (\\d+)\\*\\*", message or "")
        if found and int(found[1]) >= 1:
            print("stepping", flush=True)
    async with streamable_http_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("train", arguments, progress_callback=progress)

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


def test_train_in_turn_a_killed_clients_run_stops_and_stop_training_keeps_the_model(app, tmp_path):
    """One run at a time: a client's run waits for another client's (rather than being refused as the same visitor),
    starts when that client is killed (its run stopped with it), streams progress, and stop_training ends it with the
    model as trained so far, which is then that client's model."""
    arguments = {**TRAIN, "images": [data_url(_training_zip(), "application/zip")], "seconds": 300}
    killed = subprocess.Popen(
        [sys.executable, "-c", CLIENT, app.url + "gradio_api/mcp/", json.dumps(arguments)],
        stdout=subprocess.PIPE,
        text=True,
    )

    async def scenario():
        async with connected(app) as session:
            queued, stepping, updates = asyncio.Event(), asyncio.Event(), []

            async def progress(_, __, message):
                updates.append(message or "")
                if updates[-1].startswith("waiting in the queue: position 1"):
                    queued.set()
                found = STEP.match(updates[-1])
                if found and int(found[1]) >= 1:
                    stepping.set()

            run = asyncio.create_task(
                session.call_tool("train", arguments, read_timeout_seconds=LONG, progress_callback=progress)
            )
            await asyncio.wait_for(queued.wait(), 60)
            killed.kill()
            await asyncio.wait_for(stepping.wait(), 120)  # its run started: the killed client's has stopped
            stopped = await session.call_tool("stop_training", {})
            return updates, stopped, await run, await session.call_tool("sample", {"seed": 0, "count": 4})

    try:
        assert killed.stdout.readline() == "stepping\n"
        updates, stopped, trained, sample = asyncio.run(scenario())
    finally:
        killed.kill()
        killed.wait()
    assert any(update.startswith("Reading your images") for update in updates)
    assert not stopped.isError and texts(stopped) == ["Done."]
    numbers, model = _trained(trained, tmp_path)
    assert numbers["state"] == "stopped" and numbers["step"] >= 1
    grid = upscale(grid_image(generate(model.generator, latents_for_seeds(0, 4, model.config.nz))))
    assert np.array_equal(np.asarray(shown(sample)[0].image.convert("L")), np.asarray(grid))


def test_a_run_over_the_cap_is_refused_in_one_line(app):
    """A client's second Train run while its first waits or runs: refused before it is queued (the app's validator),
    with the cap's sentence alone, as the page shows it."""
    arguments = {**TRAIN, "images": [data_url(_training_zip(), "application/zip")], "seconds": 300}

    async def scenario():
        async with connected(app) as session:
            admitted = asyncio.Event()

            async def progress(_, __, message):
                admitted.set()  # waiting in the queue, or reading the images: admitted

            run = asyncio.create_task(
                session.call_tool("train", arguments, read_timeout_seconds=LONG, progress_callback=progress)
            )
            await asyncio.wait_for(admitted.wait(), 60)
            refused = await session.call_tool("train", arguments)
            await session.call_tool("stop_training", {})
            await run
            return refused

    assert one_line_error(asyncio.run(scenario())) == (
        "you already have 1 training run(s) queued or running (at most 1 per visitor); wait for one to finish"
    )


class _Files(BaseHTTPRequestHandler):
    """A file server: /small.png, /moved (a redirect to it), /big (one byte over the app's upload cap), /missing."""

    small = png(Image.new("L", (16, 16), 90))

    def do_GET(self):
        from gan.ui.limits import MAX_UPLOAD_BYTES

        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/small.png")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        body = self.small if self.path == "/small.png" else b"\0" * (MAX_UPLOAD_BYTES + 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the client closing the big file's connection early


def test_public_urls_are_fetched_within_the_caps(tmp_path, monkeypatch):
    """The fetch of a public URL, in-process against a local server: only safehttpx's check that an address is
    public is replaced (it refuses this loopback server, as the app test above shows), the HTTP is real."""
    from gradio_client.utils import is_file_obj_with_meta

    from gan.ui.mcp import Tool, ToolInputError, fetch_files

    async def loopback_is_public(host):
        return "127.0.0.1"

    monkeypatch.setattr(safehttpx, "async_validate_url", loopback_is_public)
    server = _Server(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    tool = Tool("score", "", {}, {"images": True}, {}, [])
    try:
        got = asyncio.run(fetch_files(tool, {"images": [f"{base}/small.png", f"{base}/moved"]}, tmp_path / "a", []))
        assert all(is_file_obj_with_meta(file) for file in got["images"])
        assert [Path(file["path"]).read_bytes() for file in got["images"]] == [_Files.small] * 2
        assert [Path(file["path"]).name for file in got["images"]] == ["small.png", "moved"]
        with pytest.raises(ToolInputError, match=r"^images\[0\]: http://127.0.0.1:\d+/big is larger than 32 MiB$"):
            asyncio.run(fetch_files(tool, {"images": [f"{base}/big"]}, tmp_path / "b", []))
        with pytest.raises(ToolInputError, match=r"^images\[0\]: http://127.0.0.1:\d+/missing answered HTTP 404$"):
            asyncio.run(fetch_files(tool, {"images": [f"{base}/missing"]}, tmp_path / "c", []))
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ToolInputError, match=r"^images\[0\]: .* could not be fetched \(ConnectError\)$"):
        asyncio.run(fetch_files(tool, {"images": [f"{base}/small.png"]}, tmp_path / "d", []))  # nobody listens


def test_the_app_starts_without_warnings(app):
    started = Path(app.log).read_text().split("Running on local URL")[0]
    assert "Warning" not in started, started


def test_no_mcp_serves_the_app_without_the_mcp_server(tiny_run, tmp_path):
    from helpers import RunningApp

    app = RunningApp(tmp_path / "app.log", ["--checkpoint", str(tiny_run / "model"), "--no-mcp"])
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(app.url + "gradio_api/mcp/schema", timeout=30)
        assert refused.value.code == 404
        assert app.alive()
    finally:
        app.stop()
