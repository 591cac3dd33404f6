"""App speed on this machine, against the Space's targets, and a load test. Run on an otherwise idle machine:

    .venv/bin/python bench/app_speed.py [--checkpoint models/dcgan-fashion-mnist]

In-process (the work behind each endpoint, median of repeated calls): a 64-sample grid as PNG, against the
generator's forward pass alone; a 60-frame interpolation with its GIF and strip; scoring 32 uploaded PNG files.
Cold start, as differences measured in this run (machines differ in how long torch and gradio take to import):
`python -m gan sample --num 1` and `python -m gan project IMAGE` (the default 200 steps) as whole processes against
`python -c "import torch"`, and `python app.py` from start to first answer against `python -c "import torch, gradio"`.
Over HTTP: a gradio_client round trip for an 8-sample grid (p50), and a load test of 16 concurrent clients x 20
mixed requests, a third of them identical (the default seed), all from one address, reporting errors, refusals by
the per-address caps on queued interpolations (gan/ui/fairness.py) and p50/p99. Every figure belongs to the machine
named in the first line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from timing import median_ms

from gan import BUNDLED_MODEL
from gan.checkpoint import load_model
from gan.precision import describe_device
from gan.sampling import (
    generate,
    gif_bytes,
    grid_image,
    interpolate_latents,
    latent_for_seed,
    latents_for_seeds,
    png_bytes,
    to_pil,
    upscale,
)
from gan.scoring import score_files

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]


def in_process(checkpoint: str) -> dict[str, float]:
    model = load_model(checkpoint)
    nz = model.config.nz

    def grid64():
        png_bytes(upscale(grid_image(generate(model.generator, latents_for_seeds(0, 64, nz)))))

    def forward64():
        generate(model.generator, latents_for_seeds(0, 64, nz))

    def interpolation60():
        images = generate(
            model.generator, interpolate_latents(latent_for_seed(0, nz), latent_for_seed(1, nz), 60, "slerp")
        )
        gif_bytes([upscale(to_pil(image), 256) for image in images])
        png_bytes(upscale(grid_image(images, columns=12), 256))

    folder = Path(tempfile.mkdtemp())
    paths = []
    for i, image in enumerate(generate(model.generator, latents_for_seeds(100, 32, nz))):
        paths.append(folder / f"{i}.png")
        to_pil(image).resize((128, 128)).save(paths[-1])

    grid_ms, forward_ms = median_ms(grid64), median_ms(forward64)
    return {
        "grid_64_ms": grid_ms,
        "generator_64_ms": forward_ms,
        "grid_64_over_generator": grid_ms / forward_ms,
        "interpolation_60_gif_ms": median_ms(interpolation60, repeats=5),
        "score_32_files_ms": median_ms(lambda: score_files(model.discriminator, paths)),
    }


def start_app(checkpoint: str, port: int, *flags: str) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--checkpoint", checkpoint, "--port", str(port), *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process, time.perf_counter() - start
        except OSError:
            if process.poll() is not None or time.perf_counter() - start > 120:
                raise RuntimeError("the app did not start") from None
            time.sleep(0.05)


def process_seconds(command: list[str], repeats: int = 5) -> float:
    """Median wall time of a whole process (a cold start each time, on a warm file cache)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(checkpoint: str, port: int) -> dict[str, float]:
    out = Path(tempfile.mkdtemp()) / "x.png"
    torch_s = process_seconds([sys.executable, "-c", "import torch"])
    torch_gradio_s = process_seconds([sys.executable, "-c", "import torch, gradio"])
    sample_s = process_seconds(
        [sys.executable, "-m", "gan", "sample", "--checkpoint", checkpoint, "--num", "1", "--out", str(out)]
    )
    image, z = str(ROOT / "examples" / "drawn-tshirt.png"), str(out.with_suffix(".npy"))
    project_s = process_seconds([sys.executable, "-m", "gan", "project", image, "--checkpoint", checkpoint, "--out", z])
    startups = {"": [], "--no-mcp": []}
    for _ in range(3):
        for flags, times in startups.items():
            process, startup = start_app(checkpoint, port, *filter(None, [flags]))
            process.terminate()
            process.wait(timeout=30)
            times.append(startup)
    startup_s = statistics.median(startups[""])
    without_mcp_s = statistics.median(startups["--no-mcp"])
    return {
        "import_torch_s": torch_s,
        "sample_cli_s": sample_s,
        "sample_cli_minus_import_torch_s": sample_s - torch_s,
        "project_cli_s": project_s,
        "project_cli_minus_import_torch_s": project_s - torch_s,
        "import_torch_gradio_s": torch_gradio_s,
        "startup_s": startup_s,
        "startup_minus_import_torch_gradio_s": startup_s - torch_gradio_s,
        "startup_without_mcp_s": without_mcp_s,
        "mcp_startup_cost_s": startup_s - without_mcp_s,
    }


def over_http(checkpoint: str, port: int, clients: int, requests: int) -> dict[str, float]:
    from gradio_client import Client

    process, _ = start_app(checkpoint, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        client = Client(url, verbose=False)
        times = []
        for seed in range(25):
            start = time.perf_counter()
            client.predict(seed=seed, count=8, api_name="/sample")
            times.append(time.perf_counter() - start)
        round_trip = statistics.median(times[5:]) * 1000

        def visitor(index: int) -> tuple[list[float], int]:
            own = Client(url, verbose=False)
            latencies, errors, refused = [], 0, 0
            for r in range(requests):
                start = time.perf_counter()
                try:
                    if r % 3 == 0:  # identical requests: many visitors pressing Generate on the default seed
                        own.predict(seed=0, count=16, api_name="/sample")
                    elif r % 3 == 1:
                        own.predict(seed=index * 1000 + r, count=8, api_name="/sample")
                    else:
                        own.predict(seed_a=index, seed_b=r, frames=12, mode="slerp", api_name="/interpolate")
                except Exception as error:  # noqa: BLE001 - every failure counts, as a refusal or an error
                    response = getattr(error, "response", None)  # a cap's refusal: HTTP 400, its sentence as detail
                    detail = response.json().get("detail", "") if response is not None else ""
                    if "queued or running" in f"{error} {detail}":
                        refused += 1
                    else:
                        errors += 1
                latencies.append(time.perf_counter() - start)
            return latencies, errors, refused

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(visitor, range(clients)))
        latencies = sorted(t for lat, _, _ in results for t in lat)
        return {
            "client_round_trip_8_p50_ms": round_trip,
            "load_requests": len(latencies),
            "load_errors": sum(e for _, e, _ in results),
            "load_refused": sum(r for _, _, r in results),
            "load_p50_ms": latencies[len(latencies) // 2] * 1000,
            "load_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


TARGETS = {  # ratios and differences where the absolute figure depends on the machine
    "grid_64_over_generator": 1.5,
    "interpolation_60_gif_ms": 500,
    "score_32_files_ms": 300,
    "sample_cli_minus_import_torch_s": 1.5,
    "startup_minus_import_torch_gradio_s": 2.5,
    "client_round_trip_8_p50_ms": 250,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_MODEL))
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20)
    options = parser.parse_args()
    print(f"machine: {describe_device('cpu')}; torch {torch.__version__}")
    results = {
        **in_process(options.checkpoint),
        **cold_start(options.checkpoint, options.port),
        **over_http(options.checkpoint, options.port, options.clients, options.requests),
    }
    for key, value in results.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else ("  ok" if value <= target else "  OVER")
        bound = f"  (target <= {target})" if target is not None else ""
        print(f"{key:36s} {value:10.2f}{bound}{verdict}")


if __name__ == "__main__":
    main()
