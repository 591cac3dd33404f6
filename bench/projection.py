"""Projection: time per image, and how closely real and generated images are reconstructed.

For each budget (steps x restarts) it prints
  - wall and CPU seconds per projection of a randomly initialised model of the bundled shape
    (nz=100, ngf=ndf=64, 1 channel, 32x32): the cost does not depend on the weights;
  - the distance (mean absolute pixel error, 0..1) for held-out Fashion-MNIST test images (the
    t10k file, never trained on), prepared like the training data (28x28 padded to 32x32);
  - the distance for the generator's own images (seeds 100000...), which have an exact answer;
  - for scale, the distance of the closest of 64 random latents to each held-out image.
Run on an idle machine (timings are per process; pin with taskset for single-core figures):

    .venv/bin/python bench/projection.py --checkpoint models/dcgan-fashion-mnist
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.datasets.mnist import read_image_file

from gan.checkpoint import load_model
from gan.data.idx import DEBIAN_FASHION_MNIST
from gan.models import Discriminator, Generator, ModelConfig
from gan.projection import DEFAULT_RESTARTS, DEFAULT_STEPS, project
from gan.sampling import generate, latents_for_seeds

TEST_IMAGES = "t10k-images-idx3-ubyte"


def load_test_images(data_dir: Path | None, count: int, image_size: int) -> torch.Tensor:
    """The first `count` Fashion-MNIST test images as uint8 (N, 1, size, size), padded like gan.data does."""
    folders = [data_dir, data_dir / "FashionMNIST" / "raw"] if data_dir else [DEBIAN_FASHION_MNIST]
    for folder in folders:
        if (folder / TEST_IMAGES).is_file():
            images = read_image_file(str(folder / TEST_IMAGES))
            break
        if (folder / f"{TEST_IMAGES}.gz").is_file():
            with tempfile.TemporaryDirectory() as tmp, gzip.open(folder / f"{TEST_IMAGES}.gz", "rb") as src:
                with open(Path(tmp) / TEST_IMAGES, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                images = read_image_file(str(Path(tmp) / TEST_IMAGES))
            break
    else:
        sys.exit(f"no {TEST_IMAGES}[.gz] in {', '.join(map(str, folders))}: pass --data-dir")
    images = F.pad(images[:count].unsqueeze(1), (2, 2, 2, 2), value=0)
    if image_size != 32:
        images = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear", antialias=True)
        images = images.round().clamp(0, 255).to(torch.uint8)
    return images


def parse_budget(text: str) -> tuple[int, int]:
    steps, _, restarts = text.partition("x")
    return int(steps), int(restarts)


def summary(values: list[float]) -> str:
    return f"mean {statistics.mean(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a Fashion-MNIST export folder")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"folder with {TEST_IMAGES}[.gz] (default: Debian's)"
    )
    parser.add_argument("--real", type=int, default=32, help="held-out test images")
    parser.add_argument("--generated", type=int, default=16, help="generated images")
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument(
        "--budget",
        type=parse_budget,
        action="append",
        metavar="STEPSxRESTARTS",
        help=f"repeatable (default: {DEFAULT_STEPS}x{DEFAULT_RESTARTS}, the library default)",
    )
    options = parser.parse_args()
    budgets = options.budget or [(DEFAULT_STEPS, DEFAULT_RESTARTS)]
    model = load_model(options.checkpoint)
    config = model.config
    if config.nc != 1:
        sys.exit(f"{options.checkpoint} makes {config.nc}-channel images; this benchmark uses grayscale Fashion-MNIST")
    real = load_test_images(options.data_dir, options.real, config.image_size)
    generated = generate(model.generator, latents_for_seeds(100_000, options.generated, config.nz))
    candidates = generate(model.generator, latents_for_seeds(0, 64, config.nz)).float()
    nearest_random = [((candidates - image.float()).abs().mean(dim=(1, 2, 3)) / 255).min().item() for image in real]

    torch.manual_seed(0)
    shape = ModelConfig(nz=100, ngf=64, ndf=64, nc=1, image_size=32)
    timing_g, timing_d = Generator(shape).eval(), Discriminator(shape).eval()
    timing_target = generate(timing_g, latents_for_seeds(0, 1, shape.nz))[0]
    project(timing_g, timing_target, timing_d, steps=5)  # warm-up: first-call allocations
    print(
        f"model {model.name} ({config.nz}-d latent, {config.image_size}x{config.image_size}), torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    print(f"closest of 64 random latents to each held-out image: {summary(nearest_random)}")
    for steps, restarts in budgets:
        walls, cpus = [], []
        for run in range(options.timing_runs):
            wall, cpu = time.perf_counter(), time.process_time()
            project(timing_g, timing_target, timing_d, steps=steps, restarts=restarts, seed=run)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        real_distances = [
            project(model.generator, image, model.discriminator, steps=steps, restarts=restarts).distance
            for image in real
        ]
        generated_distances = [
            project(model.generator, image, model.discriminator, steps=steps, restarts=restarts).distance
            for image in generated
        ]
        print(f"budget {steps} steps x {restarts} restarts:")
        print(
            f"  time per projection (bundled shape, {options.timing_runs} runs): "
            f"wall median {statistics.median(walls):.2f} s, "
            f"max {max(walls):.2f} s; CPU median {statistics.median(cpus):.2f} s"
        )
        print(f"  held-out Fashion-MNIST ({len(real)} images): {summary(real_distances)}")
        print(f"  generated ({len(generated)} images):         {summary(generated_distances)}")


if __name__ == "__main__":
    main()
