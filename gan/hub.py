"""Hugging Face Hub: publish an export as a model repo, load a model from a repo id (Spaces: gan.space).

A published repo holds, at its root, the export's files (config.json, model.safetensors = the sampling generator,
generator_raw.safetensors when EMA is on, discriminator.safetensors, samples.png, loss.png, weights.png,
metrics.jsonl) and a README.md model card (gan.model_card); each push is one commit.

Naming on the command line: `--hub-model-id` where something is published, `--repo-id`/`--revision` where a model
is read, `--checkpoint` for a local export folder. The token comes from `--hub-token`, `HF_TOKEN` or the stored
`hf auth login`; it is never printed, logged or written anywhere (error messages are scrubbed of it too).

Every Hub failure becomes a one-line `HubError` saying what to do (see `explain`). Nothing here deletes or changes
local files (but `prune_cache`, in the Hub cache): a failed push leaves the export as it was. A model repo is anyone's
work and HF_ENDPOINT any server's: loading bounds and checks what they say (`check_revision`, `_unsafe_answer`,
checkpoint.read_config) and names files by repo id, never by their place in the server's cache.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    PyTorchModelHubMixin,
    constants,
    get_token,
    snapshot_download,
)
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import validate_repo_id
from safetensors import safe_open

from . import checkpoint as ckpt
from .errors import CheckpointError, GanError, HubError
from .model_card import model_card, published_config
from .models import Discriminator, Generator, ModelConfig

PUBLISHED_FILES = (ckpt.CONFIG_NAME, "*.safetensors", "*.png", "metrics.jsonl")  # an export's root files to push
DOWNLOADED_FILES = [ckpt.CONFIG_NAME, "*.safetensors"]  # what loading needs
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LOGIN_HINT = "run `hf auth login`, set HF_TOKEN, or pass --hub-token"
REPO_ID_VARIABLE, REVISION_VARIABLE = "GAN_REPO_ID", "GAN_REVISION"  # how the app (and a Space) is pointed at a model
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport failures (refused, DNS, timeout, TLS) of whichever HTTP client huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        with contextlib.suppress(ImportError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


NETWORK_ERRORS = _network_errors()


# -- errors -----------------------------------------------------------------------------------------------------


def _first_line(value) -> str:
    text = str(value).strip().splitlines()
    return text[0][:200] if text else ""


def _scrub(text: str, token: str | None) -> str:
    text = " ".join(text.split())  # one line
    return text.replace(token, "***") if token else text


def explain(
    error: BaseException, *, action: str, repo_id: str, revision: str | None = None, writing: bool = False
) -> str | None:
    """One actionable line for a huggingface_hub / network error, or None when `error` is something else."""
    endpoint, rev = constants.ENDPOINT, revision or "main"
    if isinstance(error, hf_errors.OfflineModeIsEnabled):
        return f"HF_HUB_OFFLINE=1 is set, so {action} cannot reach the Hub: unset HF_HUB_OFFLINE and try again"
    if isinstance(error, hf_errors.LocalEntryNotFoundError):  # the Hub was not reachable and the cache lacks it
        cause = error.__cause__
        if constants.HF_HUB_OFFLINE or isinstance(cause, hf_errors.OfflineModeIsEnabled):
            return (
                f"{repo_id}@{rev} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set: "
                "load it once online (without HF_HUB_OFFLINE) or choose a model loaded before"
            )
        if cause is not None and (
            reason := explain(cause, action=action, repo_id=repo_id, revision=revision, writing=writing)
        ):
            return f"{reason} ({repo_id}@{rev} is not in the local cache either)"
        return (
            f"cannot reach the Hub at {endpoint} and {repo_id}@{rev} is not in the local cache: "
            "check your network, proxy or HF_ENDPOINT and try again"
        )
    if isinstance(error, hf_errors.GatedRepoError):
        return (
            f"{repo_id} is gated: accept its conditions at {endpoint}/{repo_id}, "
            f"then use that account's token ({LOGIN_HINT})"
        )
    if isinstance(error, hf_errors.RevisionNotFoundError):
        flag = "--hub-revision" if writing else "--revision"
        return (
            f"revision {rev!r} not found in {repo_id} (404): "
            f"check {flag} (a branch, tag or commit of {endpoint}/{repo_id})"
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError):
        return (
            f"repository {repo_id} not found on {endpoint} (404): check the id (USER/NAME); "
            f"if it is private, use a token that can read it ({LOGIN_HINT})"
        )
    if isinstance(error, hf_errors.EntryNotFoundError):
        return (
            f"{repo_id}@{rev} lacks a file DCGAN Studio needs (404): is it a model published with "
            "`train.py --push-to-hub` or `python -m gan push`?"
        )
    if isinstance(error, hf_errors.HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        namespace = repo_id.split("/")[0]
        if status == 401:
            need = "a valid token with write access" if writing else "a valid token, or none for a public model"
            return f"the Hub rejected the token (401): it is missing, invalid or expired; {LOGIN_HINT} with {need}"
        if status == 403 and writing:
            return (
                f"no write access to {repo_id} (403): this token's account cannot write to {namespace!r}; use a write "
                f"token of {namespace!r} or of a member of that organization, or push to your own namespace"
            )
        if status == 403:
            return f"the Hub refused access to {repo_id} (403): use a token allowed to read it ({LOGIN_HINT})"
        if status == 429:
            return f"the Hub rate-limited {action} (429): wait a few minutes and try again"
        if status is not None and status >= 500:
            return (
                f"the Hub had a server error ({status}) while {action}: try again in a few minutes "
                "(https://status.huggingface.co)"
            )
        return f"the Hub refused {action} ({status}: {_first_line(error)})"
    if isinstance(error, hf_errors.HFValidationError):
        return f"{repo_id!r} is not a valid repo id: use USER/NAME (letters, digits, '-', '_' and '.')"
    if isinstance(error, NETWORK_ERRORS):
        return (
            f"cannot reach the Hub at {endpoint} ({type(error).__name__}: {_first_line(error) or 'no answer'}) while "
            f"{action}: check your network, proxy or HF_ENDPOINT and try again"
        )
    return None


@contextlib.contextmanager
def hub_errors(
    action: str, repo_id: str, revision: str | None = None, *, writing: bool = False, token: str | None = None
):
    """Turn huggingface_hub and network exceptions raised inside into one-line HubErrors."""
    try:
        yield
    except GanError:
        raise
    except Exception as error:
        message = explain(error, action=action, repo_id=repo_id, revision=revision, writing=writing)
        if message is None:
            raise
        raise HubError(_scrub(message, token)) from None


def resolve_token(token: str | None = None) -> str:
    """--hub-token, else HF_TOKEN, else the stored login; a HubError when there is none."""
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token: {LOGIN_HINT} (a write token from {constants.ENDPOINT}/settings/tokens)")
    return token


def check_repo_id(repo_id: str | None, flag: str) -> str:
    if not repo_id or not REPO_ID.match(repo_id):
        raise HubError(f"{flag} {repo_id!r} is not a repo id: use USER/NAME, e.g. {flag} your-name/dcgan-fashion-mnist")
    try:
        validate_repo_id(repo_id)
    except hf_errors.HFValidationError as error:
        raise HubError(f"{flag} {repo_id!r} is not a valid repo id ({_first_line(error)})") from None
    return repo_id


def looks_like_repo_id(text: str) -> bool:
    return bool(REPO_ID.match(text))


# -- publish ----------------------------------------------------------------------------------------------------


@dataclass
class Published:
    """Where a push (or a Space deployment) went."""

    repo_id: str
    revision: str
    commit: str
    url: str
    commit_url: str
    folder: Path | None = None
    changed: bool = True  # False when the repo already held exactly these files (the client then skips the commit)


def find_export(path: str | Path) -> Path:
    """An export folder itself, or a run folder's `model/`."""
    path = Path(path)
    for folder in (path, path / "model"):
        if (folder / ckpt.CONFIG_NAME).is_file():
            return folder
    raise CheckpointError(
        f"{path} is neither an export folder nor a run folder: no {ckpt.CONFIG_NAME} in it or in {path / 'model'}"
    )


def export_files(folder: Path) -> list[str]:
    """The export's files that get published, config.json first."""
    names = sorted(
        p.name for p in folder.iterdir() if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in PUBLISHED_FILES)
    )
    return sorted(names, key=lambda name: name != ckpt.CONFIG_NAME)


def commit_summary(config: dict) -> str:
    training = config.get("training", {})
    name = config.get("name") or "DCGAN"
    return f"Upload {name}: {training.get('steps', '?')} steps on {config.get('dataset', 'unknown data')}"


def push_export(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> Published:
    """Publish an export (or a run folder's `model/`) to `repo_id` as one commit, creating the repo (and the branch
    `revision`, from main) when missing. The export is loaded first, so a broken one is never published."""
    folder = find_export(folder)
    check_repo_id(repo_id, "--hub-model-id")
    model = ckpt.load_model(folder)  # verifies config.json and every shape
    token = resolve_token(token)
    files = export_files(folder)
    card = model_card(model.metadata, repo_id, files, revision)
    operations = [
        CommitOperationAdd(
            path_in_repo=name,
            path_or_fileobj=published_config(model.metadata) if name == ckpt.CONFIG_NAME else str(folder / name),
        )
        for name in files
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode()))
    metrics = model.metadata.get("final_metrics", {})
    description = "Pushed with DCGAN Studio. Final metrics: " + (
        ", ".join(f"{k}={v}" for k, v in metrics.items()) if metrics else "not recorded"
    )
    api = HfApi(token=token)
    with hub_errors(f"pushing to {repo_id}", repo_id, revision, writing=True, token=token):
        repo_url = api.create_repo(repo_id, private=private or None, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.repo_info(repo_id, revision=revision)
        head = info.sha
        # files of an earlier push that this export no longer has (e.g. generator_raw.safetensors when EMA is now off)
        stale = [
            s.rfilename
            for s in info.siblings or []
            if "/" not in s.rfilename
            and s.rfilename not in files
            and any(fnmatch.fnmatch(s.rfilename, g) for g in PUBLISHED_FILES)
        ]
        info = api.create_commit(
            repo_id,
            operations + [CommitOperationDelete(path_in_repo=name) for name in stale],
            commit_message=commit_message or commit_summary(model.metadata),
            commit_description=description,
            revision=revision,
        )
    return Published(repo_id, revision or "main", info.oid, str(repo_url), info.commit_url, folder, info.oid != head)


def add_publish_arguments(parser: argparse.ArgumentParser, training: bool = True) -> None:
    """The `--hub-*` flags: train.py's (with --push-to-hub, --push-every) or `python -m gan push`'s."""
    group = parser.add_argument_group("Hugging Face Hub", "publish the export as a model repo (one commit per push)")
    if training:
        group.add_argument(
            "--push-to-hub", action="store_true", help="push the export to --hub-model-id when training ends"
        )
        group.add_argument(
            "--push-every",
            type=int,
            default=None,
            metavar="STEPS",
            help="with --push-to-hub, also push every STEPS steps during training",
        )
    group.add_argument(
        "--hub-model-id", required=not training, default=None, metavar="USER/NAME", help="model repo to push to"
    )
    group.add_argument(
        "--hub-private", action="store_true", help="create the repo private (an existing repo keeps its visibility)"
    )
    group.add_argument(
        "--hub-revision",
        default=None,
        metavar="BRANCH",
        help="branch to push to, created from main if missing; none: main",
    )
    group.add_argument(
        "--hub-token",
        default=None,
        metavar="TOKEN",
        help="write token (default: HF_TOKEN or the `hf auth login` token); never printed or saved",
    )
    if not training:
        group.add_argument("--commit-message", default=None, help="default: 'Upload NAME: STEPS steps on DATASET'")


def check_push_arguments(args: argparse.Namespace) -> None:
    """Before training: everything a final push needs that can be checked without the network."""
    if not args.push_to_hub:
        return
    if not args.hub_model_id:
        raise HubError("--push-to-hub needs --hub-model-id USER/NAME (the model repo to create or update)")
    check_repo_id(args.hub_model_id, "--hub-model-id")
    if args.push_every is not None and args.push_every < 1:
        raise GanError("--push-every must be at least 1")
    resolve_token(args.hub_token)


def _push_hint(folder: Path, args: argparse.Namespace) -> str:
    revision = f" --hub-revision {args.hub_revision}" if args.hub_revision else ""
    return f"python -m gan push {folder} --hub-model-id {args.hub_model_id}{revision}"


def scheduled_push(args: argparse.Namespace):
    """A `Run` step hook pushing every --push-every steps (not at the last step: the final push does that).
    A failed scheduled push is reported and training goes on."""
    if not (args.push_to_hub and args.push_every):
        return None

    def hook(run) -> None:
        step = run.trainer.step
        if step % args.push_every or step >= run.total_steps:
            return
        run.save_samples()
        folder = run.export()
        try:
            published = push_export(
                folder,
                args.hub_model_id,
                token=args.hub_token,
                private=args.hub_private,
                revision=args.hub_revision,
                commit_message=f"Training checkpoint: step {step} of {run.total_steps}",
            )
        except GanError as error:
            print(f"\nwarning: the scheduled push at step {step} failed: {error}; training goes on", file=sys.stderr)
        else:
            print(f"\npushed step {step} to {published.url} (commit {published.commit[:7]})")

    return hook


def push_trained(args: argparse.Namespace, out: Path) -> Published:
    """The final push of train.py; a failure says where the (untouched) results are and how to push them later."""
    folder = out / "model"
    try:
        published = push_export(
            folder, args.hub_model_id, token=args.hub_token, private=args.hub_private, revision=args.hub_revision
        )
    except GanError as error:
        raise HubError(
            f"{error} -- the run folder {out} and its export {folder} are intact; push later with: "
            f"{_push_hint(folder, args)}"
        ) from None
    done = "pushed" if published.changed else "nothing new to push: already on the Hub:"
    print(
        f"{done} {folder} to {published.url} ({published.revision}, commit {published.commit[:7]}); "
        f"open it with: python app.py --repo-id {published.repo_id}"
    )
    return published


# -- load -------------------------------------------------------------------------------------------------------

REVISION_PART = re.compile(r"[A-Za-z0-9_-][\w.-]*", re.ASCII)  # a segment of a branch, tag or commit: never . or ..
COMMIT = re.compile(r"[0-9a-f]{40}")
PLAIN_HASH = re.compile(r"[A-Za-z0-9][\w-]{0,127}", re.ASCII)  # what the real Hub answers as ETag: hex digests
MAX_HEADER_BYTES = 64 * 1024  # of a safetensors file: the bundled model's are 1.6 KB
REPO_API = re.compile(r"/api/models/[^/]+/[^/]+(?:/revision/[^/]+|/tree/.*)?$")  # repo info and file listings


class UnsafeAnswer(HubError):
    """The server answered a commit id or ETag that huggingface_hub would make a path outside its cache from."""


def check_revision(revision: str | None) -> str | None:
    """Refuse a revision that is no branch, tag or commit name: huggingface_hub stores `refs/<revision>` in its cache,
    so one like '../../x' (which a mirror or HF_ENDPOINT may resolve, unlike the Hub) would write outside it."""
    if revision is not None and (
        len(revision) > 200
        or ".." in revision
        or revision.endswith(".lock")
        or not all(REVISION_PART.fullmatch(part) for part in revision.split("/"))
    ):
        raise HubError(
            f"revision {revision!r:.80} is not a branch, tag or commit name: use letters, digits, '-', '_', "
            "'.' and '/' (e.g. main, v1.0, refs/pr/1)"
        )
    return revision


def _unsafe_answer(response) -> str | None:
    """What in a Hub answer huggingface_hub would use as a cache path and is not a plain hash: the X-Repo-Commit
    header (snapshots/<commit>), the ETag or X-Linked-Etag header (blobs/<etag>), a repo's `sha` or a listed LFS
    oid; None when all is well."""
    commit = response.headers.get("X-Repo-Commit")
    if commit is not None and not COMMIT.fullmatch(commit):
        return "an X-Repo-Commit header that is not a commit id"
    for name in ("X-Linked-Etag", "ETag"):
        etag = response.headers.get(name)
        if etag is not None and not PLAIN_HASH.fullmatch(etag.lstrip("W/").strip('"')):  # as the client normalises it
            return f"an {name} header that is not a plain hash"
    request = response.request
    if request.method != "GET" or response.status_code != 200 or not REPO_API.search(request.url.path):
        return None
    try:
        response.read()
        data = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        return "a repo description that is not valid JSON"
    if isinstance(data, dict) and "sha" in data and not COMMIT.fullmatch(str(data["sha"])):
        return "a repo `sha` that is not a commit id"
    for entry in data if isinstance(data, list) else []:
        lfs = entry.get("lfs") if isinstance(entry, dict) else None
        if isinstance(lfs, dict) and not PLAIN_HASH.fullmatch(str(lfs.get("oid"))):
            return "an LFS oid that is not a plain hash"
    return None


def _refuse_unsafe_answer(response) -> None:
    """A response hook of huggingface_hub's HTTP client: the real Hub answers hex digests where the client takes file
    names from, but a mirror or HF_ENDPOINT answering '../..' there would make it write outside its cache."""
    problem = _unsafe_answer(response)
    if problem:
        response.close()
        raise UnsafeAnswer(
            f"the server at {constants.ENDPOINT} answered {problem}, which huggingface_hub would "
            "write as a path outside its cache: is HF_ENDPOINT a Hugging Face Hub?"
        )


def _check_answers() -> None:
    """Hook `_refuse_unsafe_answer` into huggingface_hub's shared HTTP client (made anew after a fork or a close)."""
    from huggingface_hub import get_session

    hooks = get_session().event_hooks["response"]
    if _refuse_unsafe_answer not in hooks:
        hooks.append(_refuse_unsafe_answer)


def _check_download_size(repo_id: str, revision: str | None, max_bytes: int, token: str | None) -> None:
    """Refuse a repo whose files to download exceed max_bytes (when the Hub can tell; else the download decides)."""
    if constants.HF_HUB_OFFLINE:
        return
    try:
        info = HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True)
    except Exception:  # noqa: BLE001 - the download below reports the same problem, or falls back to the cache
        return
    total = sum(
        s.size or 0 for s in info.siblings or [] if any(fnmatch.fnmatch(s.rfilename, g) for g in DOWNLOADED_FILES)
    )
    if total > max_bytes:
        raise HubError(
            f"{repo_id} holds {total / 2**20:.0f} MiB of weights, over this app's limit of {max_bytes / 2**20:.0f} MiB"
        )


def download_export(
    repo_id: str, revision: str | None = None, token: str | None = None, max_bytes: int | None = None
) -> Path:
    """config.json + safetensors of a model repo, from the Hub or (offline, or unreachable) the local cache. Neither
    the revision nor the server's answers may make huggingface_hub write outside its cache."""
    check_repo_id(repo_id, "--repo-id")
    check_revision(revision)
    _check_answers()
    if max_bytes is not None:
        _check_download_size(repo_id, revision, max_bytes, token)
    try:
        with hub_errors(f"downloading {repo_id}", repo_id, revision, token=token):
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=DOWNLOADED_FILES, token=token))
    except UnsafeAnswer as error:
        raise HubError(f"refused {repo_id}@{revision or 'main'}: {error}") from None
    except ValueError as error:  # huggingface_hub refusing an answer itself, e.g. a listed file named '../x'
        reason = _first_line(str(error).replace(str(constants.HF_HUB_CACHE), "the Hub cache"))  # nobody's business
        raise HubError(
            f"refused {repo_id}@{revision or 'main'}: huggingface_hub cannot use the server's answer ({reason})"
        ) from None
    if not (folder / ckpt.CONFIG_NAME).is_file():
        raise HubError(
            f"{repo_id}@{revision or 'main'} has no {ckpt.CONFIG_NAME}: it is not a DCGAN Studio model "
            "(publish one with `train.py --push-to-hub` or `python -m gan push`)"
        )
    return folder


def _check_shapes_before_building(folder: Path, repo_id: str) -> None:
    """Compare the safetensors headers with the networks config.json describes, built on the meta device (no memory),
    so an inconsistent or absurdly large config is refused before anything is allocated."""
    config, _ = ckpt.read_config(folder, relative=True)
    with torch.device("meta"):
        expected = {
            ckpt.GENERATOR_NAME: Generator(config).state_dict(),
            ckpt.DISCRIMINATOR_NAME: Discriminator(config).state_dict(),
        }
    for name, tensors in expected.items():
        path = folder / name
        if not path.is_file():
            continue
        with open(path, "rb") as file:  # safetensors reads headers of up to 100 MB into memory
            header = int.from_bytes(file.read(8), "little")
        if header > MAX_HEADER_BYTES:
            raise HubError(
                f"{repo_id}: {name} has a header of {header:,} bytes, over the limit of "
                f"{MAX_HEADER_BYTES:,} (DCGAN Studio writes about 1,500)"
            )
        try:
            with safe_open(path, "pt") as weights:
                shapes = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
        except Exception as error:  # noqa: BLE001 - safetensors raises several types for a bad header
            raise HubError(f"{repo_id}: {name} is not a readable safetensors file ({_first_line(error)})") from None
        if shapes != {key: tuple(t.shape) for key, t in tensors.items()}:
            raise HubError(f"{repo_id}: {name} does not match its {ckpt.CONFIG_NAME} (tensor names or shapes differ)")


def load_repo(
    repo_id: str,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    token: str | None = None,
    max_bytes: int | None = None,
) -> ckpt.LoadedModel:
    """Download (or take from the cache) and verify a model repo; `metadata["hub"]` says which commit it is."""
    return load_snapshot(download_export(repo_id, revision, token, max_bytes), repo_id, revision, device)


def load_snapshot(
    folder: Path, repo_id: str, revision: str | None = None, device: str | torch.device = "cpu"
) -> ckpt.LoadedModel:
    """Verify and build a downloaded snapshot (its folder is named after its commit); messages name its files by
    their names alone, never by their place in the Hub cache."""
    commit = folder.name
    try:
        _check_shapes_before_building(folder, repo_id)
        model = ckpt.load_model(
            folder, device, source=f"{repo_id}@{revision or 'main'} (commit {commit[:7]})", relative=True
        )
    except CheckpointError as error:
        raise HubError(f"{repo_id}@{revision or 'main'} is not a usable DCGAN Studio model: {error}") from None
    model.metadata = {**model.metadata, "hub": {"repo_id": repo_id, "revision": revision or "main", "commit": commit}}
    return model


def prune_cache(repo_ids: set[str], keep: set[str], max_bytes: int, max_revisions: int) -> list[str]:
    """Delete the cached revisions of the model repos `repo_ids` (those visitors chose) beyond the `max_revisions`
    most recently downloaded or `max_bytes` in all, never the commits in `keep` (the startup model, the one in use);
    other repos in the cache, maybe a developer's own, are left alone. Returns the deleted commits."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    revisions = sorted(
        (
            revision
            for repo in cache.repos
            if repo.repo_type == "model" and repo.repo_id in repo_ids
            for revision in repo.revisions
            if revision.commit_hash not in keep
        ),
        key=lambda revision: revision.last_modified,
        reverse=True,
    )
    total, stale = 0, []
    for index, revision in enumerate(revisions):
        total += revision.size_on_disk
        if index >= max_revisions or total > max_bytes:
            stale.append(revision.commit_hash)
    if stale:
        cache.delete_revisions(*stale).execute()
    return stale


def load_source(
    checkpoint: str | Path | None,
    repo_id: str | None = None,
    revision: str | None = None,
    device: str | torch.device = "cpu",
) -> ckpt.LoadedModel:
    """What `--checkpoint DIR` or `--repo-id USER/NAME [--revision REV]` name (give one)."""
    if checkpoint and repo_id:
        raise GanError("give --checkpoint (a local export folder) or --repo-id (a Hub model), not both")
    if repo_id:
        return load_repo(repo_id, revision, device)
    if revision:
        raise GanError("--revision applies to --repo-id only")
    return ckpt.load_model(checkpoint, device)


def load_generator(
    source: str | Path, revision: str | None = None, device: str | torch.device = "cpu", token: str | None = None
) -> Generator:
    """The sampling generator (eval mode) of an export folder or a Hub repo id, verified.

    `G = load_generator("user/name")`.
    """
    if Path(source).is_dir():
        if revision:
            raise GanError("revision applies to a Hub repo id, not to a local folder")
        return ckpt.load_model(source, device).generator
    if looks_like_repo_id(str(source)):
        return load_repo(str(source), revision, device, token).generator
    raise GanError(f"{source} is neither an export folder nor a Hub repo id (USER/NAME)")


class HubGenerator(
    Generator,
    PyTorchModelHubMixin,
    library_name="pytorch",
    pipeline_tag="unconditional-image-generation",
    tags=["gan", "dcgan", "dcgan-studio"],
):
    """The generator with `PyTorchModelHubMixin`: `HubGenerator.from_pretrained("user/name")` reads config.json
    (the ModelConfig fields; the metadata is ignored) and model.safetensors like any mixin model."""

    def __init__(self, config: ModelConfig | dict):
        super().__init__(config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config))
