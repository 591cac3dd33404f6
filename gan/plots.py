"""Pictures of a training run from its metrics log (JSONL): loss curves and weights over time; and the
app's histogram of discriminator scores."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

MARKED_UPLOADS = 8  # uploads named one by one in the histogram's legend; more share one entry


def _figure(**options):
    """A matplotlib figure drawn by the Agg canvas. matplotlib is imported here, when a picture is drawn, not when
    the app or the command line starts; the object API (not pyplot) lets concurrent requests draw at once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def plot_losses(records: list[dict], path: Path, loss_label: str) -> None:
    """Losses of both networks (`loss_label` names the run's loss), the discriminator's mean probability on real and
    fake images, and the quick evaluations' Frechet distance and precision/recall where there are some."""
    evaluations = [r for r in records if "eval" in r]
    records = [r for r in records if "loss_d" in r]
    steps = [r["step"] for r in records]
    figure = _figure(figsize=(16 if evaluations else 11, 4))
    axes = figure.subplots(1, 3 if evaluations else 2)
    losses, outputs = axes[:2]
    losses.plot(steps, [r["loss_d"] for r in records], label="discriminator")
    losses.plot(steps, [r["loss_g"] for r in records], label="generator")
    losses.set(title="Losses", xlabel="generator step", ylabel=loss_label)
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


def plot_weight_norms(records: list[dict], path: Path) -> None:
    """Per-layer L2 norms of the weights of both networks over training."""
    records = [r for r in records if "weight_norms_g" in r]
    steps = [r["step"] for r in records]
    figure = _figure(figsize=(11, 4))
    axes = figure.subplots(1, 2)
    for axis, (key, title) in zip(
        axes, (("weight_norms_g", "Generator"), ("weight_norms_d", "Discriminator")), strict=True
    ):
        for layer in records[-1][key]:
            axis.plot(steps, [r[key].get(layer, float("nan")) for r in records], label=layer)
        axis.set(title=f"{title} weight norms", xlabel="generator step", ylabel="L2 norm")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def score_histogram(
    generated: list[float], real: list[float] | None, uploads: list[tuple[str, float]], note: str = ""
) -> bytes:
    """PNG: histograms of the discriminator's logits on generated samples and (where available) real training
    images, with each upload's logit marked, so a visitor can read where an upload falls. Scores that are not finite
    (a discriminator with broken weights gives NaN) are left out and counted in the title; with no finite score at
    all, the picture says so instead. Uses the object API, not pyplot, so concurrent requests can draw at once."""
    given = len(generated) + len(real or []) + len(uploads)
    generated = [value for value in generated if math.isfinite(value)]
    real = [value for value in real or [] if math.isfinite(value)]
    uploads = [(name, logit) for name, logit in uploads if math.isfinite(logit)]
    finite = [*generated, *real, *(logit for _, logit in uploads)]
    left_out = given - len(finite)
    if left_out:
        note = "\n".join(filter(None, [note, f"{left_out} score(s) not finite (NaN or infinite) are not drawn"]))
    figure = _figure(figsize=(8, 4.4), dpi=100, layout="constrained")
    axis = figure.add_subplot()
    title = "Discriminator scores: generated vs real, and the uploads"
    axis.set_title(title + (f"\n{note}" if note else ""), fontsize=10)
    if finite:
        _draw_scores(figure, axis, generated, real, uploads, np.histogram_bin_edges(finite, bins=40))
    else:
        axis.text(
            0.5,
            0.5,
            "No finite discriminator score to draw",
            ha="center",
            va="center",
            fontsize=12,
            transform=axis.transAxes,
        )
        axis.set_axis_off()
    buffer = io.BytesIO()
    counts = {
        "generated_scores": str(len(generated)),
        "real_scores": str(len(real)),
        "uploads": str(len(uploads)),
        "not_finite": str(left_out),
    }
    figure.savefig(buffer, format="png", metadata=counts)  # PNG text, so tests and scripts can tell what it shows
    return buffer.getvalue()


def _draw_scores(
    figure, axis, generated: list[float], real: list[float], uploads: list[tuple[str, float]], bins
) -> None:
    if generated:
        axis.hist(
            generated,
            bins=bins,
            density=True,
            alpha=0.55,
            color="tab:orange",
            label=f"generated samples ({len(generated)})",
        )
    if real:
        axis.hist(
            real, bins=bins, density=True, alpha=0.55, color="tab:blue", label=f"real training images ({len(real)})"
        )
    many = len(uploads) > MARKED_UPLOADS
    for index, (name, logit) in enumerate(uploads):
        if many:
            color, label = "black", f"uploads ({len(uploads)})" if index == 0 else None
        else:
            color, label = f"C{index + 2}", f"{name if len(name) <= 28 else name[:25] + '...'}: {logit:+.2f}"
        axis.axvline(logit, color=color, linewidth=0.8 if many else 1.5, label=label)
    axis.set(xlabel="discriminator logit (higher = looks more like its training data)", ylabel="density")
    axis.grid(alpha=0.3)
    figure.legend(fontsize=8, loc="outside lower center", ncols=3)  # below the axes: the bars stay readable


def projection_curve(losses: list[float]) -> bytes:
    """PNG: a projection's objective after each Adam step, small enough to sit beside its images."""
    figure = _figure(figsize=(4.8, 2.2), dpi=100, layout="constrained")
    axis = figure.add_subplot()
    axis.plot(range(len(losses)), losses, color="tab:blue", linewidth=1.5)
    axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    axis.locator_params(axis="y", nbins=4)
    axis.set_xlabel(f"Adam step (objective {losses[0]:.3g} \u2192 {losses[-1]:.3g})", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3, which="both")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"steps": str(len(losses) - 1)})
    return buffer.getvalue()


def live_figure(records: list[dict], real: list[float], generated: list[float], title: str = "") -> bytes:
    """PNG: the Train tab's live view of a run from its metrics records and the discriminator's latest scores: the
    losses, D(x) and D(G(z)), a histogram of D's logits on real and generated images, each layer's weight norm (G,
    then D: how the weights change over time) and the learning rate. Drawn whole at every update (object API)."""
    figure = _figure(figsize=(12, 6.2), dpi=80)  # laid out by hand: constrained layout takes half the time
    axes = figure.subplots(2, 3, gridspec_kw={"left": 0.05, "right": 0.99, "bottom": 0.08, "top": 0.9})
    figure.subplots_adjust(wspace=0.22, hspace=0.42)
    if title:
        figure.suptitle(title, fontsize=11)
    steps = [r["step"] for r in records]
    losses, outputs, scores = axes[0]
    losses.plot(steps, [r["loss_d"] for r in records], label="D's loss")
    losses.plot(steps, [r["loss_g"] for r in records], label="G's loss")
    losses.set(title="Losses", xlabel="step")
    outputs.plot(steps, [r["d_real"] for r in records], color="tab:blue", label="D(x): real images")
    outputs.plot(steps, [r["d_fake"] for r in records], color="tab:orange", label="D(G(z)): generated")
    outputs.axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
    outputs.set(title="D's mean output (1 = sure it is real)", xlabel="step", ylim=(0, 1))
    finite = [*real, *generated]
    if finite:
        bins = np.histogram_bin_edges(finite, bins=30)
        scores.hist(real, bins=bins, alpha=0.55, color="tab:blue", label=f"real ({len(real)})")
        scores.hist(generated, bins=bins, alpha=0.55, color="tab:orange", label=f"generated ({len(generated)})")
    scores.set(title="D's scores now", xlabel="logit (higher = looks real to D)", ylabel="images")
    for axis, key, who in zip(axes[1][:2], ("weight_norms_g", "weight_norms_d"), ("G", "D"), strict=True):
        layers = records[-1].get(key, {}) if records else {}
        for layer in layers:
            axis.plot(steps, [r.get(key, {}).get(layer, float("nan")) for r in records], label=f"layer {layer}")
        axis.set(title=f"{who}'s weight norms per layer", xlabel="step", ylabel="L2 norm")
    rates = axes[1][2]
    rates.plot(steps, [r.get("lr_g", float("nan")) for r in records], color="tab:green", label="G and D")
    rates.set(title="Learning rate", xlabel="step")
    rates.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for axis in axes.flat:
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"step": str(steps[-1] if steps else 0)})
    return buffer.getvalue()
