"""The README.md model card of a published export, built with `huggingface_hub.ModelCard` / `ModelCardData`.

Everything comes from the export's config.json (architecture, dataset, credit and licence, training arguments,
hardware, time, final metrics), so `python -m gan push` of an old export writes the same card as training did.
Arguments whose name contains "token" are left out, as in the checkpoint.
"""

from __future__ import annotations

import json
import re

from huggingface_hub import ModelCard, ModelCardData

from ..checkpoint import DISCRIMINATOR_NAME, GENERATOR_NAME, LOCAL_PATH_ARGS, RAW_GENERATOR_NAME
from ..data.sources import SOURCES, hub_repo
from .errors import looks_like_repo_id

LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # a Hub licence id (cc-by-4.0, apache-2.0, other...)
PIPELINE_TAG = "unconditional-image-generation"
FILE_DESCRIPTIONS = {
    "config.json": "architecture (`nz`, `ngf`, `ndf`, `nc`, `image_size`, `d_norm`) and the metadata on this page",
    GENERATOR_NAME: "the generator to sample from (the EMA weights when EMA is on)",
    RAW_GENERATOR_NAME: "the raw, non-EMA generator at the last step",
    DISCRIMINATOR_NAME: "the discriminator (scores how training-set-like an image looks)",
    "samples.png": "64 samples from the fixed seeds 0..63",
    "loss.png": "loss curves",
    "weights.png": "per-layer weight norms over training",
    "metrics.jsonl": "the training log, one JSON line per logging interval",
    "README.md": "this card",
}


def hub_dataset_id(dataset) -> str | None:
    """The dataset repo on the Hub of a config.json's `dataset`: its source's (data.SOURCES), or `hf:OWNER/NAME`'s."""
    if not isinstance(dataset, str):
        return None
    repo_id = hub_repo(dataset)
    if repo_id is not None:
        return repo_id if looks_like_repo_id(repo_id) else None
    return SOURCES[dataset].hub_id if dataset in SOURCES else None


def model_license(config: dict) -> str:
    """The card's `license:`, inherited from the data: its source's (data.SOURCES), a Hub dataset card's single licence
    id, else "other" (the card's Dataset section gives the terms)."""
    dataset = config.get("dataset")
    if not isinstance(dataset, str):
        return "other"
    if hub_repo(dataset) is not None:
        license = config.get("dataset_license")
        return license if isinstance(license, str) and LICENSE_ID.fullmatch(license) else "other"
    return SOURCES[dataset].hub_license if dataset in SOURCES else "other"


def _value(value) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|")


def _table(rows: dict, header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| `{key}` | {_value(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def _evaluation(evaluation: dict | None) -> str:
    """The recorded sample-quality scores (from training's quick evaluation or `python -m gan evaluate --save`)."""
    if not evaluation:
        return "not recorded (`python -m gan evaluate --checkpoint DIR --save` records one)"
    keys = ("fd", "kid", "precision", "recall")
    rows = {key: evaluation[key] for key in keys if key in evaluation}
    text = (
        f"{evaluation.get('num', '?')} samples against as many training images, in the feature space of "
        f"{evaluation.get('feature_space', 'the dataset domain classifier (not comparable with Inception FIDs)')}:\n\n"
        + _table(rows, ("metric", "value"))
    )
    reference = evaluation.get("real_vs_real")
    if reference:
        held_out = evaluation.get("held_out", "the test split against the training images")
        text += f"\n\nReal images, {held_out} (the floor a generator approaches): " + ", ".join(
            f"{key} {reference[key]}" for key in keys if key in reference
        )
    copies = evaluation.get("copies")
    if isinstance(copies, dict) and "fraction" in copies:
        text += (
            f"\n\nCopy check: of {copies.get('samples', '?')} samples, a share of {copies['fraction']} sits nearer "
            f"to a training image than that image's nearest other training {copies.get('unit', 'image')} does."
        )
    return text


def _usage(repo_id: str, revision: str | None) -> list[str]:
    """How to load, sample and serve the published model."""
    revision_arg = f', revision="{revision}"' if revision and revision != "main" else ""
    revision_flag = f" --revision {revision}" if revision and revision != "main" else ""
    return [
        "## Use it",
        "With DCGAN Studio's `gan` package on your Python path"
        " (a copy of its repository, or of any DCGAN Studio Space),"
        " three lines load the generator (config.json and safetensors only, never pickle; shapes are checked)"
        " and a fourth samples from it:",
        "```python\n"
        "import torch\n"
        "from gan import load_generator\n"
        f'G = load_generator("{repo_id}"{revision_arg})\n'
        "images = G(torch.randn(16, G.config.nz))  # (16, C, H, W) in [-1, 1]\n"
        "```",
        "It also loads the way `huggingface_hub.PyTorchModelHubMixin` models do:"
        f' `from gan.hub.generator import HubGenerator; G = HubGenerator.from_pretrained("{repo_id}"{revision_arg})`.',
        "## Open it in the app",
        f"```bash\npython app.py --repo-id {repo_id}{revision_flag}"
        "        # local Gradio app: sample, interpolate, score\n"
        f"python -m gan sample --repo-id {repo_id}{revision_flag} --out samples.png\n"
        f"python -m gan deploy-space --space-id YOUR_NAME/dcgan-studio --repo-id {repo_id}{revision_flag}"
        "  # a Space\n```",
        "In a running app, type the repo id into the model picker.",
    ]


def _training(training: dict) -> str:
    """Steps, hardware, precision and time of the run."""
    seconds = training.get("time_s")
    minutes = f" ({seconds / 60:.1f} min)" if isinstance(seconds, int | float) else ""
    return (
        f"- steps: {training.get('steps', '?')} ({training.get('images_seen', '?')} images seen,"
        f" {training.get('train_images', '?')} training images)\n"
        f"- hardware: {training.get('device', 'unknown')}, precision {training.get('precision', '?')},"
        f" torch {training.get('torch', '?')}\n"
        f"- time: {seconds if seconds is not None else '?'} s{minutes}\n"
        f"- skipped non-finite steps: {training.get('skipped_steps', 0)}"
    )


def model_card(config: dict, repo_id: str, files: list[str], revision: str | None = None) -> ModelCard:
    """The model card for an export whose config.json is `config`, published as `repo_id` with `files`."""
    dataset = config.get("dataset", "unknown")
    training = config.get("training", {})
    args = {k: v for k, v in training.get("args", {}).items() if "token" not in k.lower() and k not in LOCAL_PATH_ARGS}
    metrics = config.get("final_metrics", {})
    size, channels = config.get("image_size", "?"), config.get("nc", "?")
    hub_dataset = hub_dataset_id(dataset)
    data = ModelCardData(
        library_name="pytorch",
        license=model_license(config),
        pipeline_tag=PIPELINE_TAG,
        tags=[
            "gan",
            "dcgan",
            PIPELINE_TAG,
            "pytorch",
            "dcgan-studio",
            "model_hub_mixin",
            "pytorch_model_hub_mixin",
            *([] if hub_repo(dataset) is not None else [dataset]),  # `datasets:` links a Hub dataset
        ],
        datasets=[hub_dataset] if hub_dataset else None,
    )
    ema = args.get("ema")
    sections = [
        f"# {repo_id}",
        f"A DCGAN (Radford et al. 2015) trained with DCGAN Studio on **{dataset}**:"
        f" it turns a {config.get('nz', '?')}-dim"
        f" Gaussian latent into a {size}x{size} image with {channels} channel(s), values in [-1, 1]."
        + (f" Sampling uses an exponential moving average of the generator's weights (decay {ema})." if ema else ""),
        "![64 samples from seeds 0..63](samples.png)" if "samples.png" in files else "",
        *_usage(repo_id, revision),
        "## Training",
        _training(training),
        "### Arguments (local paths omitted)",
        _table(args, ("argument", "value")) if args else "not recorded",
        "## Final metrics",
        (_table(metrics, ("metric", "value")) if metrics else "not recorded")
        + "\n\n`d_real`/`d_fake` are the discriminator's mean probabilities on real and generated images over the last"
        " logging interval; they describe the training game, not image quality.",
        "## Evaluation",
        _evaluation(config.get("evaluation")),
        "## Dataset",
        f"{config.get('dataset_credit', dataset)}. Licence: {config.get('dataset_license', 'unknown')}."
        " The weights were fitted to this data and inherit its terms.",
        "## Files",
        "\n".join(
            f"- `{name}`: {FILE_DESCRIPTIONS.get(name, 'an extra file of the export')}"
            for name in [*files, "README.md"]
        ),
        "## Limitations",
        "A small unconditional GAN: low resolution, no control over what is drawn, and it reproduces the biases and"
        " the content of its training data. The discriminator's score is not a calibrated detector of fake images.",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(part for part in sections if part) + "\n"
    return ModelCard(content)
