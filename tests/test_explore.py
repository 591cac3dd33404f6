"""Looking inside the model (gan/explore.py, the Explore tab, the Score tab's saliency maps): latent arithmetic,
principal directions and their cache, SmoothGrad saliency; the handlers in-process and, marked slow, through
gradio_client on the launched app."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import open_png
from PIL import Image

from gan import explore
from gan.checkpoint import load_model
from gan.images import uint8_to_model_input
from gan.projection import load_latent, save_latent
from gan.sampling import generate, latent_for_seed, latents_for_seeds
from gan.ui.explore import ExploreTab
from gan.ui.project import ProjectTab
from gan.ui.sample import SampleTab
from gan.ui.score import ScoreTab


@pytest.fixture
def bad_latents(tmp_path):
    """z.npy files Project refuses, by name: a pickle, a wrong shape, a NaN (for the tiny model's nz of 8)."""
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)
    np.save(tmp_path / "short.npy", np.zeros(5, np.float32))
    np.save(tmp_path / "nan.npy", np.array([0, 1, np.nan, 0, 0, 0, 0, 0], np.float32))
    return {
        "objects.npy": (tmp_path / "objects.npy", "holds Python objects"),
        "short.npy": (tmp_path / "short.npy", r"shape \(5,\) does not fit this model; expected \(8,\)"),
        "nan.npy": (tmp_path / "nan.npy", "1 of 8 values are NaN or infinite"),
    }


# Arithmetic


def test_b_equal_to_c_gives_exactly_mean_a():
    """mean A + (mean C - mean B) is exactly mean A when B equals C, for every one of 1000 random vectors; the other
    order, (mean A - mean B) + mean C, is not (which is why combine computes it this way)."""
    stream = torch.Generator().manual_seed(0)
    for _ in range(1000):
        a, b = torch.randn(3, 100, generator=stream), torch.randn(2, 100, generator=stream) * 3
        z, means = explore.combine(a, b, b.clone())
        assert torch.equal(z, a.mean(0)) and torch.equal(means[0], a.mean(0))
    a, b = torch.randn(1000, 3, 100, generator=stream), torch.randn(1000, 2, 100, generator=stream) * 3
    other = (a.mean(1) - b.mean(1)) + b.mean(1)
    assert (other != a.mean(1)).any(1).all()  # every one of the 1000 vectors changed


def test_arithmetic_with_b_equal_to_c_is_g_of_mean_a_byte_for_byte(model):
    a = latents_for_seeds(1, 3, model.config.nz)
    b = latents_for_seeds(10, 2, model.config.nz)
    result = explore.arithmetic(model.generator, a, b, b.clone(), neighbours=4)
    expected = generate(model.generator, a.mean(0)[None])[0]  # the same batch shape: one latent
    assert torch.equal(result.image, expected) and torch.equal(result.mean_images[0], expected)
    assert [len(m) for m in result.members] == [3, 2, 2] and result.neighbours.shape == (4, 1, 32, 32)
    assert torch.equal(result.members[0], generate(model.generator, a))
    close = explore.neighbour_latents(result.z, 4, 0.25, seed=0)
    assert torch.equal(result.neighbours, generate(model.generator, close))
    again = explore.arithmetic(model.generator, a, b, b.clone(), neighbours=4)
    assert torch.equal(again.neighbours, result.neighbours)  # seeded noise
    assert explore.arithmetic(model.generator, a, b, b, neighbours=0).neighbours.shape[0] == 0
    with pytest.raises(ValueError, match="1 to 3 latents"):
        explore.arithmetic(model.generator, latents_for_seeds(0, 4, 8), b, b)


def test_arithmetic_handler_returns_the_figure_the_result_and_its_z(state, model):
    tab = ExploreTab(state)
    figure, alone, z_file = tab.arithmetic("1, 2 3", "7;8", "7, 8", neighbours=3)
    nz = model.config.nz
    mean_a = latents_for_seeds(1, 3, nz).mean(0)
    assert torch.equal(load_latent(z_file, nz), mean_a) and z_file.rsplit("/", 1)[1].startswith("z-arithmetic-")
    assert np.array_equal(np.asarray(open_png(alone)), generate(model.generator, mean_a[None])[0, 0].numpy())
    text = open_png(figure).text
    assert (text["group_a"], text["group_b"], text["neighbour_noise"]) == (
        "seed 1, seed 2, seed 3",
        "seed 7, seed 8",
        "0.25",
    )
    assert open_png(figure).width > 3 * 3 * explore.CELL
    # the result's z walks in Project, and comes back as a group
    gif, _ = ProjectTab(state).interpolate_latent(z_file, seed_b=4, frames=3)
    assert Image.open(gif).format == "GIF"
    _, again, _ = tab.arithmetic("", "5", "5", z_a=[z_file])
    assert np.array_equal(np.asarray(open_png(again)), np.asarray(open_png(alone)))


def test_arithmetic_refuses_bad_groups_and_bad_latent_files(state, bad_latents, tmp_path):
    import gradio as gr

    tab = ExploreTab(state)
    for name, (path, problem) in bad_latents.items():
        with pytest.raises(gr.Error, match=f"z_b: {name}: {problem}"):
            tab.arithmetic("1", "", "3", z_b=[str(path)])
    good = save_latent(latent_for_seed(0, 8), tmp_path / "good.npy")
    cases = [
        (("1, 2, 3, 4", "5", "6"), {}, "group A holds 4: give it one to 3 seeds or z.npy files"),
        (("1, 2", "5", "6"), {"z_a": [str(good)] * 2}, "group A holds 4"),
        (("1", "", "6"), {}, "group B is empty"),
        (("1", "2", "x"), {}, "seeds_c: 'x' is not a seed"),
        (("1", "2", "4294967296"), {}, "seeds_c: '4294967296' is not a seed"),
        (("1", "-2", "3"), {}, "seeds_b: '-2' is not a seed"),
        (("1", "2", "3"), {"neighbours": 17}, "neighbours: Value 17 is greater than maximum value 16"),
        (("1", "2", "3"), {"noise": float("nan")}, "noise must be a number between 0 and 2.0"),
    ]
    for groups, options, message in cases:
        with pytest.raises(gr.Error, match=message):
            tab.arithmetic(*groups, **options)


# Directions


def test_directions_are_orthonormal_ordered_signed_and_the_pca_of_the_first_layer(model):
    vectors, variance = explore.compute_directions(model.generator)
    nz = model.config.nz
    assert vectors.shape == (nz, nz) and vectors.dtype == torch.float32
    assert torch.allclose(vectors @ vectors.T, torch.eye(nz), atol=1e-5)
    assert (variance[:-1] >= variance[1:]).all() and abs(float(variance.sum()) - 1) < 1e-9
    largest = vectors.abs().argmax(1)
    assert (vectors.gather(1, largest[:, None]) > 0).all()  # the sign convention
    again = explore.compute_directions(model.generator)
    assert torch.equal(again[0], vectors) and torch.equal(again[1], variance)
    # GANSpace's recipe on samples finds the same top direction: PCA of the first layer's pre-ReLU activations,
    # its first component regressed back onto z
    z = torch.randn(20000, nz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        activations = model.generator.main[:2](z[:, :, None, None]).flatten(1).double()
    centred = activations - activations.mean(0)
    component = torch.linalg.svd(centred, full_matrices=False)[2][0]
    regressed = torch.linalg.lstsq(z.double(), centred @ component[:, None]).solution[:, 0]
    assert abs(float(torch.nn.functional.cosine_similarity(regressed.float(), vectors[0], dim=0))) > 0.99


def test_directions_are_cached_on_disk_by_the_weights_digest(model, monkeypatch, tmp_path):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path))
    explore.forget_directions()
    found = explore.principal_directions(model.generator)
    path = tmp_path / "directions" / f"{found.digest}.safetensors"
    assert path.is_file() and found.digest == explore.weights_digest(model.generator)
    assert explore.principal_directions(model.generator) is found  # memory

    def not_again(generator):
        raise AssertionError("computed again instead of read from the cache")

    explore.forget_directions()
    compute = explore.compute_directions
    monkeypatch.setattr(explore, "compute_directions", not_again)
    read = explore.principal_directions(model.generator)  # the file
    assert torch.equal(read.vectors, found.vectors) and torch.equal(read.variance, found.variance)
    monkeypatch.setattr(explore, "compute_directions", compute)
    path.write_bytes(b"torn")  # a broken cache file is computed again, and rewritten
    explore.forget_directions()
    assert torch.equal(explore.principal_directions(model.generator).vectors, found.vectors)
    assert path.stat().st_size > 100
    other = load_model(model.source)  # the same weights loaded again: the same digest
    assert explore.weights_digest(other.generator) == found.digest
    with torch.no_grad():
        other.generator.main[0].weight[0, 0, 0, 0] += 1
    explore.forget_directions()
    assert explore.weights_digest(other.generator) != found.digest


def test_broken_weights_have_no_directions(model):
    broken = load_model(model.source)
    with torch.no_grad():
        broken.generator.main[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(explore.ExploreError, match="not finite"):
        explore.compute_directions(broken.generator)


def test_directions_handler_moves_the_seed_and_shows_strips(state, model):
    tab = ExploreTab(state)
    sample, strips, table, z_file = tab.directions(3)
    [(single, _)], _ = SampleTab(state).sample_gallery(3, 1)
    assert np.array_equal(np.asarray(open_png(sample)), np.asarray(open_png(single)))  # no move: the seed's own sample
    assert [row[0] for row in table] == list(range(1, 9)) and table[0][1] >= table[1][1] and table[-1][2] <= 100
    strips = open_png(strips)
    assert strips.height > 8 * explore.CELL and strips.text["strips"] == "directions 1-8, -3 to +3"
    found = explore.principal_directions(model.generator)
    moved, _, _, moved_z = tab.directions(3, 2.0, 0, -1.5)
    expected = latent_for_seed(3, 8) + 2.0 * found.vectors[0] - 1.5 * found.vectors[2]
    assert torch.allclose(load_latent(moved_z, 8), expected, atol=1e-6)
    assert open_png(moved).text["d1"] == "2.0" and open_png(moved).text["d3"] == "-1.5"
    import gradio as gr

    with pytest.raises(gr.Error, match="d2: Value 3.5 is greater than maximum value 3.0"):
        tab.directions(3, 0, 3.5)


# Saliency


def test_saliency_has_the_inputs_shape_and_is_finite(model):
    images = generate(model.generator, latents_for_seeds(0, 5, 8))
    maps = explore.saliency(model.discriminator, images)
    assert maps.shape == images.shape and maps.dtype == torch.float32 and torch.isfinite(maps).all()
    assert torch.equal(maps, explore.saliency(model.discriminator, images))  # seeded noise
    plain = explore.saliency(model.discriminator, images, samples=1, noise=0)
    inputs = uint8_to_model_input(images).requires_grad_(True)
    model.discriminator(inputs).sum().backward()
    assert torch.allclose(plain, inputs.grad, atol=1e-6)
    picture = explore.saliency_overlay(images[0], maps[0])
    assert picture.size == (3 * 32 * 4 + 8, 32 * 4) and picture.mode == "RGB"
    assert explore.saliency_strength(torch.zeros(1, 32, 32)).max() == 0


def test_saliency_handler_maps_uploads_and_a_seed(state, uploads):
    import gradio as gr

    tab = ScoreTab(state)
    gallery, note = tab.saliency([str(uploads["good.png"]), str(uploads["notes.txt"])], [str(uploads["rgb.jpg"])], 4)
    assert [caption.split(" ", 1)[1] for _, caption in gallery] == ["good.png", "rgb.jpg", "seed 4"]
    assert note == "Saliency maps of 2 upload(s) and seed 4. Skipped unusable file(s): notes\\.txt."
    assert open_png(gallery[-1][0]).text["image"] == "seed 4" and open_png(gallery[0][0]).width == 3 * 128 + 8
    gallery, _ = tab.saliency(None, None, 0)  # the generated sample alone
    assert len(gallery) == 1
    with pytest.raises(gr.Error, match="seed must be a whole number"):
        tab.saliency(None, None, float("nan"))


# Through gradio_client on the launched app


@pytest.mark.slow
def test_arithmetic_directions_and_saliency_through_the_api(client, uploads, bad_latents, tiny_run):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    model = load_model(tiny_run / "model")
    figure, alone, z_file = client.predict(
        seeds_a="1, 2, 3", seeds_b="7", seeds_c="7", neighbours=2, api_name="/arithmetic"
    )
    mean_a = latents_for_seeds(1, 3, 8).mean(0)
    assert torch.equal(load_latent(z_file, 8), mean_a)
    assert np.array_equal(np.asarray(open_png(alone)), generate(model.generator, mean_a[None])[0, 0].numpy())
    assert open_png(figure).text["group_b"] == "seed 7"
    _, again, _ = client.predict(
        seeds_a="", seeds_b="7", seeds_c="7", z_a=[handle_file(z_file)], api_name="/arithmetic"
    )
    assert np.array_equal(np.asarray(open_png(again)), np.asarray(open_png(alone)))
    gif, _ = client.predict(z_a=handle_file(z_file), seed_b=4, frames=3, api_name="/interpolate_latent")
    assert Image.open(gif).format == "GIF"
    for name, (path, problem) in bad_latents.items():
        with pytest.raises(AppError, match=f"z_c: {name}: {problem}"):
            client.predict(seeds_a="1", seeds_b="2", seeds_c="", z_c=[handle_file(path)], api_name="/arithmetic")

    sample, strips, table, moved_z = client.predict(seed=3, d1=1.5, api_name="/directions")
    assert open_png(sample).text["d1"] == "1.5" and len(table["data"]) == 8 and load_latent(moved_z, 8).shape == (8,)
    with pytest.raises(AppError, match="d8: Value -4 is less than minimum value -3"):
        client.predict(seed=3, d8=-4, api_name="/directions")

    gallery, note = client.predict(images=[handle_file(uploads["good.png"])], seed=2, api_name="/saliency")
    assert [item["caption"].split(" ", 1)[1] for item in gallery] == ["good.png", "seed 2"]
    # /score keeps its four outputs
    seen, table, problems, histogram = client.predict(images=[handle_file(uploads["good.png"])], api_name="/score")
    assert problems == "All files scored."
