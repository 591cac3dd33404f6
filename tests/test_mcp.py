"""The app as an MCP server: the tools it lists, with their parameters documented from the handlers' docstrings, and
a real MCP client calling `sample` over streamable HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from gan.checkpoint import load_model
from gan.sampling import generate, grid_image, latents_for_seeds, upscale

pytestmark = pytest.mark.slow

TOOLS = {
    "select_model": ["model", "revision"],
    "sample": ["seed", "count", "truncation", "columns"],
    "sample_gallery": ["seed", "count", "truncation"],
    "nearest": ["seed", "truncation"],
    "interpolate": ["seed_a", "seed_b", "frames", "mode", "pingpong", "fps"],
    "project": ["image", "steps", "restarts"],
    "interpolate_latent": ["z_a", "seed_b", "z_b", "frames", "mode", "pingpong", "fps"],
    "score": ["images", "folder"],
    "saliency": ["images", "folder", "seed"],
    "arithmetic": ["seeds_a", "seeds_b", "seeds_c", "z_a", "z_b", "z_c", "neighbours", "noise", "noise_seed"],
    "directions": ["seed", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"],
    "train": ["seed", "seconds", "data", "images", "recipe", "lr", "width", "batch_size", "steps"],
}


def test_the_mcp_schema_lists_the_public_tools_with_documented_parameters(app):
    with urllib.request.urlopen(app.url + "gradio_api/mcp/schema", timeout=30) as response:
        tools = {tool["name"]: tool for tool in json.load(response)}
    assert {name: list(tool["inputSchema"]["properties"]) for name, tool in tools.items()} == TOOLS
    for name, tool in tools.items():
        assert tool["description"], name
        for parameter, schema in tool["inputSchema"]["properties"].items():
            assert schema.get("description"), f"{name}({parameter}) has no description"
    assert tools["sample"]["inputSchema"]["properties"]["count"]["description"] == "how many samples, 1 to 64"


async def _call_sample(url: str) -> list:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            assert sorted(tool.name for tool in listed.tools) == sorted(TOOLS)
            result = await session.call_tool("sample", {"seed": 5, "count": 4})
            assert not result.isError, result.content
            return result.content


def test_an_mcp_client_gets_the_seeded_grid_from_sample(app, tiny_run):
    content = asyncio.run(_call_sample(app.url))
    images = [item for item in content if item.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png", content
    served = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    model = load_model(tiny_run / "model")
    expected = upscale(grid_image(generate(model.generator, latents_for_seeds(5, 4, model.config.nz))))
    assert np.array_equal(np.asarray(served.convert(expected.mode)), np.asarray(expected))


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
