"""Write the app's example images to examples/: samples of the bundled model and Fashion-MNIST-like drawings.

    .venv/bin/python scripts/make_examples.py

Generated ones are 32x32 grayscale, as the model draws them (their PNG metadata names the model and seed).
Drawings are garment silhouettes drawn with Pillow, light on black like Fashion-MNIST, at 4x then downsampled
for soft edges; one is in colour, so the Score tab shows its conversion to grayscale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gan import BUNDLED_MODEL, load_model
from gan.sampling import generate, latents_for_seeds, png_bytes, to_pil
from gan.ui.assets import model_identity

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "examples"
SEEDS = (7, 23)
SCALE = 4  # draw at 128x128, save at 32x32


def _drawing(polygons: list[list[tuple[float, float]]], fill=(225, 225, 225), mode: str = "L") -> Image.Image:
    """Polygons in 32x32 coordinates, filled on black and shaded darker towards the bottom, then softened."""
    size = 32 * SCALE
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for polygon in polygons:
        draw.polygon([(x * SCALE, y * SCALE) for x, y in polygon], fill=fill)
    shade = np.linspace(1.0, 0.65, size)[:, None, None]
    image = Image.fromarray((np.asarray(image) * shade).round().astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(SCALE / 2)).resize((32, 32), Image.Resampling.LANCZOS)
    return image.convert(mode)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    model = load_model(BUNDLED_MODEL)
    images = generate(model.generator, latents_for_seeds(0, max(SEEDS) + 1, model.config.nz))[list(SEEDS)]
    for seed, image in zip(SEEDS, images, strict=True):
        (OUT / f"generated-seed-{seed}.png").write_bytes(
            png_bytes(to_pil(image), {**model_identity(model), "seed": seed})
        )
    drawings = {
        "drawn-tshirt.png": (
            [
                [
                    (9, 6),
                    (13, 5),
                    (16, 7),
                    (19, 5),
                    (23, 6),
                    (29, 12),
                    (25, 15),
                    (23, 13),
                    (23, 28),
                    (9, 28),
                    (9, 13),
                    (7, 15),
                    (3, 12),
                ]
            ],
            (225, 225, 225),
            "L",
        ),
        "drawn-trousers.png": (
            [[(10, 3), (22, 3), (23, 29), (18, 29), (16, 11), (14, 29), (9, 29)]],
            (200, 200, 200),
            "L",
        ),
        "drawn-sneaker-colour.png": (
            [[(2, 22), (3, 16), (8, 16), (15, 12), (21, 11), (22, 15), (28, 18), (30, 22), (30, 25), (2, 25)]],
            (220, 60, 50),
            "RGB",
        ),
    }
    for name, (polygons, fill, mode) in drawings.items():
        _drawing(polygons, fill, mode).save(OUT / name, optimize=True)
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
