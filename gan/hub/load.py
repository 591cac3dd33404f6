"""Load a model from a Hub repo id: download config.json and the safetensors (or take them from the local cache),
check them, and build the networks. A model repo is anyone's work and HF_ENDPOINT any server's: loading bounds and
checks what they say (revisions, the server's answers, checkpoint.read_config, safetensors headers) and names files
by repo id, never by their place in the server's cache."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import torch
from huggingface_hub import constants
from safetensors import safe_open

from .. import checkpoint as ckpt
from ..errors import CheckpointError, GanError, HubError
from ..models import Discriminator, Generator
from .errors import check_repo_id, check_revision, first_line, hub_errors, looks_like_repo_id

DOWNLOADED_FILES = [ckpt.CONFIG_NAME, "*.safetensors"]  # what loading needs
REPO_ID_VARIABLE, REVISION_VARIABLE = "GAN_REPO_ID", "GAN_REVISION"  # how the app (and a Space) is pointed at a model
COMMIT = re.compile(r"[0-9a-f]{40}")
PLAIN_HASH = re.compile(r"[A-Za-z0-9][\w-]{0,127}", re.ASCII)  # what the real Hub answers as ETag: hex digests
MAX_HEADER_BYTES = 64 * 1024  # of a safetensors file: the bundled model's are 1.6 KB
REPO_API = re.compile(r"/api/models/[^/]+/[^/]+(?:/revision/[^/]+|/tree/.*)?$")  # repo info and file listings


class UnsafeAnswer(HubError):
    """The server answered a commit id or ETag that huggingface_hub would make a path outside its cache from."""


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
            "write as a path outside its cache: is HF_ENDPOINT a Hugging Face Hub?",
            web=f"the Hub answered {problem}, which would make a path outside this app's cache",
        )


def _check_answers() -> None:
    """Hook `_refuse_unsafe_answer` into huggingface_hub's shared HTTP client (made anew after a fork or a close)."""
    from huggingface_hub import get_session

    hooks = get_session().event_hooks["response"]
    if _refuse_unsafe_answer not in hooks:
        hooks.append(_refuse_unsafe_answer)


def _check_download_size(repo_id: str, revision: str | None, max_bytes: int, token: str | None) -> None:
    """Refuse a repo whose files to download exceed max_bytes (when the Hub can tell; else the download decides)."""
    from huggingface_hub import HfApi

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
    from huggingface_hub import snapshot_download  # imports the Hub API client: only when downloading

    check_repo_id(repo_id, "--repo-id")
    check_revision(revision)
    _check_answers()
    if max_bytes is not None:
        _check_download_size(repo_id, revision, max_bytes, token)
    try:
        with hub_errors(f"downloading {repo_id}", repo_id, revision, token=token):
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=DOWNLOADED_FILES, token=token))
    except UnsafeAnswer as error:
        refused = f"refused {repo_id}@{revision or 'main'}"
        raise HubError(f"{refused}: {error}", web=f"{refused}: {error.web}") from None
    except ValueError as error:  # huggingface_hub refusing an answer itself, e.g. a listed file named '../x'
        reason = first_line(str(error).replace(str(constants.HF_HUB_CACHE), "the Hub cache"))  # nobody's business
        raise HubError(
            f"refused {repo_id}@{revision or 'main'}: huggingface_hub cannot use the server's answer ({reason})"
        ) from None
    if not (folder / ckpt.CONFIG_NAME).is_file():
        missing = f"{repo_id}@{revision or 'main'} has no {ckpt.CONFIG_NAME}: it is not a DCGAN Studio model"
        raise HubError(f"{missing} (publish one with `train.py --push-to-hub` or `python -m gan push`)", web=missing)
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
            raise HubError(f"{repo_id}: {name} is not a readable safetensors file ({first_line(error)})") from None
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
