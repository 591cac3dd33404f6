"""The Space `deploy-space` builds: pinned versions every requirement supports, and, end to end on FakeHub, a Space
downloaded into an empty folder that runs `python app.py` from there and serves the pushed model's exact pixels."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from helpers import ROOT, RunningApp, run_script
from hub_server import FakeHub, hub_env
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from PIL import Image

pytestmark = pytest.mark.hub


TOKEN = "hf_alice"
REPO, SPACE = "alice/tiny-dcgan", "alice/studio"


def pinned_requirements() -> dict[str, str]:
    """requirements.txt (what a Space installs) as name -> pinned version."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name] = spec.version
    return pins


def test_the_package_depends_on_exactly_requirements_txt():
    """pyproject.toml's dependencies (what `pip install .` takes) and requirements.txt (what make and a Space take)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert project["dependencies"] == listed


def test_readme_pins_a_python_every_requirement_supports():
    from gan.hub.space import python_version

    card = SpaceCard.load(ROOT / "README.md")
    version = card.data.python_version
    assert isinstance(version, str) and re.fullmatch(r"3\.\d+", version), version
    assert python_version() == version  # deploy-space takes it from here
    pins = pinned_requirements()
    for name, pinned in pins.items():
        assert metadata.version(name) == pinned, f"the venv's {name} is not the pinned {pinned}"
        requires = metadata.metadata(name).get("Requires-Python")
        assert requires is None or version in SpecifierSet(requires), f"{name}=={pinned} needs Python {requires}"
    assert card.data.sdk_version == pins["gradio"]
    gitattributes = ROOT / ".gitattributes"
    assert not gitattributes.exists() or "filter=lfs" not in gitattributes.read_text()  # binaries stay plain on GitHub


DEPLOY = """
from huggingface_hub import HfApi
from gan.cli import main as cli

def deploy(space, repo, *extra):
    return call(cli, ["deploy-space", "--space-id", space, "--repo-id", repo, "--hub-token", token, *extra])

result["push"] = call(cli, ["push", export, "--hub-model-id", repo_id, "--hub-token", token])
result["commit"] = HfApi().model_info(repo_id).sha
result["deploy"] = deploy(space_id, repo_id)
result["deploy a revision"] = deploy("alice/studio-pinned", repo_id, "--revision", result["commit"])
result["deploy unreadable config"] = deploy("alice/studio-broken", "alice/broken")
result["deploy no model"] = deploy("alice/studio-empty", "alice/empty")
"""

# What a Space does before it starts: clone the repo, then download `preload_from_hub` into its Hugging Face cache.
BUILD = """
from huggingface_hub import SpaceCard, hf_hub_download, snapshot_download
snapshot_download(space_id, repo_type="space", local_dir=folder)
for entry in SpaceCard.load(Path(folder) / "README.md").data.preload_from_hub:
    repo, files, *commit = entry.split(" ")
    for name in files.split(","):
        hf_hub_download(repo, name, revision=commit[0] if commit else None)
"""


@pytest.fixture(scope="module")
def hub():
    with FakeHub(tokens={TOKEN: "alice"}) as hub:
        hub.create_repo("alice/broken")
        hub.upload("alice/broken", {"config.json": b"{not json", "model.safetensors": b"\0" * 16}, "Not a model")
        hub.create_repo("alice/empty")
        yield hub


@pytest.fixture(scope="module")
def deployed(hub, tiny_run, tmp_path_factory):
    home = tmp_path_factory.mktemp("deployer-hf")
    result = run_script(
        hub_env(hub, home), DEPLOY, export=str(tiny_run / "model"), repo_id=REPO, space_id=SPACE, token=TOKEN
    )
    for step in ("push", "deploy", "deploy a revision", "deploy unreadable config"):
        assert result[step]["code"] == 0, result[step]["stderr"]
    return result


def card(hub, space: str, tmp_path: Path) -> SpaceCard:
    (tmp_path / "README.md").write_bytes(hub.files(space, repo_type="space")["README.md"])
    return SpaceCard.load(tmp_path / "README.md")


def test_deploy_space_uploads_what_a_space_needs(hub, deployed, tiny_run, tmp_path):
    files = hub.files(SPACE, repo_type="space")
    package = {
        f"gan/{p.relative_to(ROOT / 'gan').as_posix()}"
        for p in (ROOT / "gan").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert {"gan/assets/fashion-mnist-features.safetensors", "gan/assets/fashion-mnist-features.json"} <= package
    assert {name for name in files if name.startswith("gan/")} == package
    assert all(files[name] == (ROOT / name).read_bytes() for name in package)
    assert {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.png")} <= set(files)
    assert files["packages.txt"].decode().split() == ["dataset-fashion-mnist"]
    assert "gan/assets/fashion-mnist-features.safetensors" in hub.lfs_files(SPACE, repo_type="space")
    gitattributes = files[".gitattributes"].decode().splitlines()
    for pattern in ("*.safetensors", "*.png", "*.gif", "*.npy", "*.pt", "*.bin"):
        assert f"{pattern} filter=lfs diff=lfs merge=lfs -text" in gitattributes, pattern
    readme = SpaceCard.load(ROOT / "README.md").data
    data = card(hub, SPACE, tmp_path).data
    assert (data.sdk, data.app_file, data.suggested_hardware) == ("gradio", "app.py", "cpu-basic")
    assert (data.python_version, data.sdk_version) == (readme.python_version, readme.sdk_version)
    assert data.models == [REPO] and data.datasets == ["ylecun/mnist"]  # the tiny model trained on MNIST-format files
    weights = ",".join(["config.json", *sorted(p.name for p in (tiny_run / "model").glob("*.safetensors"))])
    assert data.preload_from_hub == [f"{REPO} {weights}"]  # main: preloaded as it is when the Space builds
    # --revision: the variable and a preload pinned to that commit; no dataset when config.json is unreadable
    commit = deployed["commit"]
    assert hub.space_variables("alice/studio-pinned") == {"GAN_REPO_ID": REPO, "GAN_REVISION": commit}
    assert card(hub, "alice/studio-pinned", tmp_path).data.preload_from_hub == [f"{REPO} {weights} {commit}"]
    broken = card(hub, "alice/studio-broken", tmp_path).data
    assert broken.datasets is None and broken.preload_from_hub == ["alice/broken config.json,model.safetensors"]
    assert deployed["deploy no model"]["code"] == 2
    assert deployed["deploy no model"]["stderr"].startswith("error: alice/empty@main has no config.json")


def test_downloaded_space_serves_the_pushed_model(hub, deployed, tiny_run, tmp_path):
    from gan.checkpoint import load_model
    from gan.sampling import generate, grid_image, latents_for_seeds, upscale

    folder, home = tmp_path / "space", tmp_path / "space-hf"
    folder.mkdir()
    run_script(hub_env(hub, home), BUILD, space_id=SPACE, folder=str(folder))
    assert (folder / "app.py").is_file() and not (folder / "gan" / "__pycache__").exists()
    requests = len(hub.requests)
    env = hub_env(hub, home, GAN_REPO_ID=REPO, GRADIO_ANALYTICS_ENABLED="False")  # online, as on a Space
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    app = RunningApp(tmp_path / "app.log", [], env, cwd=folder)
    try:
        assert f"from {REPO}@main (commit {deployed['commit'][:7]})" in (tmp_path / "app.log").read_text()
        # the app imported the Space's own gan package (byte-code written next to it), not this checkout's
        assert list((folder / "gan" / "__pycache__").glob(f"serve.{sys.implementation.cache_tag}.pyc"))
        # the weights came from the build's preload: starting made no download
        assert not [path for method, path in hub.requests[requests:] if method == "GET" and "/resolve/" in path]
        client = Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
        served = Image.open(client.predict(seed=0, count=4, truncation=0, columns=0, api_name="/sample"))
    finally:
        app.stop()
    assert served.text["source"].startswith(f"{REPO}@main")
    model = load_model(tiny_run / "model")
    expected = upscale(grid_image(generate(model.generator, latents_for_seeds(0, 4, model.config.nz))))
    assert served.mode == expected.mode and np.array_equal(np.asarray(served), np.asarray(expected))
