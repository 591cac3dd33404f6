"""The app's building blocks in-process: truncated seeds, ping-pong, upscaling, the model summary, the score
histogram, the training-data lookup and the nearest-image search."""

from __future__ import annotations

import io
import math
import os
import time

import pytest
import torch
from PIL import Image

from gan.checkpoint import load_model
from gan.plots import score_histogram
from gan.sampling import MIN_TRUNCATION, latent_for_seed, latents_for_seeds, ping_pong, upscale
from gan.ui.assets import OutputFiles, ReferenceScores, TrainingData, model_identity, model_summary, nearest_images


@pytest.mark.parametrize("truncation", [0.3, 1.0, 2.0])
def test_truncation_redraws_only_large_entries_from_the_seeds_own_stream(truncation):
    plain = torch.randn(512, generator=torch.Generator().manual_seed(77))
    assert torch.equal(latent_for_seed(77, 512), plain)  # the core rule, untouched
    truncated = latent_for_seed(77, 512, truncation)
    assert truncated.abs().max() <= truncation
    inside = plain.abs() <= truncation
    assert torch.equal(truncated[inside], plain[inside]) and not torch.equal(truncated, plain)
    assert torch.equal(latent_for_seed(77, 512, truncation), truncated)  # deterministic per seed
    assert torch.equal(latents_for_seeds(76, 3, 512, truncation)[1], truncated)  # image i of a grid is seed s+i


def test_truncation_off_and_out_of_range():
    assert torch.equal(latent_for_seed(3, 16, 0), latent_for_seed(3, 16))
    assert torch.equal(latent_for_seed(3, 16, None), latent_for_seed(3, 16))
    for bad in (MIN_TRUNCATION / 2, -1.0, math.nan):
        with pytest.raises(ValueError, match="truncation must be 0"):
            latent_for_seed(3, 16, bad)


def test_ping_pong_and_bounded_upscale():
    assert ping_pong(list("abcd")) == list("abcdcb") and ping_pong(list("ab")) == list("ab")
    strip = Image.new("L", (64 * 34 + 2, 36))  # a one-row grid of 64 samples
    assert upscale(strip).size == strip.size  # not 14x wider
    assert upscale(Image.new("L", (32, 32))).size == (512, 512)


def _metadata(**extra) -> dict:
    return {"name": "m", "dataset": "fashion-mnist", "training": {"steps": 10, "time_s": 60, "device": "CPU"}, **extra}


def test_model_summary_shows_the_card(tiny_run):
    model = load_model(tiny_run / "model")
    model.metadata = _metadata(
        final_metrics={"d_real": 0.75, "d_fake": 0.21},
        evaluation={"fd": 12.345, "precision": 0.61, "recall": 0.42, "num": 1000, "step": 10},
    )
    text = model_summary(model)
    for part in (
        "**Dataset:** fashion-mnist",
        "32x32, 1 channel, z=8",
        "10 steps",
        "D(real) 0.75, D(generated) 0.21",
        "(1000 samples, step 10): FD 12.3, precision 0.61, recall 0.42",
    ):
        assert part in text
    model.metadata = _metadata()
    assert "**Evaluation:** none recorded" in model_summary(model)


def test_model_identity(tiny_run):
    model = load_model(tiny_run / "model")
    identity = model_identity(model)
    assert identity["model"] == model.name and identity["revision"].startswith("local sha256:")
    model.metadata = {**model.metadata, "hub": {"repo_id": "alice/gan", "revision": "main", "commit": "c" * 40}}
    assert model_identity(model) == {"model": "alice/gan", "revision": "c" * 40}


def test_score_histogram_is_a_png_with_or_without_real_data():
    generated, real = [-2.0 + i / 50 for i in range(100)], [0.5 + i / 50 for i in range(100)]
    for real_scores, uploads in ((real, [("a.png", 0.1)]), (None, [(f"{i}.png", i / 10) for i in range(20)])):
        image = Image.open(
            io.BytesIO(score_histogram(generated, real_scores, uploads, "" if real_scores else "No real data."))
        )
        assert image.format == "PNG" and image.width >= 600


def test_training_data_is_found_locally_but_never_from_a_hub_models_paths(tiny_run, idx_dir):
    model = load_model(tiny_run / "model")
    assert model.metadata["training"]["args"]["data_dir"] == str(idx_dir)
    data = TrainingData()
    found = data.find(model)
    assert not isinstance(found, str) and found.images.shape[1:] == (1, 32, 32)
    assert data.find(model) is found  # loaded once
    model.metadata = {**model.metadata, "hub": {"repo_id": "eve/gan", "revision": "main", "commit": "e" * 40}}
    assert data.find(model) == "its training data (mnist) is not available on this server"
    references = ReferenceScores(data, samples=16).get("hub", model)
    assert len(references.generated) == 16 and references.real is None and "not available" in references.note


def test_reference_scores_and_nearest_images(tiny_run):
    model = load_model(tiny_run / "model")
    data = TrainingData()
    scores = ReferenceScores(data, samples=16)
    reference = scores.get("local", model)
    assert len(reference.generated) == 16 and len(reference.real) == 16 and reference.note == ""
    assert scores.get("local", model) is reference
    images = data.find(model).images
    indices, distances = nearest_images(images[5], images, k=3)
    assert indices[0] == 5 and distances[0] == 0 and distances == sorted(distances)


def test_output_files_are_unique_and_old_ones_pruned():
    files = OutputFiles(max_age_s=60, prune_every_s=0)
    first, second = files.write(b"same", ".png"), files.write(b"same", ".png")
    assert first != second  # byte-identical outputs never share a path
    os.utime(first, (time.time() - 120, time.time() - 120))
    files.write(b"new", ".png")
    assert not os.path.exists(first) and os.path.exists(second)


def test_score_histogram_leaves_out_scores_that_are_not_finite():
    nan, inf = float("nan"), float("inf")
    image = Image.open(io.BytesIO(score_histogram([0.1, nan, 0.3, inf], [nan, 1.0], [("a.png", nan), ("b.png", 0.2)])))
    assert image.format == "PNG" and image.text["not_finite"] == "4"
    assert (image.text["generated_scores"], image.text["real_scores"], image.text["uploads"]) == ("2", "1", "1")
    nothing = Image.open(io.BytesIO(score_histogram([nan] * 3, None, [("a.png", -inf)], "No real-data scores.")))
    assert nothing.format == "PNG" and nothing.width >= 600 and nothing.text["not_finite"] == "4"
    assert (nothing.text["generated_scores"], nothing.text["uploads"]) == ("0", "0")
