"""Publish an export as a model repo: one commit holding, at the repo's root, the export's files (config.json without
the training machine's paths, model.safetensors = the sampling generator, generator_raw.safetensors when EMA is on,
discriminator.safetensors, samples.png, loss.png, weights.png, metrics.jsonl), its TensorBoard event files under
tensorboard/ (a run with --report-to tensorboard: the Hub shows them in a metrics tab) and a README.md model card. A
failed push leaves the export as it was."""

from __future__ import annotations

import argparse
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import CheckpointError, GanError, HubError
from ..run_folder import RunFolder
from .errors import check_repo_id, hub_errors, resolve_token

PUBLISHED_FILES = (ckpt.CONFIG_NAME, "*.safetensors", "*.png", "metrics.jsonl")  # an export's root files to push
TRACES = "tensorboard"  # the export's folder of TensorBoard event files, pushed to the same path


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
    model = RunFolder(path).model
    for folder in (path, model):
        if (folder / ckpt.CONFIG_NAME).is_file():
            return folder
    raise CheckpointError(
        f"{path} is neither an export folder nor a run folder: no {ckpt.CONFIG_NAME} in it or in {model}"
    )


def export_files(folder: Path) -> list[str]:
    """The export's files that get published, config.json first."""
    names = sorted(
        p.name for p in folder.iterdir() if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in PUBLISHED_FILES)
    )
    return sorted(names, key=lambda name: name != ckpt.CONFIG_NAME)


def trace_files(folder: Path) -> list[str]:
    """The export's TensorBoard event files, as paths in the repo (`tensorboard/events.out.tfevents.*`)."""
    return sorted(f"{TRACES}/{p.name}" for p in (folder / TRACES).glob("events.out.tfevents.*") if p.is_file())


def is_published(path_in_repo: str) -> bool:
    """Whether a repo file is one that pushes put there (the others, e.g. a notes.txt, are left alone)."""
    if path_in_repo.startswith(f"{TRACES}/"):
        return True
    return "/" not in path_in_repo and any(fnmatch.fnmatch(path_in_repo, g) for g in PUBLISHED_FILES)


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
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi  # the upload machinery: only here

    from .model_card import model_card

    folder = find_export(folder)
    check_repo_id(repo_id, "--hub-model-id")
    model = ckpt.load_model(folder)  # verifies config.json and every shape
    token = resolve_token(token)
    files = export_files(folder)
    card = model_card(model.metadata, repo_id, files, revision)
    pushed = [*files, *trace_files(folder)]
    operations = [
        CommitOperationAdd(
            path_in_repo=name,
            path_or_fileobj=ckpt.published_config(model.metadata) if name == ckpt.CONFIG_NAME else str(folder / name),
        )
        for name in pushed
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
        stale = [s.rfilename for s in info.siblings or [] if is_published(s.rfilename) and s.rfilename not in pushed]
        info = api.create_commit(
            repo_id,
            operations + [CommitOperationDelete(path_in_repo=name) for name in stale],
            commit_message=commit_message or commit_summary(model.metadata),
            commit_description=description,
            revision=revision,
        )
    return Published(repo_id, revision or "main", info.oid, str(repo_url), info.commit_url, folder, info.oid != head)


def add_token_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--hub-token`, for every command that writes to the Hub."""
    parser.add_argument(
        "--hub-token",
        default=None,
        metavar="TOKEN",
        help="write token (default: HF_TOKEN or the `hf auth login` token); never printed or saved",
    )


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
    add_token_argument(group)
    if not training:
        group.add_argument("--commit-message", default=None, help="default: 'Upload NAME: STEPS steps on DATASET'")


def check_push_arguments(repo_id: str | None, token: str | None, push_every: int | None = None) -> None:
    """Before training with --push-to-hub: everything a final push needs that can be checked without the network."""
    if not repo_id:
        raise HubError("--push-to-hub needs --hub-model-id USER/NAME (the model repo to create or update)")
    check_repo_id(repo_id, "--hub-model-id")
    if push_every is not None and push_every < 1:
        raise GanError("--push-every must be at least 1")
    resolve_token(token)


def _push_hint(folder: Path, repo_id: str, revision: str | None) -> str:
    return f"python -m gan push {folder} --hub-model-id {repo_id}" + (f" --hub-revision {revision}" if revision else "")


def push_trained(
    out: Path, repo_id: str, *, token: str | None = None, private: bool = False, revision: str | None = None
) -> Published:
    """The final push of train.py; a failure says where the (untouched) results are and how to push them later."""
    folder = RunFolder(out).model
    try:
        published = push_export(folder, repo_id, token=token, private=private, revision=revision)
    except GanError as error:
        raise HubError(
            f"{error} -- the run folder {out} and its export {folder} are intact; push later with: "
            f"{_push_hint(folder, repo_id, revision)}"
        ) from None
    done = "pushed" if published.changed else "nothing new to push: already on the Hub:"
    print(
        f"{done} {folder} to {published.url} ({published.revision}, commit {published.commit[:7]}); "
        f"open it with: python app.py --repo-id {published.repo_id}"
    )
    return published
