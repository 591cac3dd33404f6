"""Fairness under a flood: a second visitor's /sample (and a small /interpolate) p50 while other clients flood
/project, against the same figures on the idle app. Run on an otherwise idle machine:

    .venv/bin/python bench/fairness.py [--checkpoint models/dcgan-fashion-mnist] [--flood 70]

Starts `python app.py` (the bundled model by default). The flood: one client (one session) submits --flood full-budget
projections with gradio_client, and a dodging client --flood more over the raw /call API with no session hash (a
fresh session each time); the app's caps refuse most of them when they are queued. The visitor's requests are timed
while projections are running. Target: flooded p50 at most 3x the idle p50. Every figure belongs to the machine named
in the first line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

from gan import BUNDLED_MODEL
from gan.checkpoint import load_model
from gan.precision import describe_device
from gan.sampling import generate, latent_for_seed, to_pil
from gan.ui.common import MAX_RESTARTS, MAX_STEPS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]

TARGET_RATIO = 3.0


def start_app(checkpoint: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--checkpoint", checkpoint, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError("the app did not start") from None
            time.sleep(0.1)


def p50_ms(call, repeats: int) -> float:
    call(-1)  # warm-up
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        call(index)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def visitor_calls(url: str) -> dict:
    """The second visitor's light requests, each taking a call index (its own seeds each time)."""
    visitor = Client(url, verbose=False, download_files=False)

    def sample(index: int) -> None:
        visitor.predict(seed=1000 + index, count=16, api_name="/sample")

    def interpolate(index: int) -> None:
        visitor.predict(seed_a=index + 1, seed_b=index + 2, frames=24, mode="slerp", api_name="/interpolate")

    return {"sample_16": sample, "interpolate_24": interpolate}


def flood(url: str, image: Path, count: int) -> tuple[list, dict[str, int], list[str]]:
    """Submit the flood; returns the gradio_client jobs (to cancel), the counts, and the dodger's accepted event ids."""
    one_session = Client(url, verbose=False, download_files=False)
    jobs = [
        one_session.submit(image=handle_file(image), steps=MAX_STEPS, restarts=MAX_RESTARTS, api_name="/project")
        for _ in range(count)
    ]
    upload = httpx.post(f"{url}gradio_api/upload", files={"files": (image.name, image.read_bytes(), "image/png")})
    file = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
    dodged, refused_dodges = [], 0
    for _ in range(count):
        answer = httpx.post(f"{url}gradio_api/call/project", json={"data": [file, MAX_STEPS, MAX_RESTARTS]}, timeout=30)
        if answer.status_code == 200:
            dodged.append(answer.json()["event_id"])
        else:
            refused_dodges += 1
    refused = 0
    for job in jobs:
        while not job.done() and job.status().code.name not in ("IN_QUEUE", "PROCESSING"):
            time.sleep(0.01)
        if job.done() and isinstance(job.exception(), ValidationError):
            refused += 1
    counts = {
        "one_session_accepted": count - refused,
        "one_session_refused": refused,
        "dodger_accepted": len(dodged),
        "dodger_refused": refused_dodges,
    }
    return jobs, counts, dodged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_MODEL))
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--flood", type=int, default=70, help="projections each flooding client submits")
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()
    print(f"machine: {describe_device('cpu')}")
    model = load_model(options.checkpoint)
    image = Path(tempfile.mkdtemp()) / "target.png"
    to_pil(generate(model.generator, latent_for_seed(7, model.config.nz)[None])[0]).save(image)
    url = f"http://127.0.0.1:{options.port}/"
    process = start_app(options.checkpoint, options.port)
    try:
        calls = visitor_calls(url)
        idle = {name: p50_ms(call, options.repeats) for name, call in calls.items()}
        jobs, counts, dodged = flood(url, image, options.flood)
        flooded = {name: p50_ms(call, options.repeats) for name, call in calls.items()}
        busy = any(job.status().code.name == "PROCESSING" for job in jobs)  # the flood's first job, started at once
        for job in jobs:
            job.cancel()
        for event_id in dodged:  # open and drop each dodging session's stream: the app drops or stops its job
            urllib.request.urlopen(f"{url}gradio_api/call/project/{event_id}", timeout=30).close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps(counts))
    print(f"a flooding projection was still running when the flooded timing ended: {busy}")
    for key in idle:
        ratio = flooded[key] / idle[key]
        verdict = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(
            f"{key:16s} idle p50 {idle[key]:8.1f} ms   flooded p50 {flooded[key]:8.1f} ms   "
            f"ratio {ratio:4.2f} (target <= {TARGET_RATIO})  {verdict}"
        )


if __name__ == "__main__":
    main()
