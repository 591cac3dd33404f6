"""The real `huggingface_hub` client against `FakeHub` (see hub_server.py).

Each test runs the client in a fresh interpreter whose environment comes from `hub_env`, because the client reads
`HF_ENDPOINT`, `HF_HUB_OFFLINE`... at import time. The client code fills a `result` dict that comes back as JSON.
"""

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from hub_server import FakeHub, hub_env

pytestmark = pytest.mark.hub


TOKENS = {"hf_alice": "alice", "hf_bob": "bob"}
LFS_THRESHOLD = 1024

CLIENT_PRELUDE = '''
import json
import time

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub import hf_hub_download, list_repo_files, snapshot_download

api = HfApi()
result = {}


def error_of(call):
    """Class name, HTTP status and class hierarchy of what `call()` raises (None when it returns)."""
    try:
        call()
    except Exception as err:
        response = getattr(err, "response", None)
        return {
            "type": type(err).__name__,
            "status": getattr(response, "status_code", None),
            "mro": [cls.__name__ for cls in type(err).__mro__],
        }
    return None
'''


def run_client(env: dict[str, str], code: str, **variables) -> dict:
    """Run `code` after CLIENT_PRELUDE (and `variables` as globals) in a subprocess; return its `result`."""
    assignments = "".join(f"{name} = {value!r}\n" for name, value in variables.items())
    script = CLIENT_PRELUDE + assignments + textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """Create `folder` holding `files` (paths may have subfolders); return it."""
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


def summary(errors: dict[str, dict | None]) -> dict[str, tuple[str, int] | None]:
    """`{label: (exception class, HTTP status)}` of the `error_of` results."""
    return {label: error and (error["type"], error["status"]) for label, error in errors.items()}


@pytest.fixture
def hub():
    with FakeHub(tokens=TOKENS, orgs={"gan-lab": {"alice"}}, lfs_threshold=LFS_THRESHOLD) as hub:
        yield hub


@pytest.fixture
def seeded(hub):
    """`alice/dcgan` (public, one small file) and `alice/secret` (private)."""
    hub.create_repo("alice/dcgan")
    hub.upload("alice/dcgan", {"config.json": b'{"z": 100}'}, "Seed config")
    hub.create_repo("alice/secret", private=True)
    hub.upload("alice/secret", {"weights.txt": b"secret"}, "Seed secret")
    return hub


def test_publish_download_then_offline_cache(hub, tmp_path):
    local = {
        "config.json": b'{"z": 100}',
        "README.md": b"---\nlicense: mit\nlibrary_name: pytorch\n---\n# DCGAN generator\n",
        "generator.safetensors": os.urandom(4 * LFS_THRESHOLD),  # LFS by size and by name
        "samples/grid.dat": os.urandom(2 * LFS_THRESHOLD),  # LFS by size only
    }
    folder = write_folder(tmp_path / "model", local)
    env = hub_env(hub, tmp_path / "hf", token="hf_alice")

    result = run_client(
        env,
        """
        result["whoami"] = api.whoami()["name"]
        result["url"] = api.create_repo("alice/dcgan")
        result["url_again"] = api.create_repo("alice/dcgan", exist_ok=True)
        result["conflict"] = error_of(lambda: api.create_repo("alice/dcgan"))
        first = api.upload_folder(
            repo_id="alice/dcgan",
            folder_path=folder,
            commit_message="Upload DCGAN generator",
            commit_description="Trained for 5 epochs",
        )
        result["first"] = first.oid
        result["downloads"] = {path: hf_hub_download("alice/dcgan", path) for path in paths}
        tree = api.list_repo_tree("alice/dcgan", recursive=True)
        result["lfs"] = sorted(entry.path for entry in tree if getattr(entry, "lfs", None))
        second = api.upload_file(
            path_or_fileobj=b'{"z": 128}',
            path_in_repo="config.json",
            repo_id="alice/dcgan",
            commit_message="Bump latent size",
        )
        result["second"] = second.oid
        result["snapshot"] = snapshot_download("alice/dcgan")
        result["files"] = list_repo_files("alice/dcgan")
        api.create_branch("alice/dcgan", branch="experiment", exist_ok=True)
        api.create_branch("alice/dcgan", branch="experiment", exist_ok=True)
        api.create_commit(
            repo_id="alice/dcgan",
            revision="experiment",
            commit_message="Add notes, drop samples",
            operations=[
                CommitOperationAdd(path_in_repo="notes.txt", path_or_fileobj=b"lr=2e-4"),
                CommitOperationDelete(path_in_repo="README.md"),
                CommitOperationDelete(path_in_repo="samples/", is_folder=True),
            ],
        )
        result["notes"] = hf_hub_download("alice/dcgan", "notes.txt", revision="experiment")
        """,
        folder=str(folder),
        paths=sorted(local),
    )

    assert result["whoami"] == "alice"
    assert result["url"] == result["url_again"] == f"{hub.url}/alice/dcgan"
    assert (result["conflict"]["type"], result["conflict"]["status"]) == ("HfHubHTTPError", 409)
    for path, data in local.items():
        assert Path(result["downloads"][path]).read_bytes() == data
    assert result["lfs"] == ["generator.safetensors", "samples/grid.dat"]
    assert hub.lfs_files("alice/dcgan") == {"generator.safetensors", "samples/grid.dat"}
    assert result["files"] == [".gitattributes", *sorted(local)]
    snapshot = Path(result["snapshot"])
    assert (snapshot / "config.json").read_bytes() == b'{"z": 128}'
    assert (snapshot / "generator.safetensors").read_bytes() == local["generator.safetensors"]
    assert Path(result["notes"]).read_bytes() == b"lr=2e-4"

    # One commit per push, with its message; LFS content went through the batch API and a PUT each.
    main = hub.commits("alice/dcgan")
    assert [c["title"] for c in main] == ["Bump latent size", "Upload DCGAN generator", "initial commit"]
    assert [c["id"] for c in main[:2]] == [result["second"], result["first"]]
    assert main[1]["message"] == "Trained for 5 epochs" and main[1]["authors"] == [{"user": "alice"}]
    assert sum(method == "PUT" and path.startswith("/lfs-upload/") for method, path in hub.requests) == 2
    assert ("POST", "/alice/dcgan.git/info/lfs/objects/batch") in hub.requests
    assert hub.files("alice/dcgan")["config.json"] == b'{"z": 128}'
    assert "notes.txt" not in hub.files("alice/dcgan")
    assert hub.branches("alice/dcgan").keys() == {"main", "experiment"}
    experiment = hub.files("alice/dcgan", revision="experiment")
    assert sorted(experiment) == [".gitattributes", "config.json", "generator.safetensors", "notes.txt"]
    assert hub.commits("alice/dcgan", revision="experiment")[0]["title"] == "Add notes, drop samples"

    hub.stop()
    offline = run_client(
        hub_env(hub, tmp_path / "hf", HF_HUB_OFFLINE="1"),
        """
        result["downloads"] = {path: hf_hub_download("alice/dcgan", path) for path in paths}
        result["snapshot"] = snapshot_download("alice/dcgan")
        result["notes"] = hf_hub_download("alice/dcgan", "notes.txt", revision="experiment")
        """,
        paths=sorted(local),
    )
    for path, data in {**local, "config.json": b'{"z": 128}'}.items():
        assert Path(offline["downloads"][path]).read_bytes() == data
    assert offline["snapshot"] == result["snapshot"]
    assert Path(offline["notes"]).read_bytes() == b"lr=2e-4"


def test_space_repo_with_variable(hub, tmp_path):
    space_files = {"app.py": b"import gradio\n", "examples.dat": bytes(LFS_THRESHOLD)}
    result = run_client(
        hub_env(hub, tmp_path / "hf", token="hf_alice"),
        """
        result["url"] = api.create_repo("alice/dcgan-demo", repo_type="space", space_sdk="gradio")
        api.upload_folder(repo_id="alice/dcgan-demo", repo_type="space", folder_path=folder, commit_message="Add demo")
        api.add_space_variable("alice/dcgan-demo", "MODEL_REPO", "alice/dcgan", description="Weights to load")
        api.add_space_variable("alice/dcgan-demo", "OBSOLETE", "1")
        api.delete_space_variable("alice/dcgan-demo", "OBSOLETE")
        result["variables"] = {k: v.value for k, v in api.get_space_variables("alice/dcgan-demo").items()}
        result["sdk"] = api.space_info("alice/dcgan-demo").sdk
        result["app"] = hf_hub_download("alice/dcgan-demo", "app.py", repo_type="space")
        result["bob"] = error_of(lambda: api.add_space_variable("alice/dcgan-demo", "X", "1", token="hf_bob"))
        """,
        folder=str(write_folder(tmp_path / "space", space_files)),
    )

    assert result["url"] == f"{hub.url}/spaces/alice/dcgan-demo"
    assert result["sdk"] == "gradio"
    assert result["variables"] == hub.space_variables("alice/dcgan-demo") == {"MODEL_REPO": "alice/dcgan"}
    assert Path(result["app"]).read_bytes() == b"import gradio\n"
    assert (result["bob"]["type"], result["bob"]["status"]) == ("HfHubHTTPError", 403)
    assert hub.lfs_files("alice/dcgan-demo", repo_type="space") == {"examples.dat"}
    assert ("POST", "/spaces/alice/dcgan-demo.git/info/lfs/objects/batch") in hub.requests
    assert [c["title"] for c in hub.commits("alice/dcgan-demo", repo_type="space")] == ["Add demo", "initial commit"]


def test_space_hardware_and_the_paid_plan(tmp_path):
    """A Space's hardware: asked for at creation or later, read back in its runtime; bob, on the free plan, gets the
    Hub's 402 for a Gradio Space on cpu-basic, and may create one on ZeroGPU or a static one."""
    with FakeHub(tokens=TOKENS, free_plan={"bob"}) as hub:
        result = run_client(
            hub_env(hub, tmp_path / "hf", token="hf_alice"),
            """
            def refusal(call):
                try:
                    call()
                except Exception as err:
                    return [err.response.status_code, err.server_message]

            api.create_repo("alice/zero", repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
            result["created"] = api.get_space_runtime("alice/zero").requested_hardware
            result["requested"] = api.request_space_hardware("alice/zero", "t4-small").requested_hardware
            result["info"] = api.space_info("alice/zero").runtime.requested_hardware
            api.create_repo("alice/cpu", repo_type="space", space_sdk="gradio")
            result["default"] = api.get_space_runtime("alice/cpu").requested_hardware
            bob = HfApi(token="hf_bob")
            result["bob on cpu"] = refusal(lambda: bob.create_repo("bob/cpu", repo_type="space", space_sdk="gradio"))
            bob.create_repo("bob/zero", repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
            bob.create_repo("bob/page", repo_type="space", space_sdk="static")
            result["bob to cpu"] = refusal(lambda: bob.request_space_hardware("bob/zero", "cpu-basic"))
            result["alice on bob's"] = refusal(lambda: api.request_space_hardware("bob/zero", "t4-small"))
            """,
        )
        assert (result["created"], result["requested"], result["info"]) == ("zero-a10g", "t4-small", "t4-small")
        assert result["default"] == "cpu-basic" and hub.space_hardware("alice/cpu") is None
        paid_plan = [
            402,
            "Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic "
            "requires a PRO subscription. Subscribe at https://huggingface.co/pro",
        ]
        assert result["bob on cpu"] == result["bob to cpu"] == paid_plan
        assert (hub.space_hardware("bob/zero"), hub.space_hardware("bob/page")) == ("zero-a10g", None)
        assert result["alice on bob's"][0] == 403
        with pytest.raises(KeyError):
            hub.space_hardware("bob/cpu")


def test_auth_and_lookup_errors(seeded, tmp_path):
    result = run_client(
        hub_env(seeded, tmp_path / "hf", token="hf_alice"),
        """
        def upload(**kwargs):
            kwargs = {"repo_id": "alice/dcgan", **kwargs}
            return api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", commit_message="x", **kwargs)

        result["org_repo"] = api.create_repo("gan-lab/shared")
        api.create_repo("alice/private-model", private=True)
        result["private_sha"] = api.model_info("alice/secret").sha
        result["errors"] = {
            "create without token": error_of(lambda: api.create_repo("alice/new", token=False)),
            "upload without token": error_of(lambda: upload(token=False)),
            "create with invalid token": error_of(lambda: api.create_repo("alice/new", token="hf_invalid")),
            "whoami with invalid token": error_of(lambda: api.whoami(token="hf_invalid")),
            "read with invalid token": error_of(lambda: api.model_info("alice/dcgan", token="hf_invalid")),
            "create in other user's namespace": error_of(lambda: api.create_repo("bob/stolen")),
            "create in foreign org": error_of(lambda: api.create_repo("gan-lab/mine", token="hf_bob")),
            "upload to other user's repo": error_of(lambda: upload(token="hf_bob")),
            "missing repo info": error_of(lambda: api.model_info("alice/missing")),
            "missing repo download": error_of(lambda: hf_hub_download("alice/missing", "config.json")),
            "missing repo upload": error_of(lambda: upload(repo_id="alice/missing")),
            "private repo anonymous": error_of(lambda: api.model_info("alice/secret", token=False)),
            "private repo other user": error_of(lambda: hf_hub_download("alice/secret", "weights.txt", token="hf_bob")),
            "missing revision info": error_of(lambda: api.model_info("alice/dcgan", revision="v9")),
            "missing revision download": error_of(lambda: hf_hub_download("alice/dcgan", "config.json", revision="v9")),
            "missing revision upload": error_of(lambda: upload(revision="v9")),
            "missing file": error_of(lambda: hf_hub_download("alice/dcgan", "missing.bin")),
            "delete missing file": error_of(lambda: api.delete_file("missing.bin", "alice/dcgan")),
            "stale parent commit": error_of(lambda: upload(parent_commit="0" * 40)),
            "pull request": error_of(lambda: upload(create_pr=True)),
        }
        """,
    )

    assert result["org_repo"] == f"{seeded.url}/gan-lab/shared"
    assert seeded.is_private("alice/private-model") and not seeded.is_private("gan-lab/shared")
    assert result["private_sha"] == seeded.commits("alice/secret")[0]["id"]
    assert summary(result["errors"]) == {
        "create without token": ("HfHubHTTPError", 401),
        "upload without token": ("HfHubHTTPError", 401),
        "create with invalid token": ("HfHubHTTPError", 401),
        "whoami with invalid token": ("HfHubHTTPError", 401),
        "read with invalid token": ("HfHubHTTPError", 401),
        "create in other user's namespace": ("HfHubHTTPError", 403),
        "create in foreign org": ("HfHubHTTPError", 403),
        "upload to other user's repo": ("HfHubHTTPError", 403),
        "missing repo info": ("RepositoryNotFoundError", 404),
        "missing repo download": ("RepositoryNotFoundError", 404),
        "missing repo upload": ("RepositoryNotFoundError", 404),
        "private repo anonymous": ("RepositoryNotFoundError", 401),
        "private repo other user": ("RepositoryNotFoundError", 404),
        "missing revision info": ("RevisionNotFoundError", 404),
        "missing revision download": ("RevisionNotFoundError", 404),
        "missing revision upload": ("RevisionNotFoundError", 404),
        "missing file": ("RemoteEntryNotFoundError", 404),
        "delete missing file": ("RemoteEntryNotFoundError", 404),
        "stale parent commit": ("HfHubHTTPError", 412),
        "pull request": ("BadRequestError", 400),  # not supported by FakeHub
    }
    assert all("HfHubHTTPError" in error["mro"] for error in result["errors"].values())
    assert "EntryNotFoundError" in result["errors"]["missing file"]["mro"]
    assert [c["title"] for c in seeded.commits("alice/dcgan")] == ["Seed config", "initial commit"]


def test_injected_faults(seeded, tmp_path):
    seeded.create_repo("alice/other")
    seeded.fail_next(500, "/api/models/alice/dcgan", method="GET")
    seeded.fail_next(500, "/api/models/alice/dcgan/commit/", times=10)
    seeded.fail_next(503, "/api/models/alice/other/preupload/")
    seeded.fail_next(401, "/api/whoami-v2")
    seeded.fail_next(403, "/api/models/alice/dcgan/refs")
    seeded.fail_next(404, "/api/models/alice/dcgan/tree/", error_code="RepoNotFound")
    env = hub_env(seeded, tmp_path / "hf", token="hf_alice")

    result = run_client(
        env,
        """
        def upload(repo_id):
            return api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, commit_message="Add x")

        result["errors"] = {
            "info 500": error_of(lambda: api.model_info("alice/dcgan")),
            "commit 500": error_of(lambda: upload("alice/dcgan")),
            "whoami 401": error_of(api.whoami),
            "refs 403": error_of(lambda: api.list_repo_refs("alice/dcgan")),
            "tree 404 RepoNotFound": error_of(lambda: list_repo_files("alice/dcgan")),
        }
        start = time.monotonic()
        result["retried_commit"] = upload("alice/other").oid
        result["retry_seconds"] = time.monotonic() - start
        """,
    )

    assert summary(result["errors"]) == {
        "info 500": ("HfHubHTTPError", 500),
        "commit 500": ("HfHubHTTPError", 500),
        "whoami 401": ("HfHubHTTPError", 401),
        "refs 403": ("HfHubHTTPError", 403),
        "tree 404 RepoNotFound": ("RepositoryNotFoundError", 404),
    }
    # model_info and the commit call are not retried; preupload is, after a 1 s pause.
    assert seeded.requests.count(("GET", "/api/models/alice/dcgan")) == 1
    assert seeded.requests.count(("POST", "/api/models/alice/dcgan/commit/main")) == 1
    assert seeded.requests.count(("POST", "/api/models/alice/other/preupload/main")) == 2
    assert result["retry_seconds"] >= 1
    assert seeded.commits("alice/other")[0]["id"] == result["retried_commit"]
    assert "x.txt" not in seeded.files("alice/dcgan")

    download = 'result["path"] = hf_hub_download("alice/dcgan", "config.json")'
    cached = run_client(env, download)["path"]
    seeded.fail_next(500, "/resolve/", times=10)
    assert run_client(env, download)["path"] == cached  # falls back to the cache, without retrying
    assert seeded.requests.count(("HEAD", "/alice/dcgan/resolve/main/config.json")) == 2


def test_closed_port_raises_connection_error(tmp_path):
    hub = FakeHub(tokens=TOKENS)
    hub.start()
    hub.stop()
    result = run_client(
        hub_env(hub, tmp_path / "hf", token="hf_alice"),
        """
        result["info"] = error_of(lambda: api.model_info("alice/dcgan"))
        result["whoami"] = error_of(api.whoami)
        """,
    )
    for error in result.values():
        assert error["type"] == "ConnectError" and error["status"] is None
        assert "NetworkError" in error["mro"] and "HfHubHTTPError" not in error["mro"]


def test_range_request_resumes_download(seeded):
    url = f"{seeded.url}/alice/dcgan/resolve/main/config.json"
    request = urllib.request.Request(url, headers={"Range": "bytes=2-"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == "bytes 2-9/10"
        assert response.read() == b'{"z": 100}'[2:]
