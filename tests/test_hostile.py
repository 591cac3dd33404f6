"""Hostile model repos: what anyone can publish, or a mirror can answer, fails as one line naming the problem, from the
CLI and from the app's model picker; it never makes huggingface_hub write outside its cache, never takes the server's
memory, and never reaches visitors as markup or as the server's own paths.

The Hub is FakeHub (hub_server.py) with the real client; CLI runs happen in one subprocess per test (torch imports
once), the app is one `python app.py` serving a local export, whose picker visitors point at the hostile repos.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import ROOT, RunningApp, assert_web_words, run_script
from hub_server import FakeHub, hub_env
from markdown_it import MarkdownIt
from PIL import Image

from gan.checkpoint import LoadedModel, export_model, load_model
from gan.models import Discriminator, Generator, ModelConfig

pytestmark = pytest.mark.hub


TINY = ModelConfig(nz=8, ngf=4, ndf=4)
MARKUP = {
    "name": "<img src=x onerror=alert(1)>",
    "dataset": "[link](javascript:alert(1))",
    "training": {"steps": "**many**", "time_s": "abc", "device": "<script>alert(1)</script>"},
    "final_metrics": {"d_real": "high", "d_fake": None},
    "evaluation": {"fd": "low", "num": {"a": 1}},
}


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def with_config(files: dict[str, bytes], config: dict, **changes) -> dict[str, bytes]:
    return {**files, "config.json": json.dumps({**config, **changes}).encode()}


def padded(config: dict, junk: str) -> bytes:
    """config.json with `"junk": <junk>` added (written by hand: json.dumps would recurse into deep junk)."""
    return (json.dumps(config)[:-1] + f', "junk": {junk}}}').encode()


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """A tiny untrained export, as training writes it (local paths in training.args)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("local") / "tiny-export"
    metadata = {
        "name": "tiny",
        "dataset": "mnist",
        "training": {
            "steps": 1,
            "time_s": 1.0,
            "device": "CPU",
            "args": {"data_dir": str(folder.parent / "data"), "out": str(folder.parent / "run"), "nz": 8},
        },
    }
    return export_model(folder, Generator(TINY), Discriminator(TINY), metadata)


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """Where the traversal cases aim: nothing may appear here."""
    return tmp_path_factory.mktemp("outside")


def escape(target: Path) -> str:
    """A relative path that leads from any folder to `target`."""
    return "../" * 40 + str(target).lstrip("/")


@pytest.fixture(scope="module")
def hostile(export, outside):
    """FakeHub with a good repo and one hostile repo per case; the cases: name -> (repo, revision, expected line)."""
    files = {p.name: p.read_bytes() for p in export.iterdir()}
    config = json.loads(files["config.json"])
    repos = {
        "good": files,
        "huge config": {**files, "config.json": padded(config, "[" + ",".join(["{}"] * 3_000_000) + "]")},
        "nested 200k deep": {**files, "config.json": padded(config, "[" * 200_000 + "]" * 200_000)},
        "nested 20k deep": {**files, "config.json": padded(config, "[" * 20_000 + "]" * 20_000)},
        "not an object": {**files, "config.json": b"[1, 2]"},
        "old format": with_config(files, config, format_version=99),
        "ngf 1e30": with_config(files, config, ngf=1e30),
        "ndf 2**62": with_config(files, config, ndf=2**62),
        "too many weights": with_config(files, config, ngf=4096, ndf=4096),
        "nz float": with_config(files, config, nz=8.5),
        "nz NaN": with_config(files, config, nz=float("nan")),  # written as NaN, which json reads
        "nz bool": with_config(files, config, nz=True),
        "nz string": with_config(files, config, nz="8"),
        "image_size float": with_config(files, config, image_size=32.0),
        "file named ../": {**files, "sub/../../escape.safetensors": b"x"},
        "safetensors header 1 MB": {**files, "model.safetensors": (10**6).to_bytes(8, "little") + b" " * 10**6},
        "ETag ../": files,
        "X-Repo-Commit ../": files,
        "sha ../": files,
        "revision ../": files,
        "markup": with_config(files, config, **MARKUP),
    }
    with FakeHub(tokens={"hf_alice": "alice"}) as hub:
        ids = {}
        for name, content in repos.items():
            ids[name] = "alice/" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
            hub.create_repo(ids[name])
            hub.upload(ids[name], content, name)
        hub.misbehave(ids["ETag ../"], file_headers={"ETag": f'"{escape(outside / "etag")}"'})
        hub.misbehave(ids["X-Repo-Commit ../"], file_headers={"X-Repo-Commit": escape(outside / "commit")})
        hub.misbehave(ids["sha ../"], sha=escape(outside / "sha"), any_revision=True)
        hub.misbehave(ids["revision ../"], any_revision=True)
        server = "the server at " + hub.url + " answered "
        huge, deep = (len(repos[name]["config.json"]) for name in ("huge config", "nested 200k deep"))
        cases = {
            "huge config": (
                None,
                f"config.json holds {huge:,} bytes, over the limit of 65,536 (DCGAN Studio writes about 3,000)",
            ),
            "nested 200k deep": (None, f"config.json holds {deep:,} bytes, over the limit of 65,536"),
            "nested 20k deep": (None, "config.json nests deeper than 16 levels (DCGAN Studio writes 3)"),
            "not an object": (None, "config.json is not a JSON object"),
            "old format": (None, "config.json has format_version 99; this version of DCGAN Studio reads 1"),
            "ngf 1e30": (
                None,
                "config.json does not describe a DCGAN (ngf must be a whole number from 1 to 4096, got 1e+30)",
            ),
            "ndf 2**62": (None, f"(ndf must be a whole number from 1 to 4096, got {2**62})"),
            "too many weights": (
                None,
                "(nz=8, ngf=4096, ndf=4096 make 5,371,305,984 weights, over the limit of 1,073,741,824)",
            ),
            "nz float": (None, "(nz must be a whole number from 1 to 4096, got 8.5)"),
            "nz NaN": (None, "(nz must be a whole number from 1 to 4096, got nan)"),
            "nz bool": (None, "(nz must be a whole number from 1 to 4096, got True)"),
            "nz string": (None, "(nz must be a whole number from 1 to 4096, got '8')"),
            "image_size float": (None, "(image_size must be one of (32, 64), got 32.0)"),
            "safetensors header 1 MB": (
                None,
                "model.safetensors has a header of 1,000,000 bytes, over the limit of 65,536",
            ),
            "file named ../": (
                None,
                "huggingface_hub cannot use the server's answer (Invalid filename "
                "'sub/../../escape.safetensors': cannot contain a '..' path segment.",
            ),
            "ETag ../": (
                None,
                server + "an ETag header that is not a plain hash, which huggingface_hub would "
                "write as a path outside its cache: is HF_ENDPOINT a Hugging Face Hub?",
            ),
            "X-Repo-Commit ../": (None, server + "an X-Repo-Commit header that is not a commit id"),
            "sha ../": (None, server + "a repo `sha` that is not a commit id"),
            "revision ../": (
                escape(outside / "revision"),
                "is not a branch, tag or commit name: use letters, digits, "
                "'-', '_', '.' and '/' (e.g. main, v1.0, refs/pr/1)",
            ),
        }
        yield hub, ids, {name: (ids[name], revision, line) for name, (revision, line) in cases.items()}


WEB = {  # what the app says instead, where the command line's line asks whether HF_ENDPOINT is a Hub
    "ETag ../": "the Hub answered an ETag header that is not a plain hash, which would make a path outside this "
    "app's cache",
    "X-Repo-Commit ../": "the Hub answered an X-Repo-Commit header that is not a commit id",
    "sha ../": "the Hub answered a repo `sha` that is not a commit id",
}
CASES = [
    "huge config",
    "nested 200k deep",
    "nested 20k deep",
    "not an object",
    "old format",
    "ngf 1e30",
    "ndf 2**62",
    "too many weights",
    "nz float",
    "nz NaN",
    "nz bool",
    "nz string",
    "image_size float",
    "safetensors header 1 MB",
    "file named ../",
    "ETag ../",
    "X-Repo-Commit ../",
    "sha ../",
    "revision ../",
]


@pytest.fixture(scope="module")
def cli_results(hostile, tmp_path_factory):
    """`python -m gan sample --repo-id` of every case, in one interpreter, with a Hub cache of its own."""
    hub, ids, cases = hostile
    home, out = tmp_path_factory.mktemp("cli-hf"), tmp_path_factory.mktemp("cli-out")
    runs = {
        name: [
            "sample",
            "--repo-id",
            repo,
            *(["--revision", revision] if revision else []),
            "--out",
            str(out / "x.png"),
        ]
        for name, (repo, revision, _) in cases.items()
    }
    result = run_script(
        hub_env(hub, home),
        """
        from gan.cli import main
        for name, args in runs.items():
            result[name] = call(main, args)
        """,
        timeout_s=300,
        runs=runs,
    )
    return result, home, out


@pytest.fixture(scope="module")
def app(hostile, export, tmp_path_factory):
    hub = hostile[0]
    folder = tmp_path_factory.mktemp("app")
    env = hub_env(hub, folder / "hf", GRADIO_ANALYTICS_ENABLED="False")
    running = RunningApp(folder / "app.log", ["--checkpoint", str(export)], env)
    yield running, Client(running.url, verbose=False, download_files=str(folder / "downloads")), folder / "hf"
    running.stop()


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_a_hostile_repo_in_one_line(cli_results, hostile, tmp_path_factory, case):
    result, home, out = cli_results
    expected = hostile[2][case][2]
    line = one_error_line(result[case]["stderr"])
    assert result[case]["code"] == 2 and expected in line, line
    assert str(home) not in line and str(tmp_path_factory.getbasetemp()) not in line  # no server path
    assert not (out / "x.png").exists()


@pytest.mark.parametrize("case", CASES)
def test_the_app_refuses_a_hostile_repo_with_a_clear_error(app, hostile, tmp_path_factory, case):
    running, client, home = app
    repo, revision, expected = hostile[2][case]
    with pytest.raises(AppError) as error:
        client.predict(model=repo, revision=revision or "", api_name="/select_model")
    message = str(error.value)
    assert WEB.get(case, expected) in message and "\n" not in message.strip(), message
    assert_web_words(message)
    assert str(home) not in message and str(tmp_path_factory.getbasetemp()) not in message
    assert running.alive()


def test_nothing_is_written_outside_the_hub_cache(cli_results, app, hostile, outside):
    """The traversal cases aim at `outside`; all cases ran from the CLI (cli_results) and run from the app here."""
    client = app[1]
    for case in CASES:
        with pytest.raises(AppError):
            client.predict(model=hostile[2][case][0], revision=hostile[2][case][1] or "", api_name="/select_model")
    assert list(outside.rglob("*")) == []


def test_the_cli_exits_2_with_one_line_and_no_traceback(hostile, tmp_path):
    hub, ids, _ = hostile
    command = [sys.executable, "-m", "gan", "sample", "--repo-id", ids["ngf 1e30"], "--out", str(tmp_path / "x.png")]
    proc = subprocess.run(
        command, cwd=ROOT, env=hub_env(hub, tmp_path / "hf"), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert one_error_line(proc.stderr) == (
        f"error: {ids['ngf 1e30']}@main is not a usable DCGAN Studio model: config.json does not describe a DCGAN "
        "(ngf must be a whole number from 1 to 4096, got 1e+30)"
    )


def test_a_huge_config_costs_no_memory(hostile, tmp_path):
    """Peak RSS (VmHWM) of the loader around the 9 MB config: flat, where parsing it would take ~200 MB."""
    hub, ids, _ = hostile
    result = run_script(
        hub_env(hub, tmp_path / "hf"),
        """
        from gan.errors import GanError
        from gan.hub import load as hub

        def peak() -> int:
            return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) * 1024

        hub.load_repo(good)  # the first load pays for imports, the HTTP client and torch's first convolutions
        before = peak()
        try:
            hub.load_repo(huge)
        except GanError as error:
            result["error"] = str(error)
        result["growth"] = peak() - before
        folder = hub.download_export(huge)
        before = peak()
        parsed = json.loads((folder / "config.json").read_bytes())  # what an unbounded loader does
        result["parsing"] = peak() - before
        """,
        timeout_s=300,
        good=ids["good"],
        huge=ids["huge config"],
    )
    print(f"peak RSS growth: {result['growth'] / 2**20:.1f} MiB loading, {result['parsing'] / 2**20:.0f} MiB parsing")
    assert "over the limit of 65,536" in result["error"]
    assert result["growth"] < 32 * 2**20 and result["parsing"] > 100 * 2**20


def test_the_model_cache_is_bounded_by_bytes():
    from gan.ui.picker import ModelCache, ModelRef, model_bytes

    cache = ModelCache(capacity=10, max_bytes=100, size=len)
    refs = [ModelRef(repo_id=f"alice/m{i}", commit=str(i) * 40) for i in range(4)]
    for ref, model in zip(refs[:3], ["a" * 40, "b" * 40, "c" * 40], strict=True):
        cache.get(ref, lambda model=model: model)
    assert list(cache.recent) == refs[1:3] and sum(cache.sizes.values()) == 80  # 120 bytes: the oldest went
    cache.get(refs[3], lambda: "d" * 500)  # over the budget alone: kept (the visitor uses it), the others out
    assert list(cache.recent) == [refs[3]]
    model = LoadedModel(Generator(TINY), Discriminator(TINY), TINY)
    tensors = [*model.generator.state_dict().values(), *model.discriminator.state_dict().values()]
    assert model_bytes(model) == sum(t.numel() * t.element_size() for t in tensors)


def test_visitor_downloads_in_the_hub_cache_are_pruned(hostile, tmp_path):
    """hub.prune_cache keeps the protected commit, the most recent others within the budget, and other repos."""
    hub, ids, _ = hostile
    hub.create_repo("alice/revisions")
    commits = [
        hub.upload("alice/revisions", {**hub.files(ids["good"]), "note.safetensors": bytes([i])}, f"v{i}")
        for i in range(4)
    ]
    result = run_script(
        hub_env(hub, tmp_path / "hf"),
        """
        import time
        from huggingface_hub import scan_cache_dir
        from gan.hub import load as hub

        def cached():
            return {repo.repo_id: sorted(r.commit_hash for r in repo.revisions) for repo in scan_cache_dir().repos}

        hub.download_export(good)
        for commit in commits:
            hub.download_export("alice/revisions", commit)
            time.sleep(0.01)
        result["by count"] = hub.prune_cache({"alice/revisions"}, {commits[0]}, 2**30, max_revisions=1)
        result["after count"] = cached()
        result["by bytes"] = hub.prune_cache({"alice/revisions"}, {commits[0]}, 1, max_revisions=10)
        result["after bytes"] = cached()
        """,
        timeout_s=300,
        good=ids["good"],
        commits=commits,
    )
    assert sorted(result["by count"]) == sorted(commits[1:3]) and result["by bytes"] == [commits[3]]
    assert result["after count"]["alice/revisions"] == sorted([commits[0], commits[3]])
    assert result["after bytes"] == {"alice/revisions": [commits[0]], ids["good"]: result["after count"][ids["good"]]}


def test_metadata_is_shown_as_text_never_as_markup(app, hostile):
    client = app[1]
    summary = client.predict(model=hostile[1]["markup"], revision="", api_name="/select_model")
    html = MarkdownIt("commonmark", {"html": True}).render(summary)
    assert "<img" not in html and "<script" not in html and "<a " not in html and "<strong>many" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "[link](javascript:alert(1))" in html
    assert "**many** steps, ? min on" in html  # time_s "abc" is no number: no TypeError
    assert "D(real) high, D(generated) None" in html


def test_model_summary_takes_metadata_of_any_type(export):
    from gan.ui.assets import model_summary

    model = load_model(export)
    for metadata in (
        MARKUP,
        {"training": [1]},
        {"training": {"time_s": None}},
        {"evaluation": {"fd": [1]}},
        {"name": 7},
    ):
        model.metadata = metadata
        assert "**Size:** 32x32, 1 channel, z=8" in model_summary(model)


def test_outputs_carry_no_server_path(app, export, tmp_path_factory):
    """Every PNG's metadata names the model by repo id or folder name, never by the server's paths."""
    running, client, home = app
    client.predict(model="tiny (tiny-export)", revision="", api_name="/select_model")  # back from other tests' choices
    grid = client.predict(seed=1, count=2, api_name="/sample")
    gallery = client.predict(seed=1, count=1, api_name="/sample_gallery")
    _, strip = client.predict(seed_a=1, seed_b=2, frames=2, mode="lerp", api_name="/interpolate")
    target, reconstruction, z_file, *_ = client.predict(
        image=handle_file(gallery[0]["image"]), steps=1, restarts=1, api_name="/project"
    )
    _, walk = client.predict(z_a=handle_file(z_file), seed_b=1, frames=2, api_name="/interpolate_latent")
    for path in (grid, gallery[0]["image"], strip, target, reconstruction, walk):
        text = Image.open(path).text
        assert text["source"] == "tiny-export" and text["model"] == "tiny", text
        for value in text.values():
            assert not Path(value).is_absolute() and str(tmp_path_factory.getbasetemp()) not in value, text


def test_training_sets_are_refused_before_they_are_built():
    from gan.ui.assets import TrainingData

    data = TrainingData()
    hub = {"repo_id": "eve/gan", "revision": "main", "commit": "e" * 40}
    for config, expected in (
        (ModelConfig(nz=8, ngf=4, ndf=4, nc=3, image_size=64), "has 1 channel(s), the model 3"),
        (ModelConfig(nz=8, ngf=4, ndf=4, image_size=64), "at 64x64 is over this server's limit"),
        (TINY, "names a dataset this server does not know"),
    ):
        name = "<b>x</b>" if config is TINY else "fashion-mnist"
        model = LoadedModel(Generator(config), None, config, {"dataset": name, "hub": hub})
        assert expected in data.find(model)
    assert not data.loaded  # nothing was loaded, nor cached
