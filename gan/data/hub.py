"""A dataset repo on the Hub -> the images of one of its splits, as the uint8 tensor every dataset becomes.

`train.py --dataset hf:OWNER/NAME` lands here. The `datasets` library reads the repo (parquet files, image folders
with or without `metadata.csv`: anything it loads without a script) and caches it; it is an optional dependency
(`pip install datasets==5.2.0`, or the `hub-datasets` extra), imported only inside `load_hub_dataset`. The image
column is cast to `Image(decode=False)`, so the encoded files reach this project's own decoder (gan.images: pixel cap,
modes, 16-bit), never PIL through `datasets`; an unreadable image is skipped and counted.

Exactness: the revision (`--dataset-revision`, default main) is resolved to a commit first (through the dataset card's
download, as `datasets` does, or the repo's info where there is no card), the cache's `refs/<revision>` records it for
offline runs however it was learned, and exactly that commit's data is
loaded: from `datasets`' cache when it holds it (online or offline), else from the Hub. The run records the commit
(`dataset_commit`), so a resumed run loads the same data. Left to itself, `datasets` would fall back, offline or on
any Hub error, to whichever commit it cached last.

Configs: a repo with several configs (the YAML `configs:` of its card, as `push_to_hub(config_name=...)` writes) is
trained on the one `--dataset-config` names (default: the card's default config, or its only one); the card, cached
with the commit, lists them, so the choice is checked offline too.

`--max-images N` takes the first N images of the split that can be read, in the split's own order (no shuffle): the
same N images on every run of the same commit.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from pathlib import Path

import torch
from huggingface_hub import DatasetCard, HfApi, constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub import errors as hf_errors
from huggingface_hub.file_download import repo_folder_name
from tqdm import tqdm

from ..decoding import Budget, fit_files
from ..errors import DataError, GanError, HubError, ImageInputError
from ..hub.errors import check_repo_id, check_revision, explain, first_line
from ..images import image_to_uint8
from .dataset import ImageDataset
from .sources import HUB_PREFIX as PREFIX

REQUIREMENT = "datasets==5.2.0"
INSTALL_HINT = f"pip install {REQUIREMENT} (or pip install -e '.[hub-datasets]')"
COMMIT = re.compile(r"[0-9a-f]{40}")
CARD_NAME = "README.md"
DECODE_BATCH = 256
LOGIN = "log in with a token that can read it (`hf auth login`, or set HF_TOKEN)"


def _page(repo_id: str) -> str:
    return f"{constants.ENDPOINT}/datasets/{repo_id}"


def _missing_datasets() -> DataError:
    return DataError(f"--dataset {PREFIX}OWNER/NAME needs the `datasets` library: {INSTALL_HINT}")


def check_datasets_installed() -> None:
    """Refuse a Hub dataset before a run begins when `datasets` is not installed (without importing it)."""
    if importlib.util.find_spec("datasets") is None:
        raise _missing_datasets()


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise _missing_datasets() from None
    return datasets


def _explain(error: BaseException, repo_id: str, revision: str) -> str | None:
    """One line for a Hub failure while reading the dataset repo: the dataset's own wording where it differs from a
    model's (not found, private, gated, revision), errors.explain for the rest (network, server, token, offline)."""
    if isinstance(error, hf_errors.GatedRepoError):  # a subclass of RepositoryNotFoundError: first
        return (
            f"dataset {repo_id} is gated: accept its conditions at {_page(repo_id)} while logged in, then use that "
            "account's token (`hf auth login`, or set HF_TOKEN)"
        )
    if isinstance(error, hf_errors.RevisionNotFoundError):
        return (
            f"revision {revision!r} not found in dataset {repo_id}: check --dataset-revision "
            f"(a branch, tag or commit of {_page(repo_id)})"
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError):  # the Hub answers "private, no token" the same way
        return (
            f"dataset repo {repo_id} not found on {constants.ENDPOINT}: check --dataset {PREFIX}OWNER/NAME "
            f"(a dataset repo's id); if it is private, {LOGIN}"
        )
    return explain(error, action=f"reading dataset {repo_id}", repo_id=repo_id, revision=revision)


def _hub_failure(error: BaseException, repo_id: str, revision: str) -> GanError:
    message = _explain(error, repo_id, revision)
    if message is None:
        raise error
    return HubError(message)


def _not_cached(repo_id: str, revision: str, config: str | None = None) -> DataError:
    what = f"dataset {repo_id}@{revision}" + (f" (config {config!r})" if config is not None else "")
    return DataError(
        f"{what} is not in the local cache and HF_HUB_OFFLINE=1 is set: "
        "train on it once online (without HF_HUB_OFFLINE) to cache it"
    )


def _ref(repo_id: str, revision: str) -> Path:
    """The Hub cache's record of the commit a branch or tag of the dataset repo was last seen at (huggingface_hub's
    layout: `refs/<revision>` holding the commit id)."""
    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="dataset") / "refs" / revision


def _remember(repo_id: str, revision: str, commit: str) -> None:
    """Record `revision` -> `commit` in the Hub cache, as huggingface_hub does for the files it downloads: a repo
    without a card has no download that would (the data files are fetched by commit), and a missing card's answer
    records it only when it carries the commit header. Written whole (a temporary, then a rename); a read-only cache
    is left alone (offline runs then need the commit by hash)."""
    ref = _ref(repo_id, revision)
    try:
        if revision == commit or (ref.is_file() and ref.read_text().strip() == commit):
            return
        ref.parent.mkdir(parents=True, exist_ok=True)
        temporary = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")
        temporary.write_text(commit)
        os.replace(temporary, ref)
    except OSError:
        pass


def resolve_commit(repo_id: str, revision: str, offline: bool) -> str:
    """The commit `revision` names. Online: the one the dataset card downloads from, or the repo's info without a
    card; recorded in the Hub cache either way. Offline: `revision` itself when it is a commit, else the commit the
    Hub cache last saw it at."""
    if offline:
        if COMMIT.fullmatch(revision):
            return revision
        ref = _ref(repo_id, revision)
        try:
            commit = ref.read_text().strip()
        except OSError:
            raise _not_cached(repo_id, revision) from None
        if not COMMIT.fullmatch(commit):
            raise _not_cached(repo_id, revision)
        return commit
    try:
        card = hf_hub_download(repo_id, CARD_NAME, repo_type="dataset", revision=revision)
        commit = Path(card).parent.name  # snapshots/<commit>/README.md
    except hf_errors.EntryNotFoundError:  # no card
        commit = None
    except Exception as error:
        raise _hub_failure(error, repo_id, revision) from None
    if commit is None:
        try:
            commit = HfApi().dataset_info(repo_id, revision=revision).sha
        except Exception as error:
            raise _hub_failure(error, repo_id, revision) from None
    if not isinstance(commit, str) or not COMMIT.fullmatch(commit):  # a mirror's answer: never a path in the cache
        raise HubError(f"the Hub's answer for dataset {repo_id}@{revision} names no commit: check HF_ENDPOINT")
    _remember(repo_id, revision, commit)
    return commit


def _card_data(repo_id: str, commit: str):
    """The metadata of the dataset card at `commit` (from the cache: resolving the commit downloaded it), or None where
    there is no card, it has no metadata, or it cannot be read."""
    path = try_to_load_from_cache(repo_id, CARD_NAME, revision=commit, repo_type="dataset")
    try:
        if not isinstance(path, str) or not Path(path).read_text(encoding="utf-8").startswith("---"):
            return None  # no card, or one without metadata
        return DatasetCard.load(path).data
    except Exception:  # an unreadable card, or broken YAML
        return None


def card_license(repo_id: str, commit: str) -> str | None:
    """The `license:` of the dataset card at `commit`, or None where there is no card or it states none. A list of
    licences is joined with ' AND '."""
    data = _card_data(repo_id, commit)
    license = data.license if data is not None else None
    if isinstance(license, list):
        license = " AND ".join(str(item) for item in license if item)
    return str(license) if license else None


def card_configs(repo_id: str, commit: str) -> tuple[list[str], str | None]:
    """The configs the dataset card at `commit` names (its YAML `configs:`; none without one) and the default one as
    `datasets` picks it: the only config, the one named `default`, or the one marked `default: true`."""
    data = _card_data(repo_id, commit)
    entries = data.get("configs") if data is not None else None
    if not isinstance(entries, list):
        return [], None
    named = {
        str(entry["config_name"]): entry for entry in entries if isinstance(entry, dict) and entry.get("config_name")
    }
    defaults = [name for name, entry in named.items() if len(named) == 1 or name == "default" or entry.get("default")]
    return list(named), defaults[0] if len(defaults) == 1 else None


def _config_error(repo_id: str, config: str | None, names: list[str]) -> DataError:
    """No --dataset-config for a dataset of several configs, or one it lacks: refused, listing its configs."""
    listing = ", ".join(names)
    if config is None:
        return DataError(f"dataset {repo_id} has several configs ({listing}): choose one with --dataset-config")
    return DataError(
        f"dataset {repo_id} has no config {config!r}: choose one with --dataset-config (its configs: {listing})"
    )


def choose_config(repo_id: str, commit: str, config: str | None) -> str | None:
    """The config to load: `config` (--dataset-config), checked against the card's configs, else the card's default
    (None where the card names no configs: `datasets` then takes the dataset's only one)."""
    names, default = card_configs(repo_id, commit)
    if config is None:
        if len(names) > 1 and default is None:
            raise _config_error(repo_id, None, names)
        return default
    if names and config not in names:
        raise _config_error(repo_id, config, names)
    return config


def _datasets_config_error(error: ValueError, repo_id: str, config: str | None) -> DataError | None:
    """`datasets`' own refusal of a missing or unknown config (where the card did not tell), as _config_error's line;
    None for another ValueError. datasets 5.2.0 names the configs as a Python list in its message."""
    text = str(error)
    missing = text.startswith("Config name is missing")
    if not missing and not (text.startswith("BuilderConfig ") and " not found. Available: " in text):
        return None
    listed = re.search(r"\[[^\]]*\]", text)
    try:
        names = [str(name) for name in ast.literal_eval(listed.group(0))] if listed else []
    except (ValueError, SyntaxError):
        names = []
    return _config_error(repo_id, None if missing else config, names or ["?"])


def _cached(repo_id: str, commit: str, config: str | None):
    """`datasets`' cached copy of `commit` (of `config`, else of the only config cached for it), or None."""
    from datasets.packaged_modules.cache.cache import Cache

    name = repo_id.split("/")[1]
    cached = Cache(repo_id=repo_id, dataset_name=name, config_name=config, version="0.0.0", hash=commit)
    if Path(cached.cache_dir).is_dir():
        return cached
    if config is not None:
        return None
    # <cache>/<owner>___<name>/<config>/0.0.0/<commit>: a repo whose YAML names its one config otherwise
    configs = [path.parts[-3] for path in Path(cached.cache_dir).parents[2].glob(f"*/0.0.0/{commit}") if path.is_dir()]
    if len(configs) == 1:
        return Cache(repo_id=repo_id, dataset_name=name, config_name=configs[0], hash=commit)
    return None


def _builder(datasets, repo_id: str, commit: str, offline: bool, config: str | None = None):
    """A prepared `datasets` builder for exactly `commit` (and `config`, None: the dataset's default or only one): its
    cached copy where there is one, else (online) built from the Hub."""
    from datasets.data_files import EmptyDatasetError
    from datasets.exceptions import DataFilesNotFoundError, DatasetGenerationError, DatasetsError

    cached = _cached(repo_id, commit, config)
    if cached is not None:
        return cached
    if offline:
        raise _not_cached(repo_id, commit, config)
    where = f"{repo_id}@{commit[:12]}"
    try:
        builder = datasets.load_dataset_builder(repo_id, name=config, revision=commit)
        if builder.hash != commit:  # datasets fell back to another cached commit: the Hub did not answer
            raise DataError(
                f"could not load dataset {where} from the Hub (datasets offered commit {str(builder.hash)[:12]} "
                "from its cache instead): check your network and try again"
            )
        # no_checks: a card's `dataset_info` sizes that lag behind its data files (common) do not stop training
        builder.download_and_prepare(verification_mode="no_checks")
    except GanError:
        raise
    except (DataFilesNotFoundError, EmptyDatasetError):
        raise DataError(
            f"dataset {where} holds no data files the datasets library reads (parquet, image folders, csv, json...): "
            "is it an image dataset?"
        ) from None
    except DatasetGenerationError as error:
        cause = error.__cause__ or error
        raise DataError(
            f"could not read the data files of dataset {where} ({first_line(cause, type(cause).__name__)})"
        ) from None
    except Exception as error:
        message = _explain(error, repo_id, commit)
        # a missing or unknown config, where the card did not tell
        if message is None and isinstance(error, ValueError):
            refusal = _datasets_config_error(error, repo_id, config)
            if refusal is not None:
                raise refusal from None
        if message is None and isinstance(error, DatasetsError | ValueError | RuntimeError | FileNotFoundError):
            message = f"the datasets library could not load dataset {where} ({first_line(error, type(error).__name__)})"
        if message is None:
            raise
        raise HubError(message) from None
    return builder


def _split(builder, repo_id: str, split: str):
    """The split `split` of a prepared builder, refused in one line when it is missing or empty."""
    splits = builder.info.splits or {}
    listing = ", ".join(f"{name} ({info.num_examples} rows)" for name, info in splits.items()) or "none"
    if split not in splits:
        raise DataError(
            f"dataset {repo_id} has no split {split!r}: choose one with --data-split (its splits: {listing})"
        )
    if not splits[split].num_examples:
        raise DataError(
            f"split {split!r} of dataset {repo_id} is empty: choose another with --data-split (its splits: {listing})"
        )
    return builder.as_dataset(split=split)


def image_column(datasets, features, repo_id: str, split: str, wanted: str | None) -> str:
    """The column to train on: `wanted` (--image-column), else the first Image column."""
    images = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    described = ", ".join(f"{name} ({_kind(feature)})" for name, feature in features.items())
    choice = f"its image column(s): {', '.join(images)}" if images else "it has no image column"
    if wanted is None:
        if not images:
            raise DataError(
                f"dataset {repo_id} (split {split!r}) has no image column (its columns: {described}): "
                "train on an image dataset"
            )
        return images[0]
    if wanted not in features:
        raise DataError(f"--image-column {wanted} is not a column of dataset {repo_id} (split {split!r}); {choice}")
    if wanted not in images:
        raise DataError(
            f"--image-column {wanted} of dataset {repo_id} is not an image column (it holds "
            f"{_kind(features[wanted])}); {choice}"
        )
    return wanted


def _kind(feature) -> str:
    """A column's type in a few words: 'image', 'string', 'int64', 'ClassLabel'..."""
    dtype = getattr(feature, "dtype", None)
    if type(feature).__name__ == "Image":
        return "image"
    return dtype if isinstance(dtype, str) and dtype != "dict" else type(feature).__name__


def _allowed_roots(datasets, repo_id: str) -> list[Path]:
    """Where an image given by path (not bytes) may be read from: the repo's files in the Hub cache and the archives
    `datasets` extracted. A data file naming any other path (/etc/..., ~/photos/...) is not read."""
    hub = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="dataset")
    return [hub.resolve(), (Path(datasets.config.HF_DATASETS_CACHE) / "downloads").resolve()]


def _cell_source(cell, row: int, roots: list[Path]) -> tuple[str, bytes | Path]:
    """One `Image(decode=False)` cell ({"bytes", "path"}) -> its name and its encoded bytes, or its file (one of the
    dataset's own)."""
    if not isinstance(cell, dict):
        raise ImageInputError(f"row {row}: no image in this row")
    path = cell.get("path")
    name = f"row {row}" + (f" ({Path(path).name})" if isinstance(path, str) and path else "")
    if cell.get("bytes") is not None:
        return name, cell["bytes"]
    if not isinstance(path, str) or not path:
        raise ImageInputError(f"{name}: no image data in this row")
    file = Path(path).resolve()
    if not any(file.is_relative_to(root) for root in roots):
        raise ImageInputError(f"{name}: the image is a path outside the dataset's files, not read")
    return name, file


def decode_images(
    datasets, rows, column: str, repo_id: str, image_size: int, channels: int, max_images: int | None
) -> tuple[torch.Tensor, list[str]]:
    """The first `max_images` (else all) readable images of `rows`' `column`, in order, as uint8 (N, C, S, S), and a
    message per unreadable one. Each image is decoded within gan.decoding's time limit: a dataset is someone else's
    files."""
    cells = rows.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    wanted = len(cells) if max_images is None else min(max_images, len(cells))
    roots = _allowed_roots(datasets, repo_id)
    images: list[torch.Tensor] = []
    skipped: list[str] = []

    def sources():
        for start in range(0, len(cells), DECODE_BATCH):
            for offset, cell in enumerate(cells[start : start + DECODE_BATCH][column]):
                try:
                    yield _cell_source(cell, start + offset, roots)
                except ImageInputError as error:
                    skipped.append(str(error))

    with tqdm(total=wanted, desc="decoding images", unit="img", leave=False, disable=wanted < 500) as bar:
        for fitted in fit_files(sources(), image_size, channels, Budget(None, None), upload=False):
            if fitted.error:
                skipped.append(fitted.error)
                continue
            images.append(image_to_uint8(fitted.image))
            bar.update()
            if len(images) == wanted:
                return torch.stack(images), skipped
    if not images:
        raise DataError(
            f"none of the {len(cells)} images of dataset {repo_id} (column {column!r}) could be read, e.g. {skipped[0]}"
        )
    return torch.stack(images), skipped


def load_hub_dataset(
    repo_id: str,
    revision: str | None = None,
    split: str = "train",
    column: str | None = None,
    max_images: int | None = None,
    image_size: int = 32,
    channels: int = 3,
    config: str | None = None,
) -> ImageDataset:
    """A dataset repo's split as an ImageDataset (revision: a branch, tag or commit; default main; config: one of its
    configs, default its default or only one)."""
    check_repo_id(repo_id, f"--dataset {PREFIX}")  # train.py checked both already: here for other callers
    revision = check_revision(revision) or "main"  # never `..`: it names a file under the cache's refs/
    datasets = _import_datasets()
    offline = bool(constants.HF_HUB_OFFLINE or datasets.config.HF_HUB_OFFLINE)
    commit = resolve_commit(repo_id, revision, offline)
    license = card_license(repo_id, commit)
    builder = _builder(datasets, repo_id, commit, offline, choose_config(repo_id, commit, config))
    config = builder.config.name
    rows = _split(builder, repo_id, split)
    column = image_column(datasets, rows.features, repo_id, split, column)
    images, skipped = decode_images(datasets, rows, column, repo_id, image_size, channels, max_images)
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image(s) of dataset {repo_id}, e.g. {skipped[0]}")
    named = f", config {config!r}" if config != "default" else ""  # a dataset of one unnamed config: not named
    where = f"commit {commit[:12]}{named}, split {split!r}, column {column!r}"
    return ImageDataset(
        images,
        f"{PREFIX}{repo_id}",
        f"{_page(repo_id)} at {where}",
        credit=f"{repo_id} on the Hugging Face Hub ({where})",
        license=license,
        hub={"repo_id": repo_id, "revision": commit, "config": config, "split": split, "image_column": column},
    )
