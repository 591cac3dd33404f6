"""Fairness under load: a second visitor's /sample (and a small /interpolate) p50 and p90 while other clients flood
the app, against the same figures on the idle app. Run on an otherwise idle machine:

    .venv/bin/python bench/fairness.py [--checkpoint models/dcgan-fashion-mnist] [--flood 70] [--loops 3]

Starts `python app.py` (the bundled model by default). The loads, one after the other:
- projections: one client (one session) submits --flood full-budget projections with gradio_client, and a dodging
  client --flood more over the raw /call API with no session hash (a fresh session each time); the app's caps refuse
  most of them when they are queued;
- decode bombs: clients looping /score with hostile files (a TIFF of 100,000 frames, a GIF of a million, a PNG of 2
  million chunks, a BMP of one-pixel runs) and /train with a zip listing 600,000 hidden entries (gan/testing.py);
- big JPEGs: three clients looping /saliency with 64 copies of a 4096x4096 JPEG.
The visitor's requests are timed while the load runs, and each load's longest request is reported. Targets: loaded
p90 at most 3x the idle p50, and no request over 5 s. Every figure belongs to the machine named in the first line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np
from gradio_client import Client, handle_file
from gradio_client.utils import Status
from PIL import Image

from gan import BUNDLED_MODEL, testing
from gan.checkpoint import load_model
from gan.precision import describe_device
from gan.sampling import generate, latent_for_seed, to_pil
from gan.ui.limits import MAX_PROJECTION_STEPS, MAX_RESTARTS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]

TARGET_RATIO = 3.0
LONGEST_S = 5.0


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


def timings_ms(call, repeats: int) -> tuple[float, float]:
    """p50 and p90 of `repeats` calls, in ms, after a warm-up call."""
    call(-1)
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        call(index)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


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
        one_session.submit(
            image=handle_file(image), steps=MAX_PROJECTION_STEPS, restarts=MAX_RESTARTS, api_name="/project"
        )
        for _ in range(count)
    ]
    upload = httpx.post(f"{url}gradio_api/upload", files={"files": (image.name, image.read_bytes(), "image/png")})
    file = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
    dodged, refused_dodges = [], 0
    for _ in range(count):
        answer = httpx.post(
            f"{url}gradio_api/call/project", json={"data": [file, MAX_PROJECTION_STEPS, MAX_RESTARTS]}, timeout=30
        )
        if answer.status_code == 200:
            dodged.append(answer.json()["event_id"])
        else:
            refused_dodges += 1
    refused = 0
    for job in jobs:
        while not job.done() and job.status().code.name not in ("IN_QUEUE", "PROCESSING"):
            time.sleep(0.01)
        if job.done() and isinstance(job.exception(), httpx.HTTPStatusError):  # refused before it was queued
            refused += 1
    counts = {
        "one_session_accepted": count - refused,
        "one_session_refused": refused,
        "dodger_accepted": len(dodged),
        "dodger_refused": refused_dodges,
    }
    return jobs, counts, dodged


def upload(url: str, name: str, data: bytes) -> dict:
    """A file uploaded once, as the FileData every request of a loop sends again (no upload per request)."""
    answer = httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=120)
    return {"path": answer.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def big_jpeg(side: int = 4096) -> bytes:
    """A side x side photo-like JPEG: smooth colour gradients with fine noise."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    pixels = np.stack([ramp[None, :].repeat(side, 0), ramp[:, None].repeat(side, 1), 128 * np.ones((side, side))], -1)
    pixels += rng.normal(0, 12, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Looping:
    """Clients each repeating one request until stopped; how long each request held a worker."""

    def __init__(self, url: str, requests: list[tuple[str, list]]):
        self.url, self.stop, self.seconds, self.errors = url, threading.Event(), {}, []
        self.threads = [threading.Thread(target=self.loop, args=request, daemon=True) for request in requests]

    def loop(self, api_name: str, data: list) -> None:
        """Repeat the request; time each from when a worker takes it (PROCESSING) to its end: how long it holds the
        worker, not how long it queued."""
        client = Client(self.url, verbose=False, download_files=False)
        while not self.stop.is_set():
            job, started = client.submit(*data, api_name=api_name), None
            while not job.done():
                if started is None and job.status().code == Status.PROCESSING:
                    started = time.perf_counter()
                time.sleep(0.01)
            try:
                job.result()
            except Exception as error:  # refusals are the expected answer to a bomb
                self.errors.append(f"{api_name}: {str(error)[:80]}")
            if started is not None:
                self.seconds.setdefault(api_name, []).append(time.perf_counter() - started)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # the load is running when the visitor's timing starts
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def projection_flood(url: str, image: Path, count: int, calls: dict, repeats: int) -> dict:
    jobs, counts, dodged = flood(url, image, count)
    loaded = {name: timings_ms(call, repeats) for name, call in calls.items()}
    busy = any(job.status().code.name == "PROCESSING" for job in jobs)  # the flood's first job, started at once
    for job in jobs:
        job.cancel()
    for event_id in dodged:  # open and drop each dodging session's stream: the app drops or stops its job
        urllib.request.urlopen(f"{url}gradio_api/call/project/{event_id}", timeout=30).close()
    print(json.dumps(counts))
    print(f"a flooding projection was still running when the flooded timing ended: {busy}")
    return loaded


def looping_load(url: str, requests: list[tuple[str, list]], calls: dict, repeats: int) -> dict:
    with Looping(url, requests) as load:
        loaded = {name: timings_ms(call, repeats) for name, call in calls.items()}
    for api_name, seconds in sorted(load.seconds.items()):
        verdict = "ok" if max(seconds) <= LONGEST_S else "OVER"
        print(
            f"  {api_name}: {len(seconds)} requests, the longest held a worker {max(seconds):.2f} s "
            f"(target <= {LONGEST_S:g} s) {verdict}"
        )
    for error in sorted(set(load.errors))[:6]:
        print(f"  refused: {error}")
    return loaded


def report(name: str, idle: dict, loaded: dict) -> None:
    for key in idle:
        ratio = loaded[key][1] / idle[key][0]
        verdict = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(
            f"{name:12s} {key:16s} idle p50 {idle[key][0]:7.1f} ms   loaded p50 {loaded[key][0]:7.1f} ms, "
            f"p90 {loaded[key][1]:7.1f} ms   p90/idle p50 {ratio:4.2f} (target <= {TARGET_RATIO})  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_MODEL))
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--flood", type=int, default=70, help="projections each flooding client submits")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--loads", default="projections,bombs,jpegs", help="which loads to run, comma-separated")
    options = parser.parse_args()
    print(f"machine: {describe_device('cpu')}")
    model = load_model(options.checkpoint)
    image = Path(tempfile.mkdtemp()) / "target.png"
    to_pil(generate(model.generator, latent_for_seed(7, model.config.nz)[None])[0]).save(image)
    url = f"http://127.0.0.1:{options.port}/"
    process = start_app(options.checkpoint, options.port)
    loads = options.loads.split(",")
    try:
        calls = visitor_calls(url)
        # the first /score builds the reference scores of its histogram once: not a cost of the loads below
        Client(url, verbose=False, download_files=False).predict([handle_file(image)], api_name="/score")
        idle = {name: timings_ms(call, options.repeats) for name, call in calls.items()}
        report("idle", idle, idle)
        if "projections" in loads:
            report("projections", idle, projection_flood(url, image, options.flood, calls, options.repeats))
        if "bombs" in loads:
            bombs = [
                ("tiff.tif", testing.tiff_of_many_frames()),
                ("gif.gif", testing.gif_of_many_frames()),
                ("chunks.png", testing.png_of_many_chunks()),
                ("runs.bmp", testing.bmp_of_short_runs()),
            ]
            requests = [("/score", [[upload(url, name, data)]]) for name, data in bombs]
            hidden = upload(url, "hidden.zip", testing.zip_of_hidden_entries())
            requests.append(("/train", [0, 30, "images", [hidden]]))
            print("decode bombs:")
            report("bombs", idle, looping_load(url, requests, calls, options.repeats))
        if "jpegs" in loads:
            photo = upload(url, "photo.jpg", big_jpeg())
            print("big JPEGs:")
            report("jpegs", idle, looping_load(url, [("/saliency", [[photo] * 64])] * 3, calls, options.repeats))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
