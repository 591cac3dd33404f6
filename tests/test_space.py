"""The Space `deploy-space` builds: pinned versions every requirement supports (ZeroGPU's own torch pair resolving on
its Python), the hardware asked for at creation and on a redeploy, the Hub's paid-plan refusal, and, end to end on
FakeHub, a Space downloaded into an empty folder that runs `python app.py` from there and serves the pushed model's
exact pixels."""

from __future__ import annotations

import json
import re
import subprocess
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
from packaging.utils import canonicalize_name
from PIL import Image

pytestmark = pytest.mark.hub


TOKEN, FREE_TOKEN = "hf_alice", "hf_carol"  # carol has no paid plan
REPO, SPACE = "alice/tiny-dcgan", "alice/studio"
PRIVATE_REPO = "alice/secret-dcgan"
SECOND_REPO = "alice/second-dcgan"
PAID_PLAN = (
    "Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO "
    "subscription. Subscribe at https://huggingface.co/pro"
)


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

def deploy(space, repo, *extra, token=token):
    return call(cli, ["deploy-space", "--space-id", space, "--repo-id", repo, "--hub-token", token, *extra])

CPU = ("--hardware", "cpu-basic")
result["push"] = call(cli, ["push", export, "--hub-model-id", repo_id, "--hub-token", token])
result["commit"] = HfApi().model_info(repo_id).sha
result["deploy"] = deploy(space_id, repo_id, *CPU)
result["deploy a revision"] = deploy("alice/studio-pinned", repo_id, "--revision", result["commit"], *CPU)
result["deploy unreadable config"] = deploy("alice/studio-broken", "alice/broken", *CPU)
result["deploy no model"] = deploy("alice/studio-empty", "alice/empty", *CPU)
result["deploy on zerogpu"] = deploy("alice/studio-zero", repo_id)
result["deploy a private model"] = deploy("alice/studio-secret", private_repo_id)
result["push a second"] = call(cli, ["push", export, "--hub-model-id", second_repo_id, "--hub-token", token])
result["deploy two"] = deploy("alice/studio-two", repo_id, "--repo-id", second_repo_id, "--repo-id", private_repo_id)
result["deploy then move"] = [
    deploy("alice/studio-moved", repo_id),
    deploy("alice/studio-moved", repo_id, "--hardware", "t4-small"),
    deploy("alice/studio-moved", repo_id, "--hardware", "t4-small"),
]
result["free on cpu"] = deploy("carol/studio", repo_id, *CPU, token=free_token)
result["free on zerogpu"] = deploy("carol/studio", repo_id, token=free_token)
result["free back to cpu"] = deploy("carol/studio", repo_id, *CPU, token=free_token)
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
    with FakeHub(tokens={TOKEN: "alice", FREE_TOKEN: "carol"}, free_plan={"carol"}) as hub:
        hub.create_repo("alice/broken")
        hub.upload("alice/broken", {"config.json": b"{not json", "model.safetensors": b"\0" * 16}, "Not a model")
        hub.create_repo("alice/empty")
        yield hub


@pytest.fixture(scope="module")
def deployed(hub, tiny_run, tmp_path_factory):
    home = tmp_path_factory.mktemp("deployer-hf")
    hub.create_repo(PRIVATE_REPO, private=True)
    export = {p.name: p.read_bytes() for p in (tiny_run / "model").iterdir() if p.is_file()}
    hub.upload(PRIVATE_REPO, export, "Upload a private model")
    result = run_script(
        hub_env(hub, home),
        DEPLOY,
        timeout_s=300,
        export=str(tiny_run / "model"),
        repo_id=REPO,
        private_repo_id=PRIVATE_REPO,
        second_repo_id=SECOND_REPO,
        space_id=SPACE,
        token=TOKEN,
        free_token=FREE_TOKEN,
    )
    succeeding = ["push", "deploy", "deploy a revision", "deploy unreadable config", "deploy on zerogpu"]
    succeeding += ["deploy a private model", "free on zerogpu", "push a second", "deploy two"]
    for step in [*(result[name] for name in succeeding), *result["deploy then move"]]:
        assert step["code"] == 0, step["stderr"]
    return result


def card(hub, space: str, tmp_path: Path) -> SpaceCard:
    (tmp_path / "README.md").write_bytes(hub.files(space, repo_type="space")["README.md"])
    return SpaceCard.load(tmp_path / "README.md")


def requirements(hub, space: str) -> dict[str, str]:
    """The Space's requirements.txt as name -> pinned version."""
    pins = {}
    for line in hub.files(space, repo_type="space")["requirements.txt"].decode().splitlines():
        (spec,) = Requirement(line).specifier
        pins[Requirement(line).name] = spec.version
    return pins


def python_version_of_readme() -> str:
    """The Python of this checkout's README, which the Space gets off ZeroGPU."""
    return SpaceCard.load(ROOT / "README.md").data.python_version


def hardware_requests(hub, space: str) -> int:
    """How many times the Space's hardware was requested after its creation."""
    return hub.requests.count(("POST", f"/api/spaces/{space}/hardware"))


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
    assert files["packages.txt"].decode().split() == ["dataset-fashion-mnist", "fonts-noto-color-emoji"]
    assert "gan/assets/fashion-mnist-features.safetensors" in hub.lfs_files(SPACE, repo_type="space")
    gitattributes = files[".gitattributes"].decode().splitlines()
    for pattern in ("*.safetensors", "*.png", "*.gif", "*.npy", "*.pt", "*.bin"):
        assert f"{pattern} filter=lfs diff=lfs merge=lfs -text" in gitattributes, pattern
    assert files["LICENSE"] == (ROOT / "LICENSE").read_bytes()
    readme = SpaceCard.load(ROOT / "README.md").data
    data = card(hub, SPACE, tmp_path).data
    assert (data.sdk, data.app_file, data.suggested_hardware) == ("gradio", "app.py", "cpu-basic")
    assert (data.python_version, data.sdk_version, data.license) == (readme.python_version, readme.sdk_version, "mit")
    # --hardware cpu-basic: created on it, with this checkout's pins (gradio left to the Space's sdk_version)
    assert hub.space_hardware(SPACE) == "cpu-basic" and hardware_requests(hub, SPACE) == 0
    pins = {name: version for name, version in pinned_requirements().items() if name not in ("gradio", "gradio-client")}
    assert requirements(hub, SPACE) == pins
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


def test_deploy_space_runs_on_zerogpu_by_default(hub, deployed, tiny_run, tmp_path):
    """ZeroGPU's Python and torch pair, the `spaces` package, the licence, and the hardware asked for at creation."""
    from gan.hub.space import SPACES_REQUIREMENT, ZEROGPU_PYTHON, ZEROGPU_TORCH

    space = "alice/studio-zero"
    assert f"to {hub.url}/spaces/{space} on zerogpu " in deployed["deploy on zerogpu"]["stdout"]
    assert hub.space_hardware(space) == "zero-a10g" and hardware_requests(hub, space) == 0
    data = card(hub, space, tmp_path).data
    assert (data.python_version, data.suggested_hardware, data.license) == (ZEROGPU_PYTHON, "zero-a10g", "mit")
    assert ZEROGPU_PYTHON == "3.12" and data.sdk_version == pinned_requirements()["gradio"]
    weights = ",".join(["config.json", *sorted(p.name for p in (tiny_run / "model").glob("*.safetensors"))])
    assert data.preload_from_hub == [f"{REPO} {weights}"]
    assert hub.files(space, repo_type="space")["LICENSE"] == (ROOT / "LICENSE").read_bytes()
    # this checkout's pins but ZeroGPU's torch pair, and `spaces`; gradio is left to the Space's sdk_version
    checkout = {name: version for name, version in pinned_requirements().items() if not name.startswith("gradio")}
    pins = requirements(hub, space)
    assert ZEROGPU_TORCH == {"torch": "2.11.0", "torchvision": "0.26.0"}
    assert pins == {**checkout, **ZEROGPU_TORCH, "spaces": pins["spaces"]}
    assert f"spaces=={pins['spaces']}" == SPACES_REQUIREMENT
    assert "--hardware" not in card(hub, space, tmp_path).text  # a redeploy as the README says stays on ZeroGPU


def test_a_private_model_is_downloaded_when_the_app_starts(hub, deployed, tmp_path):
    """The Hub cannot preload a private repo while the Space builds: no preload_from_hub, and the README and the
    command say that the app downloads it with the Space secret HF_TOKEN."""
    space = "alice/studio-secret"
    note = f"note: {PRIVATE_REPO} is private: add a read token as the secret HF_TOKEN"
    assert note in deployed["deploy a private model"]["stdout"]
    readme = card(hub, space, tmp_path)
    assert "preload_from_hub" not in readme.data.to_dict() and readme.data.models == [PRIVATE_REPO]
    assert "the app downloads them when it starts, with a read token in the Space secret `HF_TOKEN`" in readme.text


def test_a_space_serves_several_models_the_first_by_default(hub, deployed, tiny_run, tmp_path):
    """Several --repo-id: the variable lists them, the first first; each public one is preloaded when the Space
    builds and listed by the app's picker, served with no download at start; a private one is downloaded then."""
    space = "alice/studio-two"
    assert hub.space_variables(space) == {"GAN_REPO_ID": f"{REPO},{SECOND_REPO},{PRIVATE_REPO}"}
    data = card(hub, space, tmp_path).data
    weights = ",".join(["config.json", *sorted(p.name for p in (tiny_run / "model").glob("*.safetensors"))])
    assert data.models == [REPO, SECOND_REPO, PRIVATE_REPO]
    assert data.preload_from_hub == [f"{REPO} {weights}", f"{SECOND_REPO} {weights}"]
    assert (
        f"and, in its model picker, [{SECOND_REPO}](/{SECOND_REPO}), [{PRIVATE_REPO}]"
        in card(hub, space, tmp_path).text
    )
    folder, home = tmp_path / "space", tmp_path / "space-hf"
    folder.mkdir()
    run_script(hub_env(hub, home), BUILD, space_id=space, folder=str(folder))
    requests = len(hub.requests)
    env = hub_env(hub, home, GAN_REPO_ID=f"{REPO},{SECOND_REPO},{PRIVATE_REPO}", HF_TOKEN=TOKEN)
    app = RunningApp(tmp_path / "app.log", ["--no-mcp"], env, cwd=folder)
    try:
        client = Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
        choices = client.view_api(return_format="dict")["named_endpoints"]["/select_model"]["parameters"][0]
        assert choices["parameter_default"] == REPO and choices["type"]["enum"][:3] == [REPO, SECOND_REPO, PRIVATE_REPO]
        assert SECOND_REPO in client.predict(model=SECOND_REPO, revision="", api_name="/select_model")
    finally:
        app.stop()
    downloads = {path for method, path in hub.requests[requests:] if method == "GET" and "/resolve/" in path}
    assert downloads and all(PRIVATE_REPO in path for path in downloads)  # the preloaded ones: none


def test_a_redeploy_moves_the_space_to_the_hardware_asked_for(hub, deployed, tmp_path):
    """Creating an existing Space changes nothing: a redeploy on other hardware requests it, once; the same again
    requests nothing."""
    space = "alice/studio-moved"
    assert hub.space_hardware(space) == "t4-small" and hardware_requests(hub, space) == 1
    readme = card(hub, space, tmp_path)
    assert (readme.data.suggested_hardware, readme.data.python_version) == ("t4-small", python_version_of_readme())
    assert "--repo-id USER/MODEL --hardware t4-small\n" in readme.text
    pins = requirements(hub, space)
    assert pins["torch"] == pinned_requirements()["torch"] and "spaces" not in pins
    # the initial commit and two deploys: the third changed nothing
    assert len(hub.commits(space, repo_type="space")) == 3


def test_a_free_account_is_refused_a_cpu_space_and_told_why(hub, deployed):
    """The Hub's 402 for a Gradio Space on CPU without a paid plan, at creation and on a move, as one line naming
    ZeroGPU; on ZeroGPU the same account deploys."""
    expected = (
        f"error: the Hub refused carol/studio on --hardware cpu-basic (402: {PAID_PLAN}): deploy on ZeroGPU "
        "(--hardware zerogpu, the default: free accounts in good standing may host 2 such Spaces), or subscribe to "
        "PRO (a person) or Team/Enterprise (an organization)\n"
    )
    assert (deployed["free on cpu"]["code"], deployed["free on cpu"]["stderr"]) == (2, expected)
    assert (deployed["free back to cpu"]["code"], deployed["free back to cpu"]["stderr"]) == (2, expected)
    assert hub.space_hardware("carol/studio") == "zero-a10g"
    assert [c["title"] for c in hub.commits("carol/studio", repo_type="space")] == [
        f"Deploy DCGAN Studio serving {REPO}",
        "initial commit",
    ]


@pytest.mark.parametrize("name", ["zerogpu", "cpu-basic", "cpu-upgrade", "t4-small", "a10g-large", "rtx-pro-6000"])
def test_each_hardware_builds_its_space(name):
    """What --hardware NAME gives: the flavour in the front matter, and ZeroGPU's Python, torch and `spaces` only on
    ZeroGPU."""
    from gan.cli import build_parser
    from gan.hub.space import HARDWARE, ZEROGPU_PYTHON, SpaceModel, space_files, space_hardware

    assert name in HARDWARE
    args = build_parser().parse_args(["deploy-space", "--space-id", SPACE, "--repo-id", REPO, "--hardware", name])
    flavor = space_hardware(args.hardware)
    assert flavor == ("zero-a10g" if name == "zerogpu" else name)
    files = space_files([SpaceModel(REPO, ["config.json", "model.safetensors"])], None, SPACE, hardware=flavor)
    readme = SpaceCard(files["README.md"].decode())
    zerogpu = name == "zerogpu"
    assert readme.data.suggested_hardware == flavor
    assert readme.data.python_version == (ZEROGPU_PYTHON if zerogpu else python_version_of_readme())
    lines = files["requirements.txt"].decode().splitlines()
    assert ("torch==2.11.0" in lines, any(line.startswith("spaces==") for line in lines)) == (zerogpu, zerogpu)
    assert ("--hardware" in readme.text) != zerogpu


def test_hardware_choices():
    from gan.cli import build_parser
    from gan.errors import GanError
    from gan.hub.space import HARDWARE, space_hardware

    parser = build_parser()
    assert parser.parse_args(["deploy-space", "--space-id", SPACE, "--repo-id", REPO]).hardware == "zerogpu"
    assert list(HARDWARE)[:3] == ["zerogpu", "cpu-basic", "cpu-upgrade"] and "zero-a10g" not in HARDWARE
    with pytest.raises(SystemExit):
        parser.parse_args(["deploy-space", "--space-id", SPACE, "--repo-id", REPO, "--hardware", "zero-a10g"])
    with pytest.raises(GanError, match="--hardware 'gpu' is not a Space hardware: choose one of zerogpu, cpu-basic"):
        space_hardware("gpu")


def test_spaces_is_pinned_alike_for_the_space_and_the_tests():
    from gan.hub.space import SPACES_REQUIREMENT

    assert SPACES_REQUIREMENT in (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert f"spaces=={metadata.version('spaces')}" == SPACES_REQUIREMENT  # the venv's, which the tests import


UNREACHABLE = re.compile(
    r"Retrying \(|NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|ConnectTimeoutError|ProxyError|Could not fetch URL"
)


@pytest.mark.slow
def test_zerogpu_requirements_resolve_on_its_python(tmp_path):
    """pip resolves the ZeroGPU Space's requirements (and the gradio its sdk_version installs) for Linux on
    ZEROGPU_PYTHON, wheels only. fast-deps reads each wheel's metadata with HTTP range requests: the CUDA wheels torch
    pulls in are never downloaded."""
    from gan.hub.space import ZEROGPU, ZEROGPU_PYTHON, ZEROGPU_TORCH, space_requirements

    gradio = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("gradio["))
    (tmp_path / "requirements.txt").write_text(space_requirements(ZEROGPU) + gradio + "\n")
    report = tmp_path / "report.json"
    command = [
        *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"),
        *("--python-version", ZEROGPU_PYTHON, "--only-binary=:all:", "--target", str(tmp_path / "target")),
        *("--use-feature=fast-deps", "--report", str(report), "--timeout", "30", "--retries", "1"),
        *("-r", str(tmp_path / "requirements.txt")),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and UNREACHABLE.search(proc.stderr + proc.stdout):
        pytest.skip(f"the package index did not answer: {UNREACHABLE.search(proc.stderr + proc.stdout)[0]}")
    assert proc.returncode == 0, proc.stderr
    installs = json.loads(report.read_text())["install"]
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}
    assert {name: resolved[name] for name in ZEROGPU_TORCH} == ZEROGPU_TORCH
    for line in (tmp_path / "requirements.txt").read_text().splitlines():
        assert resolved[canonicalize_name(Requirement(line).name)] in Requirement(line).specifier, line
