"""Pictures of a training run from its metrics log (JSONL): loss curves and weights over time."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(records: list[dict], path: Path) -> None:
    """Losses of both networks, the discriminator's mean probability on real and fake images, and the
    quick evaluations' Frechet distance and precision/recall where there are some."""
    evaluations = [r for r in records if "eval" in r]
    records = [r for r in records if "loss_d" in r]
    steps = [r["step"] for r in records]
    figure, axes = plt.subplots(1, 3 if evaluations else 2, figsize=(16 if evaluations else 11, 4))
    losses, outputs = axes[:2]
    losses.plot(steps, [r["loss_d"] for r in records], label="discriminator")
    losses.plot(steps, [r["loss_g"] for r in records], label="generator")
    losses.set(title="Losses", xlabel="generator step", ylabel="BCE-with-logits loss")
    outputs.plot(steps, [r["d_real"] for r in records], label="D(x): real")
    outputs.plot(steps, [r["d_fake"] for r in records], label="D(G(z)): generated")
    outputs.set(title="Discriminator outputs", xlabel="generator step", ylabel="mean sigmoid", ylim=(0, 1))
    if evaluations:
        quality = axes[2]
        eval_steps = [r["step"] for r in evaluations]
        quality.plot(eval_steps, [r["eval"]["fd"] for r in evaluations], "o-", color="black", label="Frechet distance")
        quality.set(title="Quick evaluation", xlabel="generator step", ylabel="Frechet distance (domain features)")
        shares = quality.twinx()
        shares.plot(eval_steps, [r["eval"]["precision"] for r in evaluations], "s--", label="precision")
        shares.plot(eval_steps, [r["eval"]["recall"] for r in evaluations], "^--", label="recall")
        shares.set(ylim=(0, 1), ylabel="share")
        shares.legend(loc="upper center")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_weight_norms(records: list[dict], path: Path) -> None:
    """Per-layer L2 norms of the weights of both networks over training."""
    records = [r for r in records if "weight_norms_g" in r]
    steps = [r["step"] for r in records]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, (key, title) in zip(axes, (("weight_norms_g", "Generator"), ("weight_norms_d", "Discriminator"))):
        for layer in records[-1][key]:
            axis.plot(steps, [r[key].get(layer, float("nan")) for r in records], label=layer)
        axis.set(title=f"{title} weight norms", xlabel="generator step", ylabel="L2 norm")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
