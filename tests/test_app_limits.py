"""The launched app shared with visitors who flood it, and serving a model whose discriminator is broken: projections
are capped per visitor and per address when they are queued (refused with the app's message while others are served),
a projection stops when its client goes, and NaN scores still render with a note saying so.

The app serves an untrained export of the bundled model's shape, so that a full-budget projection runs long enough to
queue others behind it, with a NaN in its discriminator's last convolution: every score is NaN, while projection (which
matches the layers before it) works. Every test leaves no projection running or queued behind it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from helpers import RunningApp
from PIL import Image

from gan.checkpoint import export_model
from gan.models import Discriminator, Generator, ModelConfig
from gan.ui.limits import JOB_CAPS

pytestmark = pytest.mark.slow


CAPS = JOB_CAPS["projection"]
FULL_BUDGET = (1000, 8)  # MAX_PROJECTION_STEPS, MAX_RESTARTS: tens of seconds with this model on a CPU

LEAVER = """
import os, sys, time
from gradio_client import Client, handle_file
job = Client(sys.argv[1], verbose=False).submit(image=handle_file(sys.argv[2]), steps=1000, restarts=8,
                                                api_name="/project")
while job.status().code.name != "PROCESSING":
    time.sleep(0.05)
time.sleep(1)
os._exit(0)  # gone, without a word to the server
"""


@pytest.fixture(scope="module")
def broken_app(tmp_path_factory, idx_dir):
    torch.manual_seed(0)
    generator, discriminator = Generator(ModelConfig()), Discriminator(ModelConfig())
    with torch.no_grad():
        discriminator.main[-1].weight.view(-1)[0] = float("nan")
    folder = tmp_path_factory.mktemp("broken") / "broken-export"
    export_model(
        folder,
        generator,
        discriminator,
        {"name": "broken", "dataset": "mnist", "training": {"args": {"data_dir": str(idx_dir)}}},
    )
    running = RunningApp(tmp_path_factory.mktemp("broken-app") / "app.log", ["--checkpoint", str(folder)])
    yield running
    running.stop()


def _upload(app, path: Path) -> str:
    """The file uploaded to the app, as the FileData JSON that raw API calls send."""
    boundary = "dcgan-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n\r\n'
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    post = urllib.request.Request(
        f"{app.url}gradio_api/upload", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(post, timeout=30) as response:
        return json.dumps({"path": json.loads(response.read())[0], "meta": {"_type": "gradio.FileData"}})


def _queue_projection(app, image: str, session: str | None = None) -> tuple[int, dict]:
    """POST a full-budget /project over the raw API (a fresh session per call unless `session`); returns the HTTP
    status and its JSON: the event id, or the refusal."""
    body = {"data": "DATA", **({"session_hash": session} if session else {})}
    data = json.dumps(body).replace('"DATA"', f"[{image}, {FULL_BUDGET[0]}, {FULL_BUDGET[1]}]").encode()
    post = urllib.request.Request(
        f"{app.url}gradio_api/call/project", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(post, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _leave(app, event_id: str) -> None:
    """Open the result stream of an event's session and drop it: what a client that goes does."""
    urllib.request.urlopen(f"{app.url}gradio_api/call/project/{event_id}", timeout=30).close()


def _stopped_lines(app) -> list[str]:
    return re.findall(r"projection stopped after \d+ of \d+ steps", Path(app.log).read_text())


def _wait_for(condition, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def test_nan_scores_render_with_a_note(broken_app, uploads):
    client = Client(broken_app.url, verbose=False)
    names = ["good.png", "rgb.jpg", "notes.txt"]
    gallery, table, message, histogram = client.predict(
        images=[handle_file(uploads[n]) for n in names], api_name="/score"
    )
    assert [row[1:3] for row in table["data"]] == [["NaN", "NaN"]] * 2
    assert sorted(row[0] for row in table["data"]) == ["good.png", "rgb.jpg"]
    assert len(gallery) == 2 and all(item["caption"].startswith("NaN ") for item in gallery)
    assert "notes.txt: not an image" in message
    assert "**Scores not finite:** the discriminator's logit is NaN or infinite for 2 of 2 upload(s)" in message
    assert "512 of 512 reference scores on generated samples and 64 of 64 reference scores on real" in message
    drawn = Image.open(histogram)
    assert drawn.format == "PNG" and drawn.text["not_finite"] == str(2 + 512 + 64)
    assert (drawn.text["generated_scores"], drawn.text["real_scores"], drawn.text["uploads"]) == ("0", "0", "0")
    assert broken_app.alive()


def test_projections_are_capped_per_visitor_and_per_address(broken_app, uploads):
    image = _upload(broken_app, uploads["good.png"])
    flooder = Client(broken_app.url, verbose=False)
    mine = [_queue_projection(broken_app, image, flooder.session_hash) for _ in range(CAPS.per_session)]
    assert [status for status, _ in mine] == [200] * CAPS.per_session
    with pytest.raises(httpx.HTTPStatusError) as refused:  # before it is queued: an error, the sentence alone
        flooder.predict(image=handle_file(uploads["good.png"]), steps=10, restarts=1, api_name="/project")
    assert refused.value.response.status_code == 400 and refused.value.response.json()["detail"] == (
        f"you already have {CAPS.per_session} projections queued or running (at most {CAPS.per_session} per "
        "visitor); wait for one to finish"
    )
    # a client that dodges with a new session per call: counted by its address
    dodging = [_queue_projection(broken_app, image) for _ in range(CAPS.per_address - CAPS.per_session + 1)]
    assert [status for status, _ in dodging] == [200] * (CAPS.per_address - CAPS.per_session) + [400]
    assert dodging[-1][1]["detail"] == (
        f"{CAPS.per_address} projections from your address are already queued or running (at most "
        f"{CAPS.per_address}); wait for one to finish"
    )
    # meanwhile, light work is served at once, and the app's other visitors may still project
    other = Client(broken_app.url, verbose=False)
    assert Image.open(other.predict(seed=3, count=4, api_name="/sample")).format == "PNG"
    stopped = len(_stopped_lines(broken_app))
    for _, answer in [mine[0], *dodging[:-1]]:  # every flooding session goes
        _leave(broken_app, answer["event_id"])
    _wait_for(lambda: len(_stopped_lines(broken_app)) == stopped + 1)  # the one running stops; the queued are dropped
    small = other.submit(image=handle_file(uploads["good.png"]), steps=2, restarts=1, api_name="/project")
    assert "after 2 steps x 1 restarts" in small.result(timeout=120)[4]  # not behind the dropped full budgets


def test_a_projection_stops_when_its_client_goes(broken_app, uploads):
    stopped = len(_stopped_lines(broken_app))
    subprocess.run([sys.executable, "-c", LEAVER, broken_app.url, str(uploads["good.png"])], check=True, timeout=180)
    _wait_for(lambda: len(_stopped_lines(broken_app)) == stopped + 1)
    steps = int(re.search(r"stopped after (\d+) of 1000 steps", _stopped_lines(broken_app)[-1]).group(1))
    assert 0 < steps < 1000
    client = Client(broken_app.url, verbose=False)  # the worker is free again
    assert (
        "after 1 steps x 1 restarts"
        in client.predict(image=handle_file(uploads["good.png"]), steps=1, restarts=1, api_name="/project")[4]
    )
