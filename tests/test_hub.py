"""Publishing to and loading from the Hub with the real huggingface_hub client, over HTTP, against FakeHub.

Hub clients run in subprocesses whose environment comes from `hub_env` (the client reads HF_ENDPOINT, HF_HUB_OFFLINE...
at import). Each script runs several commands in one interpreter, to pay torch's import once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from helpers import (
    ROOT,
    TINY_MODEL_ARGS,
    RunningApp,
    assert_no_server_paths,
    run_script,
    server_paths,
    tiny_mnist_args,
)
from hub_server import FakeHub, hub_env
from huggingface_hub import ModelCard, SpaceCard
from PIL import Image
from safetensors.torch import load_file

from gan.checkpoint import list_training_states, load_training_state

pytestmark = pytest.mark.hub


TOKEN = "hf_alice"
REPO = "alice/tiny-dcgan"
EXPORT_FILES = {
    "config.json",
    "model.safetensors",
    "generator_raw.safetensors",
    "discriminator.safetensors",
    "samples.png",
    "loss.png",
    "weights.png",
    "metrics.jsonl",
}


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(stderr: str) -> str:
    lines = [
        line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("training:")
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert TOKEN not in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def hub():
    with FakeHub(tokens={TOKEN: "alice", "hf_bob": "bob"}, lfs_threshold=256 * 1024) as hub:
        hub.create_repo("bob/dcgan")
        yield hub


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-home")


@pytest.fixture(scope="module")
def published(hub, home, idx_dir, tmp_path_factory):
    """`train.py --push-to-hub --push-every 3` of a 6-step tiny model; the token only on the command line."""
    out = tmp_path_factory.mktemp("pushed-run")
    env = hub_env(hub, home, DCGAN_CACHE=str(tmp_path_factory.getbasetemp() / "dcgan-cache"))
    every = ["--steps", "6", "--log-every", "2", "--sample-every", "3", "--checkpoint-every", "3"]
    push = ["--push-to-hub", "--hub-model-id", REPO, "--hub-token", TOKEN, "--push-every", "3"]
    proc = subprocess.run(
        [sys.executable, "train.py", *tiny_mnist_args(idx_dir, out, *every, *push)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def downloaded(hub, home, published, tmp_path_factory):
    """Load the pushed model back through the app's loader, the Python API, the mixin and the CLI, and the errors."""
    out = tmp_path_factory.mktemp("downloaded")
    hub.upload(REPO, {"notes.txt": b"not a model file"}, "Unrelated commit", revision="main")
    step3 = hub.commits(REPO)[2]["id"]
    hub.create_repo("alice/never")
    hub.create_repo("alice/other")
    hub.fail_next(500, "/api/models/alice/never", method="GET")
    result = run_script(
        hub_env(hub, home),
        """
        import torch
        from safetensors.torch import save_file
        from gan import load_generator
        from gan.hub.generator import HubGenerator
        from gan.hub.load import load_source
        from gan.cli import main as cli

        model = load_source(None, repo_id)  # what app.py --repo-id does
        save_file({k: v.contiguous() for k, v in model.generator.state_dict().items()}, f"{out}/generator.safetensors")
        save_file(
            {k: v.contiguous() for k, v in model.discriminator.state_dict().items()}, f"{out}/discriminator.safetensors"
        )
        result["source"], result["hub"] = model.source, model.metadata["hub"]
        same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        result["api_same"] = same(load_generator(repo_id), model.generator)
        mixin = HubGenerator.from_pretrained(repo_id)
        result["mixin_same"] = same(mixin, model.generator) and not mixin.training
        old = load_source(None, repo_id, revision=step3)
        result["old_source"], result["old_differs"] = old.source, not same(old.generator, model.generator)
        result["sample"] = call(cli, ["sample", "--repo-id", repo_id, "--num", "4", "--out", f"{out}/s.npz"])
        result["errors"] = {
            "repo not found": call(cli, ["sample", "--repo-id", "alice/missing", "--out", f"{out}/x.png"]),
            "revision not found": call(
                cli, ["sample", "--repo-id", repo_id, "--revision", "v9", "--out", f"{out}/x.png"]
            ),
            "server error": call(cli, ["sample", "--repo-id", "alice/never", "--out", f"{out}/x.png"]),
            "both sources": call(cli, ["sample", "--repo-id", repo_id, "--checkpoint", out, "--out", f"{out}/x.png"]),
        }
        os.environ["HF_TOKEN"] = "hf_wrong"
        result["errors"]["invalid token"] = call(cli, ["sample", "--repo-id", "alice/other", "--out", f"{out}/x.png"])
        """,
        repo_id=REPO,
        out=str(out),
        step3=step3,
    )
    return out, result, step3


def test_train_push_publishes_a_model_repo(hub, published):
    out, proc = published
    export = out / "model"
    assert [c["title"] for c in hub.commits(REPO)[-3:]] == [
        "Upload dcgan-mnist: 6 steps on mnist",
        "Training checkpoint: step 3 of 6",
        "initial commit",
    ]
    files = hub.files(REPO, revision=hub.commits(REPO)[-3]["id"])
    assert set(files) == EXPORT_FILES | {".gitattributes", "README.md"}
    for name in EXPORT_FILES - {"config.json"}:
        assert files[name] == (export / name).read_bytes(), name
    # config.json as exported, less the training machine's paths, which the local export keeps
    local, pushed = json.loads((export / "config.json").read_text()), json.loads(files["config.json"])
    assert {"data_dir", "out"} <= set(local["training"]["args"]) and str(out) in json.dumps(local)
    assert {"data_dir", "out", "resume"}.isdisjoint(pushed["training"]["args"]) and str(out) not in json.dumps(pushed)
    del local["training"]["args"]["data_dir"], local["training"]["args"]["out"], local["training"]["args"]["resume"]
    assert pushed == local
    for name, data in files.items():  # the model card too
        assert_no_server_paths(data, server_paths(out), name)
    assert {"model.safetensors", "generator_raw.safetensors", "discriminator.safetensors"} <= hub.lfs_files(REPO)
    assert "config.json" not in hub.lfs_files(REPO)
    assert any(method == "PUT" and path.startswith("/lfs-upload/") for method, path in hub.requests)
    assert f"pushed {export} to {hub.url}/{REPO}" in proc.stdout
    # the token was given on the command line only: it is nowhere
    assert TOKEN not in proc.stdout + proc.stderr
    assert not [name for name, data in files.items() if TOKEN.encode() in data]
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".pt" and TOKEN.encode() in p.read_bytes()]
    for state in list_training_states(out / "checkpoints"):
        args = load_training_state(state)["args"]
        assert "hub_token" not in args and TOKEN not in json.dumps(args, default=str)
        assert args["hub_model_id"] == REPO
    assert "hub_token" not in json.loads((export / "config.json").read_text())["training"]["args"]


def test_model_card_parses_and_carries_the_metadata(hub, published, tmp_path):
    (tmp_path / "README.md").write_bytes(hub.files(REPO)["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert data.library_name == "pytorch" and data.license == "cc-by-sa-3.0"
    assert data.pipeline_tag == "unconditional-image-generation" and data.datasets == ["ylecun/mnist"]
    assert {"gan", "dcgan", "unconditional-image-generation", "mnist"} <= set(data.tags)
    text = card.text
    for expected in (
        f'G = load_generator("{REPO}")',
        "from gan import load_generator",
        f"python app.py --repo-id {REPO}",
        "deploy-space",
        "MNIST (LeCun, Cortes and Burges)",
        "CC BY-SA 3.0",
        "- steps: 6",
        "- hardware: CPU ",
        "| `lr_g` |",
        "| `loss_d` |",
        "![64 samples from seeds 0..63](samples.png)",
        "`generator_raw.safetensors`",
    ):
        assert expected in text, expected
    assert "token" not in text.lower().split("## training")[1].split("## final metrics")[0]


def test_load_back_from_the_hub_is_identical(published, downloaded):
    out, proc = published
    folder, result, step3 = downloaded
    for name in ("generator", "discriminator"):
        local = load_file(out / "model" / ("model.safetensors" if name == "generator" else f"{name}.safetensors"))
        remote = load_file(folder / f"{name}.safetensors")
        assert local.keys() == remote.keys()
        assert all(torch.equal(local[k], remote[k]) for k in local), name
    assert result["api_same"] and result["mixin_same"]
    assert result["hub"]["repo_id"] == REPO and result["source"].startswith(f"{REPO}@main (commit ")
    assert result["old_source"].startswith(f"{REPO}@{step3}") and result["old_differs"]
    assert result["sample"]["code"] == 0
    assert (folder / "s.npz").is_file()


def test_load_errors(hub, downloaded):
    errors = downloaded[1]["errors"]
    assert {case: e["code"] for case, e in errors.items()} == {
        "repo not found": 2,
        "revision not found": 2,
        "server error": 2,
        "both sources": 2,
        "invalid token": 2,
    }
    assert one_error_line(errors["invalid token"]["stderr"]) == (
        "error: the Hub rejected the token (401): it is missing, invalid or expired; "
        "run `hf auth login`, set HF_TOKEN, "
        "or pass --hub-token with a valid token, or none for a public model"
    )
    assert one_error_line(errors["repo not found"]["stderr"]) == (
        f"error: repository alice/missing not found on {hub.url} (404): check the id (USER/NAME); if it is private, "
        "use a token that can read it (run `hf auth login`, set HF_TOKEN, or pass --hub-token)"
    )
    assert one_error_line(errors["revision not found"]["stderr"]) == (
        f"error: revision 'v9' not found in {REPO} (404): "
        f"check --revision (a branch, tag or commit of {hub.url}/{REPO})"
    )
    assert one_error_line(errors["server error"]["stderr"]) == (
        "error: the Hub had a server error (500) while downloading alice/never: try again in a few minutes "
        "(https://status.huggingface.co) (alice/never@main is not in the local cache either)"
    )
    assert "not both" in one_error_line(errors["both sources"]["stderr"])


PUSH_FAILURES = """
from gan.cli import main as cli
from gan.training import main as train

def push(repo, *extra, token="hf_alice", folder=run):
    token_args = [] if token is None else ["--hub-token", token]
    return call(cli, ["push", folder, "--hub-model-id", repo, *token_args, *extra])

os.environ.pop("HF_TOKEN", None)
result["missing token"] = push("alice/new", token=None)
result["invalid token"] = push("alice/new", token="hf_invalid")
result["no write access"] = push("bob/dcgan")
result["repo not found"] = push("alice/gone")
result["revision not found"] = push("alice/rev", "--hub-revision", "v2")
result["server error"] = push("alice/flaky")
result["push"] = push("alice/pushed")
result["push again"] = push("alice/pushed", "--commit-message", "Unchanged")
result["push a branch"] = push("alice/pushed", "--hub-revision", "experiment", "--commit-message", "To a branch")
result["push without EMA"] = push("alice/pushed", "--commit-message", "Without EMA", folder=no_ema)
result["train"] = call(train, [
    "--dataset", "mnist", "--data-dir", idx_dir, "--no-download", "--steps", "2", "--log-every", "1",
    "--out", train_out, *tiny, "--push-to-hub", "--hub-model-id", "bob/dcgan", "--hub-token", "hf_alice",
])
result["train without token"] = call(train, [
    "--dataset", "mnist", "--data-dir", idx_dir, "--no-download", "--steps", "2",
    "--out", train_out + "-never", *tiny, "--push-to-hub", "--hub-model-id", "alice/x",
])
result["deploy"] = call(cli, [
    "deploy-space", "--space-id", "alice/studio", "--repo-id", repo_id, "--hub-token", "hf_alice",
])
result["deploy missing model"] = call(cli, [
    "deploy-space", "--space-id", "alice/studio", "--repo-id", "alice/none", "--hub-token", "hf_alice",
])
"""


def test_push_failures_give_one_actionable_line_and_keep_the_export(hub, home, published, idx_dir, tmp_path):
    run = published[0]
    before = tree_digest(run)
    hub.fail_next(404, "/api/models/alice/gone/commit/", error_code="RepoNotFound")
    hub.fail_next(404, "/api/models/alice/rev/commit/", error_code="RevisionNotFound")
    hub.fail_next(500, "/api/models/alice/flaky/commit/")
    no_ema = shutil.copytree(run / "model", tmp_path / "no-ema")
    (no_ema / "generator_raw.safetensors").unlink()
    result = run_script(
        hub_env(hub, tmp_path / "hf"),
        PUSH_FAILURES,
        run=str(run),
        no_ema=str(no_ema),
        idx_dir=str(idx_dir),
        train_out=str(tmp_path / "run"),
        tiny=TINY_MODEL_ARGS,
        repo_id=REPO,
    )
    assert tree_digest(run) == before  # nothing local changed, whatever failed
    lines = {case: one_error_line(r["stderr"]) for case, r in result.items() if r["code"] != 0}
    assert {case: result[case]["code"] for case in lines} == dict.fromkeys(lines, 2)
    assert lines.pop("missing token") == (
        f"error: no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --hub-token "
        f"(a write token from {hub.url}/settings/tokens)"
    )
    assert lines.pop("invalid token") == (
        "error: the Hub rejected the token (401): it is missing, invalid or expired; "
        "run `hf auth login`, set HF_TOKEN, "
        "or pass --hub-token with a valid token with write access"
    )
    assert lines.pop("no write access") == (
        "error: no write access to bob/dcgan (403): this token's account cannot write to 'bob'; "
        "use a write token of 'bob' "
        "or of a member of that organization, or push to your own namespace"
    )
    assert lines.pop("repo not found").startswith(f"error: repository alice/gone not found on {hub.url} (404)")
    assert lines.pop("revision not found") == (
        f"error: revision 'v2' not found in alice/rev (404): "
        f"check --hub-revision (a branch, tag or commit of {hub.url}/alice/rev)"
    )
    assert lines.pop("server error") == (
        "error: the Hub had a server error (500) while pushing to alice/flaky: try again in a few minutes "
        "(https://status.huggingface.co)"
    )
    train_line = lines.pop("train")
    assert train_line.startswith("error: no write access to bob/dcgan (403)")
    export = tmp_path / "run" / "model"
    assert train_line.endswith(
        f"-- the run folder {tmp_path / 'run'} and its export {export} are intact; push later with: "
        f"python -m gan push {export} --hub-model-id bob/dcgan"
    )
    assert EXPORT_FILES <= {p.name for p in export.iterdir()}
    assert lines.pop("train without token").startswith("error: no Hugging Face token")
    assert not (tmp_path / "run-never").exists()  # refused before training
    assert lines.pop("deploy missing model").startswith("error: repository alice/none not found")
    assert lines == {}
    assert "bob/dcgan" not in [c["title"] for c in hub.commits("bob/dcgan")] and len(hub.commits("bob/dcgan")) == 1
    with pytest.raises(KeyError):
        hub.commits("alice/new")  # no repo was created with a missing or an invalid token
    # a push of a run folder (its model/) is one commit; the same again changes nothing; a new branch starts from main
    assert [c["title"] for c in hub.commits("alice/pushed")][1:] == [
        "Upload dcgan-mnist: 6 steps on mnist",
        "initial commit",
    ]
    assert result["push"]["stdout"].startswith(f"pushed {run / 'model'} to {hub.url}/alice/pushed (main, commit ")
    assert "open it with: python app.py --repo-id alice/pushed\n" in result["push"]["stdout"]
    assert result["push again"]["stdout"].startswith(f"nothing new to push: {hub.url}/alice/pushed (main, commit ")
    assert [c["title"] for c in hub.commits("alice/pushed", revision="experiment")] == [
        "To a branch",
        "Upload dcgan-mnist: 6 steps on mnist",
        "initial commit",
    ]
    assert "--revision experiment" in result["push a branch"]["stdout"]
    # pushing an export without EMA removes the earlier push's raw generator, and only that
    assert hub.commits("alice/pushed")[0]["title"] == "Without EMA"
    assert set(hub.files("alice/pushed")) == EXPORT_FILES - {"generator_raw.safetensors"} | {
        ".gitattributes",
        "README.md",
    }
    assert hub.files("alice/pushed")["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
    # deploy-space: app, package, requirements and README in one commit; the model through a Space variable
    assert result["deploy"]["code"] == 0, result["deploy"]["stderr"]
    assert hub.space_variables("alice/studio") == {"GAN_REPO_ID": REPO}
    space = hub.files("alice/studio", repo_type="space")
    assert {
        "app.py",
        "gan/__init__.py",
        "gan/hub/load.py",
        "gan/ui/__init__.py",
        "requirements.txt",
        "README.md",
    } <= set(space)
    assert space["app.py"] == (ROOT / "app.py").read_bytes()
    requirements = space["requirements.txt"].decode()
    assert "torch==" in requirements and "gradio" not in requirements
    assert {"mcp==1.30.0", "pydantic==2.12.5"} <= set(requirements.splitlines())  # gradio[mcp]'s, kept
    (tmp_path / "README.md").write_bytes(space["README.md"])
    card = SpaceCard.load(tmp_path / "README.md")
    assert (card.data.sdk, card.data.app_file, card.data.models) == ("gradio", "app.py", [REPO])
    assert card.data.sdk_version and "GAN_REPO_ID" in card.text
    assert [c["title"] for c in hub.commits("alice/studio", repo_type="space")] == [
        f"Deploy DCGAN Studio serving {REPO}",
        "initial commit",
    ]


def test_unreachable_hub(published, tmp_path):
    closed = FakeHub()
    closed.start()
    closed.stop()
    run = published[0]
    before = tree_digest(run)
    proc = subprocess.run(
        [sys.executable, "-m", "gan", "push", str(run), "--hub-model-id", REPO],
        cwd=ROOT,
        env=hub_env(closed, tmp_path / "hf", token=TOKEN),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith(f"error: cannot reach the Hub at {closed.url} (ConnectError: ")
    assert proc.stderr.rstrip().endswith(
        "while pushing to alice/tiny-dcgan: check your network, proxy or HF_ENDPOINT and try again"
    )
    assert tree_digest(run) == before


def test_app_picker_is_per_visitor_and_works_offline(hub, home, downloaded, tmp_path):
    step3 = downloaded[2]
    requests = len(hub.requests)
    env = hub_env(hub, home, HF_HUB_OFFLINE="1", GAN_REPO_ID=REPO, GRADIO_ANALYTICS_ENABLED="False")
    app = RunningApp(tmp_path / "app.log", [], env)  # configured like a Space (GAN_REPO_ID), offline
    try:
        assert f"from {REPO}@main (commit " in (tmp_path / "app.log").read_text()
        alice = Client(app.url, verbose=False, download_files=str(tmp_path / "alice"))
        bob = Client(app.url, verbose=False, download_files=str(tmp_path / "bob"))

        def source(client) -> str:
            return Image.open(client.predict(seed=1, count=2, api_name="/sample")).text["source"]

        assert source(alice).startswith(f"{REPO}@main")
        summary = alice.predict(model=REPO, revision=step3, api_name="/select_model")
        assert f"{REPO}@{step3} (commit {step3[:7]})" in summary
        assert source(alice).startswith(f"{REPO}@{step3}")
        with pytest.raises(AppError, match="^alice/nope@main is not on this server, which works offline: choose a"):
            alice.predict(model="alice/nope", revision="", api_name="/select_model")
        with pytest.raises(AppError, match="neither a listed model nor a Hub repo id"):
            alice.predict(model="../../etc", revision="", api_name="/select_model")
        assert source(alice).startswith(f"{REPO}@{step3}")  # the failed loads left alice's model
        assert source(bob).startswith(f"{REPO}@main")  # and bob never saw alice's choice
        gif, strip = bob.predict(seed_a=1, seed_b=2, frames=3, mode="lerp", api_name="/interpolate")
        assert Image.open(strip).text["source"].startswith(f"{REPO}@main")
    finally:
        app.stop()
    assert len(hub.requests) == requests  # HF_HUB_OFFLINE=1: not one request


def test_model_cache_is_a_bounded_thread_safe_lru():
    from concurrent.futures import ThreadPoolExecutor

    from gan.ui.picker import ModelCache, ModelRef

    cache, loads = ModelCache(capacity=2, size=len), []

    def loader(name):
        def load():
            loads.append(name)
            time.sleep(0.05)
            return f"model {name}"

        return load

    cache.pin(ModelRef(folder="startup"), "startup model")
    refs = {name: ModelRef(repo_id=f"alice/{name}", commit=name * 40) for name in "abc"}
    with ThreadPoolExecutor(8) as pool:  # eight sessions asking for the same new model load it once
        assert set(pool.map(lambda _: cache.get(refs["a"], loader("a")), range(8))) == {"model a"}
    assert loads == ["a"]
    cache.get(refs["b"], loader("b"))
    cache.get(refs["a"], loader("a"))  # a hit: now b is the least recently used
    cache.get(refs["c"], loader("c"))
    assert list(cache.recent) == [refs["a"], refs["c"]] and loads == ["a", "b", "c"]
    assert cache.get(ModelRef(folder="startup")) == "startup model"  # pinned models are never evicted
    cache.get(refs["b"], loader("b"))
    assert loads == ["a", "b", "c", "b"] and len(cache.recent) == 2
