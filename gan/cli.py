"""`python -m gan COMMAND`: tools that work on an exported model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import BUNDLED_MODEL
from .checkpoint import CONFIG_NAME, read_config
from .errors import GanError
from .files import atomic_write
from .hub import space
from .hub.load import load_source
from .hub.publish import add_publish_arguments, add_token_argument, push_export
from .projection import DEFAULT_RESTARTS, DEFAULT_STEPS, project_file, save_latent
from .sampling import MAX_SEED, generate, grid_image, latents_for_seeds, png_bytes, to_pil


def sample(args: argparse.Namespace) -> None:
    """N samples for seeds S..S+N-1 as a PNG grid or a uint8 (N, H, W, C) array in a .npz."""
    if args.num < 1:
        raise GanError("--num must be at least 1")
    if not 0 <= args.seed or args.seed + args.num - 1 > MAX_SEED:
        raise GanError(f"seeds {args.seed}..{args.seed + args.num - 1} must lie in 0..{MAX_SEED}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise GanError(f"--out {out} must end in .png (a grid) or .npz (an array under the key 'images')")
    model = load_chosen_model(args)
    images = generate(model.generator, latents_for_seeds(args.seed, args.num, model.config.nz))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, images=images.permute(0, 2, 3, 1).numpy())
    else:
        text = {"model": model.name, "seeds": f"{args.seed}-{args.seed + args.num - 1}"}
        out.write_bytes(png_bytes(grid_image(images, args.columns), text))
    print(f"wrote {args.num} samples (seeds {args.seed}..{args.seed + args.num - 1}) to {out}")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="export folder (default: the bundled model)")
    parser.add_argument("--repo-id", default=None, metavar="USER/NAME", help="a Hub model instead of --checkpoint")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of --repo-id (default: main)")
    parser.add_argument("--device", default="cpu")


def load_chosen_model(args: argparse.Namespace):
    return load_source(
        args.checkpoint or (None if args.repo_id else BUNDLED_MODEL), args.repo_id, args.revision, args.device
    )


def _samples(model, count: int):
    """Seeds 0..count-1 of the model, as uint8 images."""
    return generate(model.generator, latents_for_seeds(0, count, model.config.nz))


def evaluate(args: argparse.Namespace) -> None:
    """Frechet distance, KID and precision/recall of N samples against N real images; prints one JSON line last."""
    from .evaluation import COPY_CHECK_SAMPLES, copy_check, evaluate_generator, evaluation_sets
    from .features import feature_extractor

    if args.save and not args.checkpoint:
        raise GanError("--save records the result in a local export: pass --checkpoint DIR")
    model = load_chosen_model(args)
    dataset = args.dataset or model.metadata.get("dataset")
    if not dataset:
        raise GanError("the model's config.json names no dataset: pass --dataset")
    features = feature_extractor(dataset, args.inception_weights, args.device)
    sets = evaluation_sets(dataset, args.data_dir, model.config.image_size)
    num = min(args.num, len(sets.reference), len(sets.held_out))  # the floor compares as many images as the scores
    if num < args.num:
        print(f"{num} samples, as many as the {len(sets.held_out)} held-out images allow", file=sys.stderr)
    result = evaluate_generator(model.generator, features, sets.reference, num, sets.held_out)
    result.update(
        dataset=dataset,
        feature_space=features.name,
        held_out=sets.how,
        copies=copy_check(_samples(model, COPY_CHECK_SAMPLES), sets.train, sets.groups),
    )
    if args.save:  # the export's recorded evaluation (shown by the app and the model card)
        _, config = read_config(Path(args.checkpoint))  # bounded, as every read of a config.json
        recorded = {**result, "step": config.get("training", {}).get("steps")}  # like training's quick evaluations
        atomic_write(
            Path(args.checkpoint) / CONFIG_NAME,
            lambda p: Path(p).write_text(json.dumps({**config, "evaluation": recorded}, indent=2) + "\n"),
        )
    print(json.dumps({**result, "model": model.name}))


def train_features(args: argparse.Namespace) -> None:
    """Fit a dataset's evaluation feature space (the domain classifier, or the pixel PCA of a colour set without
    labels); saves it in gan/assets/."""
    from .features import PCA_DATASETS, fit_pixel_pca, train_feature_network

    if args.dataset in PCA_DATASETS:
        report = fit_pixel_pca(args.dataset, args.data_dir)
    else:
        report = train_feature_network(args.dataset, args.epochs, args.seed, args.data_dir)
    print(json.dumps(report))


def push(args: argparse.Namespace) -> None:
    """Publish an export folder (or a run folder's model/) to a Hub model repo, as one commit, without retraining."""
    published = push_export(
        args.folder,
        args.hub_model_id,
        token=args.hub_token,
        private=args.hub_private,
        revision=args.hub_revision,
        commit_message=args.commit_message,
    )
    revision = f" --revision {published.revision}" if published.revision != "main" else ""
    if published.changed:
        print(
            f"pushed {published.folder} to {published.url} ({published.revision}, commit {published.commit[:7]}): "
            f"{published.commit_url}"
        )
    else:
        print(
            f"nothing new to push: {published.url} ({published.revision}, commit {published.commit[:7]}) "
            f"already holds {published.folder}"
        )
    print(f"open it with: python app.py --repo-id {published.repo_id}{revision}")


def deploy_space(args: argparse.Namespace) -> None:
    """Create or update a Gradio Space running this app on Hub models (Space variables GAN_REPO_ID, GAN_REVISION)."""
    published = space.deploy_space(
        args.space_id,
        args.repo_id,
        revision=args.revision,
        token=args.hub_token,
        private=args.private,
        hardware=args.hardware,
    )
    print(
        f"deployed the app serving {', '.join(args.repo_id)} to {published.url} on {args.hardware} (commit "
        f"{published.commit[:7]}); the Space builds and starts in a few minutes"
    )


def project(args: argparse.Namespace) -> None:
    """Find the latent z whose generated image best matches IMAGE; save z as float32 (nz,) in a .npy."""
    out = Path(args.out)
    if out.suffix.lower() != ".npy":
        raise GanError(f"--out {out} must end in .npy")
    if args.reconstruction and Path(args.reconstruction).suffix.lower() != ".png":
        raise GanError(f"--reconstruction {args.reconstruction} must end in .png")
    if args.steps < 1 or args.restarts < 1:
        raise GanError("--steps and --restarts must be at least 1")
    if not 0 <= args.seed <= MAX_SEED:
        raise GanError(f"--seed must lie in 0..{MAX_SEED}")
    model = load_chosen_model(args)
    result = project_file(model, args.image, steps=args.steps, restarts=args.restarts, seed=args.seed)
    for note in result.notes:
        print(f"input: {note}")
    if model.discriminator is not None and not result.features:
        print("note: the discriminator's features are not finite (broken weights); matched on pixels only")
    save_latent(result.z, out)
    print(f"wrote z ({model.config.nz} values) to {out}")
    if args.reconstruction:
        Path(args.reconstruction).parent.mkdir(parents=True, exist_ok=True)
        to_pil(result.reconstruction).save(args.reconstruction)
        print(f"wrote the reconstruction to {args.reconstruction}")
    print(f"distance: {result.distance:.4f}")  # mean absolute pixel error, 0..1


def _command(commands, name: str, run, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help, description=run.__doc__)
    parser.set_defaults(run=run)
    return parser


def _add_model_commands(commands) -> None:
    """The commands that read a model: sample, evaluate, project."""
    p = _command(commands, "sample", sample, "write samples for a range of seeds")
    add_model_arguments(p)
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    p.add_argument("--columns", type=int, default=None, help="grid columns (default: near-square)")
    p.add_argument("--out", required=True, help="output .png or .npz")
    p = _command(commands, "evaluate", evaluate, "score sample quality against the real data")
    add_model_arguments(p)
    p.add_argument("--dataset", default=None, help="default: the dataset named in the model's config.json")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--num", type=int, default=10_000, help="generated and real images each")
    p.add_argument("--save", action="store_true", help="record the result in the --checkpoint export's config.json")
    p.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="Inception-v3 weights (torch-fidelity's pt_inception-2015-12-05 .pth or .safetensors) for FID",
    )
    p = _command(commands, "project", project, "find the latent z of an image")
    p.add_argument("image", help="image file (PNG, JPEG...), fitted to the model like the app's uploads")
    add_model_arguments(p)
    p.add_argument("--out", required=True, help="output .npy for z")
    p.add_argument("--reconstruction", default=None, help="also write G(z) to this .png")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"Adam steps (default {DEFAULT_STEPS})")
    p.add_argument(
        "--restarts",
        type=int,
        default=DEFAULT_RESTARTS,
        help=f"random starts optimised as one batch (default {DEFAULT_RESTARTS})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts")


def _add_other_commands(commands) -> None:
    """Training the evaluation's feature network, publishing, deploying."""
    p = _command(commands, "train-features", train_features, "fit a dataset's evaluation feature space")
    p.add_argument("--dataset", default="fashion-mnist", choices=("mnist", "fashion-mnist", "noto-emoji"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p = _command(commands, "push", push, "publish an export to a Hub model repo")
    p.add_argument("folder", metavar="DIR", help="an export folder, or a run folder (its model/ is pushed)")
    add_publish_arguments(p, training=False)
    p = _command(commands, "deploy-space", deploy_space, "create or update a Space serving a Hub model")
    p.add_argument("--space-id", required=True, metavar="USER/NAME", help="the Space repo to create or update")
    p.add_argument(
        "--repo-id",
        required=True,
        action="append",
        metavar="USER/MODEL",
        help="a model the Space serves; repeat it for several: the first is served by default, the others are listed "
        "by the app's model picker, and each public one is preloaded when the Space builds",
    )
    p.add_argument("--revision", default=None, help="branch, tag or commit of the first --repo-id (default: main)")
    p.add_argument(
        "--private", action="store_true", help="create the Space private (an existing one keeps its visibility)"
    )
    p.add_argument(
        "--hardware",
        default=space.DEFAULT_HARDWARE,
        choices=list(space.HARDWARE),
        metavar="HARDWARE",
        help="what the Space runs on, also when it exists: zerogpu (default: a GPU lent per call, on Python "
        f"{space.ZEROGPU_PYTHON} with ZeroGPU's torch; free personal accounts in good standing may host 2 such "
        "Spaces), cpu-basic (needs a paid plan: PRO for a person, Team or Enterprise for an organization), or a "
        "flavour billed by the hour to an account with a payment method "
        f"({', '.join(name for name in space.HARDWARE if name not in ('zerogpu', 'cpu-basic'))})",
    )
    add_token_argument(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan", description="DCGAN Studio tools for exported models.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_model_commands(commands)
    _add_other_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
