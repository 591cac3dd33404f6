"""The README's figures of a bundled model: 64 samples (seeds 0-63), an interpolation strip between two seeds, and
its latent-arithmetic example (gan/ui/explore.py's EXAMPLES), each a PNG whose metadata names the model.

    .venv/bin/python scripts/make_figures.py --checkpoint models/dcgan-noto-emoji --prefix docs/emoji --strip 4,20
    .venv/bin/python scripts/make_figures.py --checkpoint models/dcgan-noto-emoji --candidates docs/emoji-seeds.png

`--candidates` writes seeds 0-255 with their numbers instead, to choose the example's groups by eye.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from gan import explore, load_model
from gan.sampling import generate, grid_image, interpolate_latents, latent_for_seed, latents_for_seeds, png_bytes
from gan.ui.assets import model_identity
from gan.ui.explore import EXAMPLES

CANDIDATE_COLUMNS, CANDIDATE_CELL = 16, 72


def _save(image: Image.Image, path: Path, about: dict[str, str]) -> None:
    path.write_bytes(png_bytes(image, about))
    print(f"wrote {path}")


def _latents(seeds: str, nz: int) -> torch.Tensor:
    return torch.stack([latent_for_seed(int(seed), nz) for seed in seeds.split(",")])


def candidates(model, path: Path) -> None:
    """Seeds 0-255, numbered."""
    images = generate(model.generator, latents_for_seeds(0, 256, model.config.nz))
    sheet = Image.new("RGB", (CANDIDATE_COLUMNS * CANDIDATE_CELL, 16 * (CANDIDATE_CELL + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for seed, image in enumerate(images):
        left, top = seed % CANDIDATE_COLUMNS * CANDIDATE_CELL, seed // CANDIDATE_COLUMNS * (CANDIDATE_CELL + 12)
        cell = grid_image(image[None], 1, padding=0).convert("RGB").resize((CANDIDATE_CELL - 8, CANDIDATE_CELL - 8))
        sheet.paste(cell, (left + 4, top + 12))
        draw.text((left + 4, top), str(seed), fill="black")
    _save(sheet, path, {**model_identity(model), "seeds": "0-255"})


def figures(model, prefix: str, strip: str) -> None:
    about = model_identity(model)
    samples = generate(model.generator, latents_for_seeds(0, 64, model.config.nz))
    _save(grid_image(samples, 8), Path(f"{prefix}-samples.png"), {**about, "seeds": "0-63"})
    a, b = _latents(strip, model.config.nz)
    frames = generate(model.generator, interpolate_latents(a, b, 10, "slerp"))
    _save(grid_image(frames, 10), Path(f"{prefix}-interpolation.png"), {**about, "seeds": strip, "mode": "slerp"})
    groups, _ = EXAMPLES[Path(model.source).name]
    result = explore.arithmetic(model.generator, *(_latents(seeds, model.config.nz) for seeds in groups))
    labels = [[f"seed {seed.strip()}" for seed in seeds.split(",")] for seeds in groups]
    _save(explore.arithmetic_figure(result, labels), Path(f"{prefix}-arithmetic.png"), {**about, "groups": str(groups)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a bundled model's export folder")
    parser.add_argument(
        "--prefix", default="docs/figure", help="PREFIX-samples.png, -interpolation.png, -arithmetic.png"
    )
    parser.add_argument("--strip", default="0,1", help="the interpolation's two seeds, A,B")
    parser.add_argument("--candidates", default=None, help="write seeds 0-255, numbered, to this PNG instead")
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    if args.candidates:
        candidates(model, Path(args.candidates))
    else:
        figures(model, args.prefix, args.strip)


if __name__ == "__main__":
    main()
