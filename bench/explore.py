"""Speed of looking inside the model on this machine, against the targets. Run on an otherwise idle machine:

    .venv/bin/python bench/explore.py [--checkpoint models/dcgan-fashion-mnist]

In-process, median of repeated calls: latent arithmetic (three groups of three seeds, eight neighbours), alone and
as the Explore tab's handler does it (with its figure, PNG files and z file); the model's principal directions
computed from nothing (weights digest, SVD, the cache file written; the first call of the process, then the median
of later ones into fresh cache folders), read back from the cache file, and the Directions handler (a moved sample,
8 strips of 7, the table); SmoothGrad saliency of 16 images, alone and as the Score tab's handler does it for 16
uploaded PNG files. Every figure belongs to the machine named in the first line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402 (after the environment)
from timing import median_ms  # noqa: E402

from gan import BUNDLED_MODEL, explore  # noqa: E402
from gan.checkpoint import load_model  # noqa: E402
from gan.precision import describe_device  # noqa: E402
from gan.sampling import generate, latents_for_seeds, to_pil  # noqa: E402

TARGETS_MS = {"arithmetic": 100, "directions": 5000, "saliency": 500}


def line(what: str, ms: float, target: str | None = None) -> None:
    limit = TARGETS_MS.get(target) if target else None
    verdict = "" if limit is None else f"  (target <= {limit} ms: {'met' if ms <= limit else 'MISSED'})"
    print(f"{what:<66} {ms:9.1f} ms{verdict}", flush=True)


made: list[str] = []


def fresh_cache() -> str:
    """An empty cache folder (DCGAN_CACHE), the in-memory caches emptied: directions must be computed."""
    folder = tempfile.mkdtemp(prefix="dcgan-bench-cache-")
    made.append(folder)
    os.environ["DCGAN_CACHE"] = folder
    explore.forget_directions()
    return folder


def directions(model) -> None:
    """From nothing (the first call of this process, then later ones), from the file, from memory; then into the
    app's own cache folder."""
    original = os.environ.get("DCGAN_CACHE")
    fresh_cache()
    start = time.perf_counter()
    found = explore.principal_directions(model.generator)
    line("directions from nothing, first call of the process", (time.perf_counter() - start) * 1000, "directions")
    path = explore.directions_file(found.digest)
    print(f"  cached in {path} ({path.stat().st_size:,} bytes)")
    times = []
    for _ in range(5):
        fresh_cache()
        start = time.perf_counter()
        explore.principal_directions(model.generator)
        times.append(time.perf_counter() - start)
    line("directions from nothing (digest + SVD + file), median of 5", statistics.median(times) * 1000, "directions")

    def from_file():
        explore.forget_directions()  # the digest is computed again too
        explore.principal_directions(model.generator)

    line("directions from the cache file (digest + read)", median_ms(from_file, 9))
    line("directions from memory", median_ms(lambda: explore.principal_directions(model.generator), 15))
    share = float(found.variance[:8].sum()) * 100
    print(f"  top 8 explain {share:.1f}% of the first layer's variance; top 3: {found.variance[:3].tolist()}")
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)
    if original is None:
        os.environ.pop("DCGAN_CACHE", None)
    else:
        os.environ["DCGAN_CACHE"] = original
    explore.forget_directions()
    explore.principal_directions(model.generator)  # where the app keeps them (files.cache_dir(): DCGAN_CACHE)
    print(f"  the app's cache: {explore.directions_file(found.digest)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_MODEL))
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    nz = model.config.nz
    print(f"machine: {describe_device('cpu')}; model: {Path(args.checkpoint).name}; torch {torch.__version__}")

    from gan.ui import create_state
    from gan.ui.assets import OutputFiles
    from gan.ui.explore import EXAMPLES, ExploreTab
    from gan.ui.score import ScoreTab

    outputs = tempfile.mkdtemp(prefix="dcgan-bench-out-")
    state = create_state(model, outputs=OutputFiles(parent=outputs))
    groups = [latents_for_seeds(start, 3, nz) for start in (0, 10, 20)]
    line(
        "arithmetic: 3 groups of 3, 8 neighbours (model side)",
        median_ms(lambda: explore.arithmetic(model.generator, *groups)),
        "arithmetic",
    )
    tab = ExploreTab(state)
    line(
        "arithmetic handler (+ figure, 2 PNG files, z file)",
        median_ms(lambda: tab.arithmetic(*EXAMPLES["dcgan-fashion-mnist"][0])),  # the tab's example groups
        "arithmetic",
    )

    directions(model)
    line(
        "directions handler (moved sample, 8 strips of 7, table, z file)", median_ms(lambda: tab.directions(18, 1.0), 9)
    )

    images = generate(model.generator, latents_for_seeds(0, 16, nz))
    line(
        f"saliency of 16 images ({explore.SMOOTHGRAD_SAMPLES} noisy copies each)",
        median_ms(lambda: explore.saliency(model.discriminator, images), 9),
        "saliency",
    )
    folder = Path(tempfile.mkdtemp(prefix="dcgan-bench-uploads-"))
    files = []
    for i, image in enumerate(images):
        to_pil(image).save(folder / f"upload-{i}.png")
        files.append(str(folder / f"upload-{i}.png"))
    scores = ScoreTab(state)
    line(
        "saliency handler, 16 uploaded PNG files + a seed (17 maps)", median_ms(lambda: scores.saliency(files[:16]), 9)
    )


if __name__ == "__main__":
    sys.exit(main())
