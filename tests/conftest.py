"""Fixtures: small datasets in real formats, a tiny trained export, and the launched app (helpers: tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import RunningApp, make_idx_folder, tiny_mnist_args, train
from images_for_tests import write_test_images


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path_factory.getbasetemp() / "dcgan-cache"))


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist-idx")
    make_idx_folder(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, idx_dir) -> Path:
    """A run folder of a tiny MNIST-format model trained for 6 steps."""
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.getbasetemp() / "dcgan-cache")
    out = tmp_path_factory.mktemp("tiny-run")
    code = train(
        tiny_mnist_args(
            idx_dir, out, "--steps", "6", "--log-every", "2", "--sample-every", "3", "--checkpoint-every", "3"
        )
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def model(tiny_run):
    """The tiny run's export, loaded (once per test module)."""
    from gan.checkpoint import load_model

    return load_model(tiny_run / "model")


@pytest.fixture(scope="module")
def state(model, tmp_path_factory):
    """The app's shared state as build_demo makes it, over `model`, for handlers called in-process; its output files
    in a folder of the module's own."""
    from gan.ui import create_state
    from gan.ui.assets import OutputFiles

    return create_state(model, outputs=OutputFiles(parent=tmp_path_factory.mktemp("outputs")))


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """Test images of every kind the app meets (good, odd and broken files), by name."""
    return write_test_images(tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="session")
def app(tiny_run, tmp_path_factory):
    running = RunningApp(tmp_path_factory.mktemp("app") / "app.log", ["--checkpoint", str(tiny_run / "model")])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False, download_files=str(Path(app.log).parent / "downloads"))
