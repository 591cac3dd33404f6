"""The app's handlers called in-process, without a server: each tab's handler class over the shared state that
build_demo makes (create_state), on the tiny exported model; the error decorator; the events build_demo wires; and
the app's command line refusing a model with exit status 2."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.utils import get_type_hints
from helpers import open_png
from PIL import Image

from gan.errors import GanError, ImageInputError
from gan.projection import load_latent
from gan.sampling import generate, latents_for_seeds
from gan.serve import main as serve
from gan.ui import build_demo
from gan.ui import project as project_module
from gan.ui.handlers import shows_errors
from gan.ui.interpolate import InterpolateTab
from gan.ui.picker import ModelRef
from gan.ui.project import ProjectTab
from gan.ui.sample import SampleTab
from gan.ui.score import ScoreTab

PUBLIC = [  # the public events: their api_names, and the names of their handlers (and MCP tools)
    "select_model",
    "sample",
    "sample_gallery",
    "nearest",
    "interpolate",
    "project",
    "interpolate_latent",
    "score",
    "saliency",
    "arithmetic",
    "directions",
    "train",
]


def test_sample_and_its_gallery_carry_the_seeds(state, model):
    tab = SampleTab(state)
    grid = open_png(tab.sample(5, 4))
    assert grid.text["seeds"] == "5-8" and grid.text["model"] == model.name
    assert grid.text["revision"].startswith("local sha256:") and "truncation" not in grid.text
    assert open_png(tab.sample(5, 4, 0.5, 4)).text["truncation"] == "0.5"
    gallery, shown = tab.sample_gallery(5, 4)
    assert shown == {"seed": 5, "truncation": None}
    expected = generate(model.generator, latents_for_seeds(5, 4, model.config.nz))
    assert [caption for _, caption in gallery] == [f"seed {5 + i}" for i in range(4)]
    for i, (path, _) in enumerate(gallery):
        single = open_png(path)
        assert single.text["seed"] == str(5 + i) and np.array_equal(np.asarray(single), expected[i, 0].numpy())
    with pytest.raises(gr.Error, match="count must be a whole number between 1 and 64"):
        tab.sample(0, float("nan"))
    with pytest.raises(gr.Error, match="run past 4294967295"):
        tab.sample(2**32 - 1, 2)


def test_nearest_and_a_click_on_the_gallery(state):
    tab = SampleTab(state)
    gallery, note = tab.nearest(3)
    if gallery:  # the tiny model's training data is on this machine (its config names the folder)
        assert len(gallery) == 9 and gallery[0][1] == "seed 3" and "8 nearest of 64 mnist training images" in note
        assert open_png(gallery[0][0]).text["seed"] == "3"
    else:
        assert note.startswith("No memorisation check for this model:")
    seed, clicked, clicked_note = tab.check_selected({"seed": 1, "truncation": None}, None, _selected(2))
    assert seed == 3 and len(clicked) == len(gallery) and clicked_note == note
    assert tab.check_selected(None, None, _selected(0))[1:] == ([], "")


def _selected(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


def test_interpolate_returns_a_gif_and_a_strip(state):
    gif, strip = InterpolateTab(state).interpolate(1, 2, 5, "lerp", True, 10)
    assert Image.open(gif).format == "GIF"
    text = open_png(strip).text
    assert (text["seed_a"], text["seed_b"], text["frames"], text["mode"], text["pingpong"], text["fps"]) == (
        "1",
        "2",
        "5",
        "lerp",
        "True",
        "10",
    )
    with pytest.raises(gr.Error, match="mode must be one of lerp, slerp, got 'cubic'"):
        InterpolateTab(state).interpolate(1, 2, 5, "cubic")


@pytest.fixture(scope="module")
def projected(state):
    """Seed 3's sample projected back with a small budget: the six outputs of /project."""
    [(sample, _)], _ = SampleTab(state).sample_gallery(3, 1)
    return sample, ProjectTab(state).project(sample, steps=5, restarts=1)


def test_project_returns_its_six_outputs(projected, model):
    sample, (target, reconstruction, z_file, distance, report, curve) = projected
    assert np.array_equal(np.asarray(open_png(target)), np.asarray(open_png(sample)))
    assert open_png(reconstruction).text["image"] == "reconstruction" and 0 <= distance <= 1
    z = load_latent(z_file, model.config.nz)
    assert np.array_equal(generate(model.generator, z[None])[0, 0].numpy(), np.asarray(open_png(reconstruction)))
    assert f"Distance {distance:.4f}" in report and "5 steps x 1 restarts" in report
    assert open_png(curve).text["steps"] == "5"


def test_project_end_does_only_what_it_returns(state, projected, monkeypatch):
    def no_curve(losses):
        raise AssertionError("project_end drew the objective's curve")

    monkeypatch.setattr(project_module, "projection_curve", no_curve)
    before = set(state.outputs.folder.iterdir())
    reconstruction, z_file, report = ProjectTab(state).project_end(projected[0], steps=3, restarts=1)
    written = set(state.outputs.folder.iterdir()) - before
    assert {str(path) for path in written} == {reconstruction, z_file}  # no target PNG, no curve
    assert open_png(reconstruction).text["image"] == "reconstruction" and z_file.endswith(".npy")
    assert "3 steps x 1 restarts" in report


def test_project_refuses_a_bad_upload_with_its_message(state, uploads):
    with pytest.raises(gr.Error) as error:
        ProjectTab(state).project(str(uploads["notes.txt"]), steps=1, restarts=1)
    assert error.value.message.startswith("notes.txt: not an image")
    with pytest.raises(gr.Error, match="upload an image to project"):
        ProjectTab(state).project(None)


def test_interpolate_latent_to_a_seed_and_to_a_latent(state, projected, tmp_path):
    z_file = projected[1][2]
    tab = ProjectTab(state)
    gif, strip = tab.interpolate_latent(z_file, seed_b=4, frames=3, fps=10)
    assert Image.open(gif).format == "GIF" and open_png(strip).text["seed_b"] == "4"
    _, strip = tab.interpolate_latent(z_file, seed_b=4, z_b=z_file, frames=2)
    assert "z_b" in open_png(strip).text and "seed_b" not in open_png(strip).text
    np.save(tmp_path / "short.npy", np.zeros(5, np.float32))
    with pytest.raises(gr.Error) as error:
        tab.interpolate_latent(str(tmp_path / "short.npy"), seed_b=1)
    assert error.value.message == "z_a: short.npy: shape (5,) does not fit this model; expected (8,)"
    with pytest.raises(gr.Error, match="give the end of the walk"):
        tab.interpolate_latent(z_file, seed_b=None)


def test_score_names_a_bad_file(state, uploads):
    tab = ScoreTab(state)
    gallery, table, message, histogram = tab.score([str(uploads["good.png"]), str(uploads["notes.txt"])])
    assert [row[0] for row in table] == ["good.png"] and len(gallery) == 1
    assert "notes.txt: not an image" in message and open_png(histogram).width >= 600
    assert tab.score([str(uploads["good.png"])], [str(uploads["rgb.jpg"])])[2] == "All files scored."
    with pytest.raises(gr.Error) as error:
        tab.score([str(uploads["notes.txt"])])
    assert "notes.txt: not an image" in error.value.message
    with pytest.raises(gr.Error, match="upload one or more image files"):
        tab.score(None)


def test_select_model_keeps_the_packages_message(state, model):
    picker = state.models
    ref, summary = picker.select_model(next(iter(picker.choices)))
    assert ref == picker.initial and "z=8" in summary
    with pytest.raises(gr.Error, match="neither a listed model nor a Hub repo id"):
        picker.select_model("../../etc")
    with pytest.raises(gr.Error) as error:  # HF_HUB_OFFLINE=1 (tests/helpers.py): the Hub loader's HubError
        picker.select_model("alice/nope-not-cached")
    assert error.value.message == (
        "alice/nope-not-cached@main is not on this server, which works offline: choose a listed model"
    )
    with pytest.raises(gr.Error, match="The model you trained is no longer on this server"):
        state.current(ModelRef(folder="/nonexistent/export"))  # a visitor's model, deleted
    with pytest.raises(gr.Error) as error:
        state.current(ModelRef(folder=str(Path(__file__).parent)))  # there, but no export: named without its path
    assert error.value.message == (
        "your model could not be reloaded (the export is not a model export: config.json is missing); pick it again "
        "or choose another"
    )


def test_the_error_decorator_keeps_name_signature_and_message():
    def handler(image: str | None, steps: float = 3, request: gr.Request | None = None):
        """Docs."""
        if image == "bad":
            raise ImageInputError("bad: not an image")
        if image == "broken":
            raise ValueError("a bug")
        return image

    shown = shows_errors(handler)
    assert (shown.__name__, shown.__doc__, shown.__wrapped__) == ("handler", "Docs.", handler)
    assert inspect.signature(shown) == inspect.signature(handler)
    assert typing.get_type_hints(shown) == typing.get_type_hints(handler)  # how Gradio finds gr.Request
    assert shown("good") == "good"
    with pytest.raises(gr.Error) as error:
        shown("bad")
    assert error.value.message == "bad: not an image" and not isinstance(error.value, GanError)
    with pytest.raises(ValueError, match="a bug"):  # not the package's error: left to Gradio
        shown("broken")
    # the tabs' bound methods: the event's name and a signature without self
    tab = ProjectTab(None)
    assert tab.project.__name__ == "project"
    assert list(inspect.signature(tab.project).parameters) == ["image", "steps", "restarts", "ref", "request"]
    assert get_type_hints(tab.interpolate_latent)["request"] == gr.Request | None  # what Gradio reads


def test_build_demo_wires_the_public_events_to_the_handlers(model):
    demo = build_demo(model)
    public = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert sorted(public) == sorted(PUBLIC)
    for name, fn in public.items():
        assert fn.fn.__name__ == name and inspect.ismethod(fn.fn)  # handlers named as their events
    assert not any(isinstance(block, gr.State) for block in public["sample"].inputs[:-1])
    parameters = {p["parameter_name"] for p in demo.get_api_info()["named_endpoints"]["/sample"]["parameters"]}
    assert parameters == {"seed", "count", "truncation", "columns"}  # the session's model stays out of the API
    assert (public["project"].concurrency_id, public["interpolate"].concurrency_id) == ("projection", "animation")
    assert public["project"].validator is not None and public["sample"].concurrency_limit == 2


def test_the_app_command_line_exits_2_on_a_bad_model(tmp_path, capsys):
    assert serve(["--checkpoint", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
