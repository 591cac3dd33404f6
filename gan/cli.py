"""`python -m gan COMMAND`: tools that work on an exported model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import BUNDLED_MODEL
from .checkpoint import load_model
from .errors import GanError
from .sampling import MAX_SEED, generate, grid_image, latents_for_seeds, png_bytes


def sample(args: argparse.Namespace) -> None:
    """N samples for seeds S..S+N-1 as a PNG grid or a uint8 (N, H, W, C) array in a .npz."""
    if args.num < 1:
        raise GanError("--num must be at least 1")
    if not 0 <= args.seed or args.seed + args.num - 1 > MAX_SEED:
        raise GanError(f"seeds {args.seed}..{args.seed + args.num - 1} must lie in 0..{MAX_SEED}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise GanError(f"--out {out} must end in .png (a grid) or .npz (an array under the key 'images')")
    model = load_model(args.checkpoint, args.device)
    images = generate(model.generator, latents_for_seeds(args.seed, args.num, model.config.nz))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, images=images.permute(0, 2, 3, 1).numpy())
    else:
        text = {"model": model.name, "seeds": f"{args.seed}-{args.seed + args.num - 1}"}
        out.write_bytes(png_bytes(grid_image(images, args.columns), text))
    print(f"wrote {args.num} samples (seeds {args.seed}..{args.seed + args.num - 1}) to {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan", description="DCGAN Studio tools for exported models.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sample", help="write samples for a range of seeds", description=sample.__doc__)
    p.add_argument("--checkpoint", default=str(BUNDLED_MODEL), help="export folder (default: the bundled model)")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    p.add_argument("--columns", type=int, default=None, help="grid columns (default: near-square)")
    p.add_argument("--out", required=True, help="output .png or .npz")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
