"""A local, in-memory Hugging Face Hub for tests (standard library only).

`FakeHub` speaks the subset of the Hub HTTP API that `huggingface_hub` (2.4.x) uses to create repos, commit
files (regular files inline, large files through the plain Git LFS batch API), download them, list them, set Space
variables and request a Space's hardware. The real client is pointed at it with `HF_ENDPOINT`; nothing in the client
is mocked.

Usage::

    with FakeHub(tokens={"hf_alice": "alice"}, lfs_threshold=1024) as hub:
        env = hub_env(hub, home=tmp_path / "hf", token="hf_alice")
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        assert hub.commits("alice/dcgan")[0]["title"] == "Upload model"

Run the client in a subprocess with `hub_env(...)` as its environment: `huggingface_hub` reads `HF_ENDPOINT`,
`HF_HOME`, `HF_HUB_OFFLINE`, `HF_HUB_DISABLE_XET`... once, at import time, and other tests in the same pytest
process may already have imported it, so setting `os.environ` inside a test is not reliable. `HF_HUB_DISABLE_XET=1`
is required: the server does not implement Xet storage and the client would otherwise try it for large files.

Behaviour mirrors the real Hub where the client depends on it:

* a new repo starts with an "initial commit" holding `.gitattributes`;
* files are committed as LFS when at least `lfs_threshold` bytes or when their name matches `lfs_patterns`;
* a missing or unreadable repo answers `X-Error-Code: RepoNotFound` (401 when anonymous, 404 otherwise),
  an unknown revision `RevisionNotFound`, a missing file `EntryNotFound`;
* a Space's runtime names the hardware asked for when it was created or requested since (`cpu-basic` when none
  was); namespaces on the free plan (`free_plan`) get 402 "Static Spaces are free for everyone, but hosting Gradio
  and Docker Spaces on free cpu-basic requires a PRO subscription..." for a Gradio or Docker Space on `cpu-basic`
  when creating it (the Hub's answer) and when requesting that hardware (assumed: the same rule);
* a gated repo (`FakeHub.gate`) shows its info and file listings to anyone, but its files only to its owner and the
  users granted access: others get `X-Error-Code: GatedRepo` (401 when anonymous, 403 otherwise);
* an unknown token answers 401 "Invalid credentials in Authorization header" on any request; writing needs a
  token (else 401) of a user who owns the namespace or belongs to the organization (else 403);
* the client retries 408/429/5xx (and connection errors) with 1, 2, 4, 8, 8 s pauses on preupload, LFS and
  listing calls, and `hf_hub_download` of a file missing from the cache retries its HEAD call the same way (23 s)
  before raising `LocalEntryNotFoundError`: inject persistent 5xx faults on those calls only with care.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024
# as in the Hub's default .gitattributes: `datasets` deletes a shard after preupload, so it must go through LFS
DEFAULT_LFS_PATTERNS = ("*.arrow", "*.bin", "*.ckpt", "*.h5", "*.onnx", "*.parquet", "*.pt", "*.pth", "*.safetensors")
REPO_TYPES = ("model", "dataset", "space")
INVALID_TOKEN_MESSAGE = "Invalid credentials in Authorization header"  # exact text the client special-cases
FREE_HARDWARE = "cpu-basic"  # what a Space runs on when no hardware was asked for
COMPUTE_SDKS = ("gradio", "docker")  # Spaces that run on compute: on free cpu-basic only with a paid plan
PAID_PLAN_MESSAGE = (  # the Hub's answer (402) to a free account creating one
    "Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO "
    "subscription. Subscribe at https://huggingface.co/pro"
)


def hub_env(hub: FakeHub, home: str | os.PathLike, token: str | None = None, **overrides: str) -> dict[str, str]:
    """Environment for a subprocess running the real client against `hub`, with its cache under `home`.

    Inherited `HF_*` variables are dropped so that a developer's token or cache never leaks in. `token` becomes
    `HF_TOKEN`; `overrides` are added last (e.g. `HF_HUB_OFFLINE="1"`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),
        HF_HUB_CACHE=str(Path(home) / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY=no_proxy,
        no_proxy=no_proxy,
    )
    if token is not None:
        env["HF_TOKEN"] = token
    env.update(overrides)
    return env


def _now() -> str:
    """Current UTC time in the Hub's `2024-01-31T12:00:00.000Z` format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_sha1(data: bytes) -> str:
    """Git blob id of `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class _Blob:
    """File content at one path of a commit, stored either in git or in LFS."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The LFS pointer file git would store instead of the content."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:
        """Git blob id, as listed in trees (the pointer's id for LFS files)."""
        return _git_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """What the client uses as cache key: sha256 for LFS files, git blob id otherwise."""
        return self.sha256 if self.lfs else self.oid

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "oid": self.oid, "size": len(self.data), "path": path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return entry


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    author: str
    date: str
    files: dict[str, _Blob]

    def as_dict(self) -> dict:
        """Same shape as an item of `GET /api/{type}s/{repo}/commits/{rev}`."""
        return {
            "id": self.oid,
            "title": self.title,
            "message": self.description,
            "authors": [{"user": self.author}],
            "date": self.date,
        }


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: str = field(default_factory=_now)
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    file_headers: dict[str, str] = field(default_factory=dict)  # see FakeHub.misbehave
    sha: str | None = None
    any_revision: bool = False
    missing_commit: bool = True  # a missing file's 404 names the commit (X-Repo-Commit); see FakeHub.misbehave
    gated: str | bool = False  # "auto" or "manual" when gated, as the Hub's repo info says
    granted: set[str] = field(default_factory=set)  # users given access to a gated repo
    hardware: str | None = None  # a Space's requested hardware flavor

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    @property
    def runtime(self) -> dict:
        """A Space's runtime, as `GET /api/spaces/{repo}/runtime` answers (never started here)."""
        hardware = {"current": None, "requested": self.hardware or FREE_HARDWARE}
        return {"stage": "BUILDING", "hardware": hardware, "storage": None, "gcTimeout": None, "replicas": {}}

    @property
    def url_path(self) -> str:
        """Repo path in web URLs: `ns/name` for models, `spaces/ns/name` for Spaces..."""
        return self.repo_id if self.repo_type == "model" else f"{self.repo_type}s/{self.repo_id}"

    def resolve(self, revision: str) -> _Commit:
        """Commit named by a branch or a full commit id."""
        oid = self.branches.get(revision, revision)
        if oid not in self.commits and self.any_revision:
            oid = self.branches["main"]
        if oid not in self.commits:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[oid]

    def history(self, revision: str) -> list[_Commit]:
        """Commits reachable from `revision`, newest first."""
        commits, commit = [], self.resolve(revision)
        while commit is not None:
            commits.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return commits

    def commit(
        self,
        branch: str,
        *,
        author: str,
        title: str,
        description: str = "",
        additions: dict[str, _Blob] | None = None,
        deletions: Iterable[str] = (),
        deleted_folders: Iterable[str] = (),
        parent_commit: str | None = None,
    ) -> _Commit:
        """Create a commit on `branch` (which must exist, unless the repo is still empty)."""
        if self.branches and branch not in self.branches:
            raise _HttpError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        parent = self.commits[self.branches[branch]] if self.branches else None
        if parent_commit is not None and parent is not None and parent_commit != parent.oid:
            raise _HttpError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(parent.files) if parent else {}
        for path in deletions:
            if files.pop(path, None) is None:
                raise _HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        for folder in deleted_folders:
            prefix = folder.rstrip("/") + "/"
            files = {path: blob for path, blob in files.items() if not path.startswith(prefix)}
        files.update(additions or {})
        seed = json.dumps([parent.oid if parent else None, title, _now(), len(self.commits), secrets.token_hex(8)])
        commit = _Commit(
            oid=hashlib.sha1(seed.encode()).hexdigest(),
            parent=parent.oid if parent else None,
            title=title,
            description=description,
            author=author,
            date=_now(),
            files=files,
        )
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


def _folder_entry(commit: _Commit, path: str) -> dict:
    """Tree entry of a folder (its oid is made up, but stable per commit)."""
    return {"type": "directory", "oid": _git_sha1(f"{commit.oid}:{path}".encode()), "path": path}


class _HttpError(Exception):
    """An error answer: JSON `{"error": message, **extra}`, plus the Hub's `X-Error-*` headers when `code` is set."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        extra: dict | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.extra, self.headers = extra or {}, dict(headers or {})


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload, status: int = 200, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def _error_response(error: _HttpError) -> _Response:
    headers = dict(error.headers)
    if error.code is not None:
        message = error.message.encode("ascii", "replace").decode()  # header values must be latin-1
        headers.update({"X-Error-Code": error.code, "X-Error-Message": message})
    return _json({"error": error.message, **error.extra}, error.status, headers)


@dataclass
class _Fault:
    status: int
    path_contains: str | None
    method: str | None
    remaining: int
    error_code: str | None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


_TYPES = r"(?P<type>models|datasets|spaces)"
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_PREFIX = r"(?:/(?P<type>datasets|spaces))?"
_ROUTES: list[tuple[tuple[str, ...], re.Pattern, str]] = [
    (methods, re.compile(pattern), handler)
    for methods, pattern, handler in [
        (("GET",), r"/api/whoami-v2", "_whoami"),
        (("POST",), r"/api/repos/create", "_create_repo"),
        (("POST",), r"/api/validate-yaml", "_validate_yaml"),
        (("GET",), rf"/api/{_TYPES}/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "_repo_info"),
        (("GET",), rf"/api/{_TYPES}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "_tree"),
        (("POST",), rf"/api/{_TYPES}/{_REPO}/paths-info/(?P<rev>[^/]+)", "_paths_info"),
        (("GET",), rf"/api/{_TYPES}/{_REPO}/refs", "_refs"),
        (("GET",), rf"/api/{_TYPES}/{_REPO}/commits/(?P<rev>[^/]+)", "_list_commits"),
        (("POST",), rf"/api/{_TYPES}/{_REPO}/preupload/(?P<rev>[^/]+)", "_preupload"),
        (("POST",), rf"/api/{_TYPES}/{_REPO}/commit/(?P<rev>[^/]+)", "_commit"),
        (("POST",), rf"/api/{_TYPES}/{_REPO}/branch/(?P<rev>[^/]+)", "_create_branch"),
        (("GET", "POST", "DELETE"), rf"/api/(?P<type>spaces)/{_REPO}/variables", "_variables"),
        (("GET",), rf"/api/(?P<type>spaces)/{_REPO}/runtime", "_space_runtime"),
        (("POST",), rf"/api/(?P<type>spaces)/{_REPO}/hardware", "_space_hardware"),
        (("POST",), rf"{_PREFIX}/{_REPO}\.git/info/lfs/objects/batch", "_lfs_batch"),
        (("POST",), rf"{_PREFIX}/{_REPO}\.git/info/lfs/objects/verify", "_lfs_verify"),
        (("PUT",), r"/lfs-upload/(?P<ticket>[0-9a-f]+)", "_lfs_put"),
        (("GET", "HEAD"), rf"{_PREFIX}/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "_resolve_file"),
    ]
]


@dataclass
class _Request:
    method: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    user: str | None
    params: dict[str, str | None]

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise _HttpError(400, f"Invalid JSON body: {err}") from err

    def flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("1", "true")


class FakeHub:
    """In-memory Hub: repos, branches, commits, LFS objects and Space variables behind a local HTTP server.

    Args:
        tokens: valid bearer tokens mapped to user names.
        orgs: organization names mapped to their member user names (members may write in the org namespace).
        lfs_threshold: files of at least this many bytes go through LFS.
        lfs_patterns: file-name globs that always go through LFS (also written to `.gitattributes`).
        free_plan: users and organizations without a paid plan: no Gradio or Docker Space on cpu-basic for them.
    """

    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        orgs: dict[str, Iterable[str]] | None = None,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
        lfs_patterns: Iterable[str] = DEFAULT_LFS_PATTERNS,
        free_plan: Iterable[str] = (),
    ):
        self.tokens = dict(tokens or {})
        self.orgs = {org: set(members) for org, members in (orgs or {}).items()}
        self.lfs_threshold = lfs_threshold
        self.lfs_patterns = tuple(lfs_patterns)
        self.free_plan = set(free_plan)
        self.requests: list[tuple[str, str]] = []  # (method, path without query), in arrival order
        self.url = ""
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._uploads: dict[str, tuple[_Repo, str, int]] = {}  # LFS upload ticket -> (repo, sha256, size)
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (`port=0`: any free port) in a background thread; return the base URL."""
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.hub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and drop open connections; the port is closed afterwards. State stays readable."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- test-side API ---------------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        path_contains: str | None = None,
        *,
        method: str | None = None,
        times: int = 1,
        error_code: str | None = None,
    ) -> None:
        """Answer the next `times` requests matching `method` and `path_contains` with `status`.

        The fault applies before authentication and routing, like a failing proxy. `error_code` sets
        `X-Error-Code` (e.g. "RepoNotFound"). The client retries 408/429/500/502/503/504 on some calls
        (preupload, LFS, tree listing, file metadata; up to 7 attempts in all): pass `times >= 7` to make
        those fail for good, at the price of ~23 s of client back-off.
        """
        with self._lock:
            self._faults.append(_Fault(status, path_contains, method, times, error_code))

    def create_repo(
        self,
        repo_id: str,
        repo_type: str = "model",
        *,
        private: bool = False,
        sdk: str | None = None,
        author: str = "",
        hardware: str | None = None,
    ) -> None:
        """Create a repo with an initial commit holding `.gitattributes`, as the Hub does (a Space on `hardware`)."""
        if repo_type not in REPO_TYPES or repo_id.count("/") != 1:
            raise ValueError(f"Invalid repo: {repo_type} {repo_id!r}")
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                raise ValueError(f"Repo already exists: {repo_type} {repo_id}")
            repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, sdk=sdk, hardware=hardware)
            gitattributes = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in self.lfs_patterns)
            repo.commit(
                "main",
                author=author or repo.namespace,
                title="initial commit",
                additions={".gitattributes": _Blob(gitattributes.encode(), lfs=False)},
            )
            self._repos[(repo_type, repo_id)] = repo

    def upload(
        self,
        repo_id: str,
        files: dict[str, bytes],
        message: str,
        *,
        revision: str = "main",
        repo_type: str = "model",
    ) -> str:
        """Commit `files` directly (no HTTP), with the same LFS rules as an upload; return the commit id."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            additions = {path: _Blob(data, self._is_lfs(path, len(data))) for path, data in files.items()}
            return repo.commit(revision, author=repo.namespace, title=message, additions=additions).oid

    def misbehave(
        self,
        repo_id: str,
        *,
        file_headers: dict[str, str] | None = None,
        sha: str | None = None,
        any_revision: bool = False,
        repo_type: str = "model",
        missing_commit: bool = True,
    ) -> None:
        """Make a repo answer like a careless or hostile mirror: `file_headers` replace those of its file answers
        (e.g. `ETag: "../x"`), `sha` is its commit id in repo info answers, `any_revision` resolves any revision
        string, e.g. `../x`, to main (the real Hub refuses such branch names), and `missing_commit=False` drops the
        commit header from a missing file's 404 (huggingface_hub then records neither `.no_exist` nor the branch's
        `refs/`)."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            repo.file_headers, repo.sha, repo.any_revision = dict(file_headers or {}), sha, any_revision
            repo.missing_commit = missing_commit

    def gate(
        self, repo_id: str, repo_type: str = "dataset", *, granted: Iterable[str] = (), mode: str = "auto"
    ) -> None:
        """Gate a repo: its files download only for its namespace's writers and the `granted` users."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            repo.gated, repo.granted = mode, set(granted)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """Content of every file of the repo at `revision`."""
        with self._lock:
            commit = self._repo(repo_type, repo_id).resolve(revision)
            return {path: blob.data for path, blob in commit.files.items()}

    def lfs_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> set[str]:
        """Paths of the files stored in LFS at `revision`."""
        with self._lock:
            commit = self._repo(repo_type, repo_id).resolve(revision)
            return {path for path, blob in commit.files.items() if blob.lfs}

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[dict]:
        """History of `revision`, newest first: `{"id", "title", "message", "authors", "date"}` each."""
        with self._lock:
            return [commit.as_dict() for commit in self._repo(repo_type, repo_id).history(revision)]

    def branches(self, repo_id: str, repo_type: str = "model") -> dict[str, str]:
        """Branch names mapped to their head commit id."""
        with self._lock:
            return dict(self._repo(repo_type, repo_id).branches)

    def space_variables(self, repo_id: str) -> dict[str, str]:
        """Variables of a Space, as key -> value."""
        with self._lock:
            return {key: var["value"] for key, var in self._repo("space", repo_id).variables.items()}

    def space_hardware(self, repo_id: str) -> str | None:
        """The hardware flavor asked for a Space, at creation or since (None when none was)."""
        with self._lock:
            return self._repo("space", repo_id).hardware

    def is_private(self, repo_id: str, repo_type: str = "model") -> bool:
        """Whether the repo is private."""
        with self._lock:
            return self._repo(repo_type, repo_id).private

    # --- internals -------------------------------------------------------------------------------------------

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise KeyError(f"No {repo_type} repo {repo_id!r}") from None

    def _is_lfs(self, path: str, size: int) -> bool:
        if size == 0:
            return False
        name = PurePosixPath(path).name
        return size >= self.lfs_threshold or any(fnmatch.fnmatch(name, pattern) for pattern in self.lfs_patterns)

    def _can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def _access(self, req: _Request, write: bool = False) -> _Repo:
        """The repo named by the request, checking read (and `write`) access the way the Hub does."""
        repo_type = (req.params.get("type") or "models")[:-1]
        repo = self._repos.get((repo_type, unquote(req.params["repo"])))
        if repo is None or (repo.private and not self._can_write(req.user, repo.namespace)):
            raise _HttpError(401 if req.user is None else 404, "Repository not found", "RepoNotFound")
        if write and req.user is None:
            raise _HttpError(401, "You must be authenticated to write to this repository")
        if write and not self._can_write(req.user, repo.namespace):
            raise _HttpError(403, f"You don't have write access to {repo.repo_type} {repo.repo_id}")
        return repo

    def _check_plan(self, namespace: str, sdk: str | None, hardware: str | None) -> None:
        """Refuse a Gradio or Docker Space on free cpu-basic to a namespace without a paid plan, as the Hub does."""
        if namespace in self.free_plan and sdk in COMPUTE_SDKS and (hardware or FREE_HARDWARE) == FREE_HARDWARE:
            raise _HttpError(402, PAID_PLAN_MESSAGE)

    def _check_gate(self, req: _Request, repo: _Repo) -> None:
        """Refuse a gated repo's files to users without access, with the Hub's answers."""
        if not repo.gated or self._can_write(req.user, repo.namespace) or req.user in repo.granted:
            return
        kind = repo.repo_type
        if req.user is None:
            message = (
                f"Access to {kind} {repo.repo_id} is restricted. You must have access to it and be authenticated to "
                "access it. Please log in."
            )
            raise _HttpError(401, message, "GatedRepo")
        message = (
            f"Access to {kind} {repo.repo_id} is restricted and you are not in the authorized list. "
            f"Visit {self._repo_url(repo)} to ask for access."
        )
        raise _HttpError(403, message, "GatedRepo")

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Response:
        """Serve one request (called by the HTTP handler threads)."""
        split = urlsplit(target)
        with self._lock:
            self.requests.append((method, split.path))
            fault = next((f for f in self._faults if f.matches(method, split.path)), None)
            if fault is not None:
                fault.remaining -= 1
                return _error_response(_HttpError(fault.status, f"Injected fault {fault.status}", fault.error_code))
            try:
                user = self._authenticate(headers.get("authorization"))
                for methods, pattern, handler in _ROUTES:
                    match = pattern.fullmatch(split.path)
                    if match and method in methods:
                        query = parse_qs(split.query)
                        return getattr(self, handler)(_Request(method, query, headers, body, user, match.groupdict()))
                raise _HttpError(404, f"Not found: {method} {split.path}")
            except _HttpError as error:
                return _error_response(error)
            except Exception as error:  # a FakeHub bug or a malformed request: answer instead of dropping the socket
                traceback.print_exc()
                return _error_response(_HttpError(500, f"FakeHub failed on {method} {split.path}: {error!r}"))

    def _authenticate(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _HttpError(401, INVALID_TOKEN_MESSAGE, headers={"X-Error-Message": INVALID_TOKEN_MESSAGE})
        return user

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/{repo.url_path}"

    # --- endpoints -------------------------------------------------------------------------------------------

    def _whoami(self, req: _Request) -> _Response:
        if req.user is None:
            raise _HttpError(401, "You must be authenticated")
        orgs = [{"type": "org", "name": org} for org, members in self.orgs.items() if req.user in members]
        return _json(
            {
                "type": "user",
                "id": hashlib.sha1(req.user.encode()).hexdigest()[:24],
                "name": req.user,
                "fullname": req.user,
                "orgs": orgs,
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake-hub", "role": "write"}},
            }
        )

    def _create_repo(self, req: _Request) -> _Response:
        if req.user is None:
            raise _HttpError(401, "You must be authenticated to create a repo")
        payload = req.json()
        repo_type = payload.get("type") or "model"
        namespace, name = payload.get("organization") or req.user, payload.get("name") or ""
        repo_id = f"{namespace}/{name}"
        if repo_type not in REPO_TYPES or not name or "/" in name:
            raise _HttpError(400, f"Invalid repo: {repo_type} {repo_id}")
        if not self._can_write(req.user, namespace):
            message = f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"'
            raise _HttpError(403, message)
        existing = self._repos.get((repo_type, repo_id))
        if existing is not None:
            raise _HttpError(409, f"You already created this {repo_type} repo", extra={"url": self._repo_url(existing)})
        hardware = payload.get("hardware") if repo_type == "space" else None
        if repo_type == "space":
            if not payload.get("sdk"):
                raise _HttpError(400, "A Space needs an sdk")
            self._check_plan(namespace, payload["sdk"], hardware)
        private = payload.get("visibility") == "private" or payload.get("private") is True  # older clients
        self.create_repo(
            repo_id, repo_type, private=private, sdk=payload.get("sdk"), author=req.user, hardware=hardware
        )
        repo = self._repos[(repo_type, repo_id)]
        return _json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _validate_yaml(self, req: _Request) -> _Response:
        return _json({"errors": [], "warnings": []})

    def _repo_info(self, req: _Request) -> _Response:
        repo = self._access(req)
        commit = repo.resolve(unquote(req.params["rev"] or "main"))
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": len(blob.data), "blobId": blob.oid}
            if blob.lfs:
                sibling["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.namespace,
            "sha": repo.sha or commit.oid,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "likes": 0,
            "tags": [],
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "siblings": siblings,
        }
        if repo.repo_type == "model":
            info["downloads"] = 0
        if repo.sdk is not None:
            info["sdk"] = repo.sdk
        if repo.repo_type == "space":
            info["runtime"] = repo.runtime
        return _json(info)

    @staticmethod
    def _entries(commit: _Commit, folder: str, recursive: bool) -> list[dict]:
        """Tree entries under `folder` ("" for the root): direct children, or all descendants."""
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, dict] = {}
        for path, blob in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts) - 1) + 1):
                sub = prefix + "/".join(parts[:i])
                entries.setdefault(sub, _folder_entry(commit, sub))
            if recursive or len(parts) == 1:
                entries[path] = blob.tree_entry(path)
        return list(entries.values())

    def _tree(self, req: _Request) -> _Response:
        commit = self._access(req).resolve(unquote(req.params["rev"]))
        folder = unquote(req.params["path"] or "").strip("/")
        if folder and not any(path.startswith(folder + "/") for path in commit.files):
            raise _HttpError(404, f"Path {folder} not found", "EntryNotFound")
        return _json(self._entries(commit, folder, req.flag("recursive")))

    def _paths_info(self, req: _Request) -> _Response:
        commit = self._access(req).resolve(unquote(req.params["rev"]))
        infos = []
        for path in parse_qs(req.body.decode()).get("paths", []):  # form-encoded, `paths` repeated
            path = path.strip("/")
            if path in commit.files:
                infos.append(commit.files[path].tree_entry(path))
            elif any(p.startswith(path + "/") for p in commit.files):
                infos.append(_folder_entry(commit, path))
        return _json(infos)

    def _refs(self, req: _Request) -> _Response:
        repo = self._access(req)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": oid} for n, oid in repo.branches.items()]
        return _json({"branches": branches, "tags": [], "converts": [], "pullRequests": []})

    def _list_commits(self, req: _Request) -> _Response:
        repo = self._access(req)
        return _json([commit.as_dict() for commit in repo.history(unquote(req.params["rev"]))])

    def _preupload(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        commit = repo.resolve(unquote(req.params["rev"]))
        files = []
        for item in req.json().get("files", []):
            path, size = item["path"], int(item["size"])
            existing = commit.files.get(path)
            remote_oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            mode = "lfs" if self._is_lfs(path, size) else "regular"
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
        return _json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        payload = req.json()
        if payload.get("operation") != "upload":
            raise _HttpError(400, "Only the upload operation is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.lfs_objects:
                ticket = secrets.token_hex(16)
                self._uploads[ticket] = (repo, oid, size)
                verify = f"{self.url}/{repo.url_path}.git/info/lfs/objects/verify"
                answer["actions"] = {
                    "upload": {"href": f"{self.url}/lfs-upload/{ticket}", "expires_in": 3600},
                    "verify": {"href": verify, "expires_in": 3600},
                }
            objects.append(answer)
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _lfs_put(self, req: _Request) -> _Response:
        ticket = self._uploads.pop(req.params["ticket"], None)
        if ticket is None:
            raise _HttpError(403, "Unknown or used upload URL")
        repo, oid, size = ticket
        if len(req.body) != size or hashlib.sha256(req.body).hexdigest() != oid:
            raise _HttpError(400, f"Uploaded content does not match oid {oid} and size {size}")
        repo.lfs_objects[oid] = req.body
        return _Response(200, headers={"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})

    def _lfs_verify(self, req: _Request) -> _Response:
        repo = self._access(req)
        oid = req.json().get("oid")
        if oid not in repo.lfs_objects:
            raise _HttpError(404, f"LFS object {oid} was not uploaded")
        return _json({"success": True})

    def _commit(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        if req.flag("create_pr"):
            raise _HttpError(400, "FakeHub does not support pull requests (create_pr)")
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "The first line of a commit payload must be its header")
        header = lines[0]["value"]
        additions: dict[str, _Blob] = {}
        deletions, deleted_folders = [], []
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":  # the client always sends content base64-encoded
                additions[value["path"]] = _Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in repo.lfs_objects:
                    raise _HttpError(422, f"LFS file {value['path']} (oid {value['oid']}) was not uploaded")
                additions[value["path"]] = _Blob(repo.lfs_objects[value["oid"]], lfs=True)
            elif key == "deletedFile":
                deletions.append(value["path"])
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                raise _HttpError(400, f"Unknown commit operation: {key}")
        commit = repo.commit(
            unquote(req.params["rev"]),
            author=req.user,
            title=header.get("summary", ""),
            description=header.get("description", ""),
            additions=additions,
            deletions=deletions,
            deleted_folders=deleted_folders,
            parent_commit=header.get("parentCommit"),
        )
        commit_url = f"{self._repo_url(repo)}/commit/{commit.oid}"
        return _json({"success": True, "commitOid": commit.oid, "commitUrl": commit_url, "hookOutput": ""})

    def _create_branch(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        branch = unquote(req.params["rev"])
        if branch in repo.branches:
            raise _HttpError(409, f"Reference refs/heads/{branch} already exists")
        start = repo.resolve(req.json().get("startingPoint") or "main")
        repo.branches[branch] = start.oid
        return _json({})

    def _variables(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        if req.method == "POST":
            payload = req.json()
            variable = {"value": str(payload["value"]), "updatedAt": _now()}
            if payload.get("description") is not None:
                variable["description"] = payload["description"]
            repo.variables[payload["key"]] = variable
        elif req.method == "DELETE":
            repo.variables.pop(req.json().get("key"), None)
        return _json(repo.variables)

    def _space_runtime(self, req: _Request) -> _Response:
        return _json(self._access(req).runtime)

    def _space_hardware(self, req: _Request) -> _Response:
        repo = self._access(req, write=True)
        flavor = req.json().get("flavor")
        if not flavor:
            raise _HttpError(400, "A hardware request needs a flavor")
        self._check_plan(repo.namespace, repo.sdk, flavor)
        repo.hardware = flavor
        return _json(repo.runtime)

    def _resolve_file(self, req: _Request) -> _Response:
        repo = self._access(req)
        self._check_gate(req, repo)
        commit = repo.resolve(unquote(req.params["rev"]))
        path = unquote(req.params["path"])
        blob = commit.files.get(path)
        if blob is None:
            headers = {"X-Repo-Commit": commit.oid} if repo.missing_commit else {}
            raise _HttpError(404, "Entry not found", "EntryNotFound", headers=headers)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": commit.oid,
        }
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        headers.update(repo.file_headers)
        data, status = blob.data, 200
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers.get("range", ""))
        if byte_range:
            start = int(byte_range[1])
            end = min(int(byte_range[2] or len(data) - 1), len(data) - 1)
            if start >= len(data):
                raise _HttpError(416, "Requested range not satisfiable")
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        return _Response(status, data, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Shut down keep-alive connections so their handler threads end."""
        with self.connections_lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every answer carries a Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args) -> None:
        """Silence per-request logging (see `FakeHub.requests`)."""

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding"):  # the client always sends Content-Length
            self.send_error(411, "Chunked request bodies are not supported")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.hub._handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve
