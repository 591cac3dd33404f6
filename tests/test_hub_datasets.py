"""Training on image datasets from the Hub (`train.py --dataset hf:OWNER/NAME`), with the real `datasets` and
`huggingface_hub` clients, over HTTP, against FakeHub.

Clients run in subprocesses whose environment comes from `hub_env` (HF_ENDPOINT, HF_HUB_OFFLINE... are read at
import). Each script runs several commands in one interpreter, to pay the imports of torch and datasets once; the
fixtures run in order: online (publish, train, errors), then a new commit and a resume, then offline from the cache.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from helpers import ROOT, TINY_MODEL_ARGS, run_script
from hub_server import FakeHub, hub_env
from huggingface_hub import ModelCard
from PIL import Image

from gan.hub.model_card import model_card
from gan.images import decode_image, fit_image, image_to_uint8

pytestmark = pytest.mark.hub

TOKEN = "hf_alice"
PIXELS, FOLDER = "alice/pixels", "alice/folder"
BARE = "alice/bare"  # no card, behind a mirror whose 404s name no commit: nothing but this project records main's
PIXELS_COUNT, CORRUPT_ROW = 24, 2  # one row of the parquet dataset holds bytes that are no image
FOLDER_COUNT = 12
CONFIGS = "alice/configs"  # two configs, as push_to_hub(config_name=...) writes them: a (5 images), b (7 images)
CONFIG_COUNTS, CONFIG_SEEDS = {"a": 5, "b": 7}, {"a": 300, "b": 400}
RUN_ARGS = ["--steps", "2", "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "1", *TINY_MODEL_ARGS]


def png(seed: int, size: int = 20, mode: str = "RGB") -> bytes:
    """A small PNG of seeded noise (each seed its own image)."""
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


def parquet(columns: dict, image_columns: tuple[str, ...] = ("image",), rows: int | None = None) -> bytes:
    """A parquet file as `datasets` writes it (its features in the schema metadata), of the first `rows` rows."""
    table = datasets.Dataset.from_dict(columns)
    for name in image_columns:
        table = table.cast_column(name, datasets.Image())
    if rows is not None:
        table = table.select(range(rows))
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return buffer.getvalue()


def pixels_parquet(count: int, offset: int = 0) -> bytes:
    cells = [{"bytes": png(offset + i), "path": f"{offset + i}.png"} for i in range(count)]
    if offset == 0:
        cells[CORRUPT_ROW] = {"bytes": b"\x89PNG\r\n\x1a\n but not really", "path": "broken.png"}
    return parquet({"image": cells, "label": [i % 3 for i in range(count)]})


def expected_images(seeds: list[int], size: int = 32) -> torch.Tensor:
    """What the project's decoder makes of the images of `seeds` (the pipeline of folders and uploads)."""
    return torch.stack([image_to_uint8(fit_image(decode_image(png(s), "x")[0], size, 3)) for s in seeds])


def error_line(result: dict) -> str:
    """The one `error:` line of a refused command (progress bars may precede it on stderr)."""
    assert result["code"] == 2, result
    lines = [line for line in result["stderr"].replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result["stderr"]
    assert TOKEN not in errors[0]
    return errors[0]


def config_of(run: Path) -> dict:
    return json.loads((run / "model" / "config.json").read_text())


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    local = tmp_path_factory.mktemp("not-the-dataset") / "private.png"
    local.write_bytes(png(9))
    with FakeHub(tokens={TOKEN: "alice", "hf_bob": "bob", "hf_carol": "carol"}) as hub:
        hub.create_repo(FOLDER, "dataset")
        folder = {f"train/{'ab'[i % 2]}/{i:02d}.png": png(100 + i, mode="L" if i % 3 else "RGB") for i in range(12)}
        folder["train/metadata.csv"] = (
            "file_name,caption\n" + "".join(f"{'ab'[i % 2]}/{i:02d}.png,image {i}\n" for i in range(12))
        ).encode()
        hub.upload(FOLDER, folder, "Add an image folder", repo_type="dataset")  # no README: no card, no licence
        hub.create_repo("alice/splits", "dataset")
        two = {"image": [{"bytes": png(7), "path": None}] * 2, "label": [0, 1]}
        splits = {"data/train.parquet": parquet(two), "data/validation.parquet": parquet(two, rows=0)}
        hub.upload("alice/splits", splits, "Two splits, one empty", repo_type="dataset")
        hub.create_repo("alice/text", "dataset")
        text = parquet({"text": ["a", "b"], "label": [0, 1]}, image_columns=())
        hub.upload("alice/text", {"data/train.parquet": text}, "Text only", repo_type="dataset")
        hub.create_repo("alice/paths", "dataset")  # a cell naming a file of the machine that loads it
        paths = parquet({"image": [{"bytes": png(8), "path": None}, {"bytes": None, "path": str(local)}]})
        hub.upload("alice/paths", {"data/train.parquet": paths}, "Paths", repo_type="dataset")
        for repo in (BARE, "alice/nosha"):
            hub.create_repo(repo, "dataset")
            hub.upload(repo, {"data/train.parquet": parquet(two)}, "Data", repo_type="dataset")
        hub.misbehave(BARE, repo_type="dataset", missing_commit=False)
        hub.misbehave("alice/nosha", repo_type="dataset", sha="../../x")
        hub.create_repo("alice/unseen", "dataset")  # never loaded: not in any cache
        hub.upload("alice/unseen", {"data/train.parquet": parquet(two)}, "Data", repo_type="dataset")
        for repo in ("carol/gated", "carol/private"):
            hub.create_repo(repo, "dataset", private=repo.endswith("private"))
            hub.upload(repo, {"data/train.parquet": pixels_parquet(4, offset=50)}, "Data", repo_type="dataset")
        hub.gate("carol/gated", granted=["bob"])
        yield hub


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-home")


@pytest.fixture(scope="module")
def online(hub, home, tmp_path_factory):
    """Publish the parquet dataset with `push_to_hub` and give its card a licence, train on both datasets, take the
    first 4 images, and make each refusal; the token is alice's (then none)."""
    out = tmp_path_factory.mktemp("hub-data-runs")
    (out / "pixels.parquet").write_bytes(pixels_parquet(PIXELS_COUNT))
    env = hub_env(hub, home, token=TOKEN, DCGAN_CACHE=str(out / "dcgan-cache"))
    result = run_script(
        env,
        """
        from gan.training import main as train
        from gan.data import load_dataset
        import datasets, torch
        from huggingface_hub import DatasetCard
        datasets.Dataset.from_parquet(f"{out}/pixels.parquet").push_to_hub(pixels)
        card = DatasetCard.load(pixels, repo_type="dataset")
        card.data.license = "cc-by-4.0"
        card.push_to_hub(pixels, repo_type="dataset")

        result["pixels"] = call(train, ["--dataset", f"hf:{pixels}", "--out", f"{out}/pixels", *args])
        result["folder"] = call(train, ["--dataset", f"hf:{folder}", "--out", f"{out}/folder", *args])
        result["bare"] = call(train, ["--dataset", f"hf:{bare}", "--out", f"{out}/bare", *args])
        first = load_dataset(f"hf:{pixels}", image_size=32, max_images=4)
        torch.save(first.images, f"{out}/first4.pt")
        result["first_source"] = first.source
        result["paths"] = call(lambda args: len(load_dataset(*args)), ["hf:alice/paths"])

        def refused(*flags):
            return call(train, [*flags, "--out", f"{out}/refused", *args])

        result["errors"] = {
            "not found": refused("--dataset", "hf:alice/missing"),
            "private, another user": refused("--dataset", "hf:carol/private"),
            "gated, no access": refused("--dataset", "hf:carol/gated"),
            "revision": refused("--dataset", f"hf:{pixels}", "--dataset-revision", "v9"),
            "no image column": refused("--dataset", "hf:alice/text"),
            "not an image column": refused("--dataset", f"hf:{pixels}", "--image-column", "label"),
            "no such column": refused("--dataset", f"hf:{pixels}", "--image-column", "picture"),
            "no such split": refused("--dataset", "hf:alice/splits", "--data-split", "test"),
            "empty split": refused("--dataset", "hf:alice/splits", "--data-split", "validation"),
            "bad repo id": refused("--dataset", "hf:pixels"),
            "hub flag on mnist": refused("--dataset", "mnist", "--max-images", "3"),
            "data dir": refused("--dataset", f"hf:{pixels}", "--data-dir", out),
            "no commit": refused("--dataset", "hf:alice/nosha"),
        }
        os.environ.pop("HF_TOKEN")
        result["errors"]["private, anonymous"] = refused("--dataset", "hf:carol/private")
        result["errors"]["gated, anonymous"] = refused("--dataset", "hf:carol/gated")
        sys.modules["datasets"] = None  # as if it were not installed
        result["errors"]["datasets missing"] = refused("--dataset", f"hf:{pixels}")
        """,
        out=str(out),
        pixels=PIXELS,
        folder=FOLDER,
        bare=BARE,
        args=RUN_ARGS,
    )
    return out, result


@pytest.fixture(scope="module")
def moved(hub, home, online):
    """A new commit on the parquet dataset's main; the first run resumed (on its commit), and a new run (on main's)."""
    out, _ = online
    first = hub.commits(PIXELS, repo_type="dataset")[0]["id"]
    hub.upload(
        PIXELS, {"data/train-00000-of-00001.parquet": pixels_parquet(30, offset=200)}, "More", repo_type="dataset"
    )
    second = hub.commits(PIXELS, repo_type="dataset")[0]["id"]
    env = hub_env(hub, home, token=TOKEN, DCGAN_CACHE=str(out / "dcgan-cache"))
    args = [arg if arg != "2" else "4" for arg in RUN_ARGS]  # --steps 4
    result = run_script(
        env,
        """
        from gan.training import main as train
        from gan.data import load_dataset
        resume = ["--resume", "auto"]
        result["resumed"] = call(train, ["--dataset", f"hf:{pixels}", "--out", f"{out}/pixels", *resume, *args])
        result["new"] = call(train, ["--dataset", f"hf:{pixels}", "--out", f"{out}/pixels-main", *args])
        """,
        out=str(out),
        pixels=PIXELS,
        args=args,
    )
    return first, second, result


@pytest.fixture(scope="module")
def offline(hub, home, online, moved, tmp_path_factory):
    """HF_HUB_OFFLINE=1: train on both datasets from the cache (main, and the first commit by hash)."""
    out, _ = online
    first, _, _ = moved
    runs = tmp_path_factory.mktemp("offline-runs")
    requests = len(hub.requests)
    env = hub_env(hub, home, token=TOKEN, HF_HUB_OFFLINE="1", DCGAN_CACHE=str(out / "dcgan-cache"))
    result = run_script(
        env,
        """
        from gan.training import main as train
        from gan.data import load_dataset
        result["pixels"] = call(train, ["--dataset", f"hf:{pixels}", "--out", f"{runs}/pixels", *args])
        result["first"] = call(
            train, ["--dataset", f"hf:{pixels}", "--dataset-revision", first, "--out", f"{runs}/first", *args]
        )
        result["folder"] = call(train, ["--dataset", f"hf:{folder}", "--out", f"{runs}/folder", *args])
        result["bare"] = call(train, ["--dataset", f"hf:{bare}", "--out", f"{runs}/bare", *args])
        result["not cached"] = call(train, ["--dataset", "hf:alice/unseen", "--out", f"{runs}/unseen", *args])
        """,
        runs=str(runs),
        pixels=PIXELS,
        folder=FOLDER,
        bare=BARE,
        first=first,
        args=RUN_ARGS,
    )
    return runs, result, hub.requests[requests:]


@pytest.fixture(scope="module")
def configs(hub, tmp_path_factory):
    """A dataset of two configs, published with `push_to_hub(config_name=...)`: train on b, refuse no config and an
    unknown one, then (HF_HUB_OFFLINE=1, a new interpreter) train on b from the cache and refuse no config there too.
    Its own HF_HOME: the offline runs see only what these online ones cached."""
    out, home = tmp_path_factory.mktemp("config-runs"), tmp_path_factory.mktemp("hf-home-configs")
    for name, count in CONFIG_COUNTS.items():
        cells = [{"bytes": png(CONFIG_SEEDS[name] + i), "path": None} for i in range(count)]
        (out / f"{name}.parquet").write_bytes(parquet({"image": cells}))
    env = hub_env(hub, home, token=TOKEN, DCGAN_CACHE=str(out / "dcgan-cache"))
    result = run_script(
        env,
        """
        from gan.training import main as train
        import datasets
        for name in ("a", "b"):
            datasets.Dataset.from_parquet(f"{out}/{name}.parquet").push_to_hub(repo, config_name=name)
        dataset, refused = ["--dataset", f"hf:{repo}"], ["--out", f"{out}/refused", *args]
        result["b"] = call(train, [*dataset, "--dataset-config", "b", "--out", f"{out}/b", *args])
        result["no config"] = call(train, [*dataset, *refused])
        result["unknown config"] = call(train, [*dataset, "--dataset-config", "c", *refused])
        result["config on mnist"] = call(train, ["--dataset", "mnist", "--dataset-config", "b", *refused])
        resume = ["--out", f"{out}/b", "--resume", "auto", *more]
        result["resume on a"] = call(train, [*dataset, "--dataset-config", "a", *resume])
        result["resumed"] = call(train, [*dataset, *resume])  # the run's config, b, without the flag
        """,
        out=str(out),
        repo=CONFIGS,
        args=RUN_ARGS,
        more=[arg if arg != "2" else "4" for arg in RUN_ARGS],  # --steps 4
    )
    requests = len(hub.requests)
    offline = run_script(
        {**env, "HF_HUB_OFFLINE": "1"},
        """
        from gan.training import main as train
        from gan.data import load_dataset
        import torch
        dataset = ["--dataset", f"hf:{repo}"]
        result["b"] = call(train, [*dataset, "--dataset-config", "b", "--out", f"{out}/offline-b", *args])
        result["no config"] = call(train, [*dataset, "--out", f"{out}/refused", *args])
        first = load_dataset(f"hf:{repo}", image_size=32, max_images=2, config="b")
        torch.save(first.images, f"{out}/b-first2.pt")
        """,
        out=str(out),
        repo=CONFIGS,
        args=RUN_ARGS,
    )
    return out, result, offline, hub.requests[requests:]


def test_trains_on_a_parquet_dataset_published_with_push_to_hub(hub, online):
    out, result = online
    assert result["pixels"]["code"] == 0, result["pixels"]["stderr"]
    commit = hub.commits(PIXELS, repo_type="dataset")[0]["id"]  # the card's commit, main before `moved`
    config = config_of(out / "pixels")
    assert config["dataset"] == f"hf:{PIXELS}" and config["name"] == "dcgan-hf-alice-pixels"
    assert config["dataset_repo_id"] == PIXELS and config["dataset_revision"] == commit
    assert config["dataset_split"] == "train" and config["dataset_image_column"] == "image"
    assert config["dataset_license"] == "cc-by-4.0"
    assert PIXELS in config["dataset_credit"] and commit[:12] in config["dataset_credit"]
    assert config["training"]["args"]["dataset_commit"] == commit
    assert config["training"]["train_images"] == PIXELS_COUNT - 1
    assert config["nc"] == 3
    # the unreadable image is skipped, counted and named
    assert (
        "warning: skipped 1 unreadable image(s) of dataset alice/pixels, e.g. row 2 (broken.png)"
        in (result["pixels"]["stdout"])
    )
    assert f"on hf:{PIXELS} ({PIXELS_COUNT - 1} images from" in result["pixels"]["stdout"]


def test_trains_on_an_image_folder_dataset(online):
    out, result = online
    assert result["folder"]["code"] == 0, result["folder"]["stderr"]
    assert "skipped" not in result["folder"]["stdout"]
    config = config_of(out / "folder")
    assert config["dataset_repo_id"] == FOLDER and config["training"]["train_images"] == FOLDER_COUNT
    assert config["dataset_license"] == "not stated in the dataset card of alice/folder: check the dataset's terms"


def test_max_images_takes_the_first_readable_images_in_order(online):
    out, result = online
    images = torch.load(out / "first4.pt")
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    assert torch.equal(images, expected_images([0, 1, 3, 4]))  # row 2 is unreadable: the 4th readable is row 4
    assert "split 'train', column 'image'" in result["first_source"]


def test_an_image_given_by_a_path_outside_the_dataset_is_not_read(online):
    _, result = online
    assert result["paths"]["code"] == 1  # of the 2 rows, only the one holding its bytes
    assert result["paths"]["stdout"] == (
        "warning: skipped 1 unreadable image(s) of dataset alice/paths, e.g. row 1 (private.png): the image is a path "
        "outside the dataset's files, not read\n"
    )


def test_export_config_and_model_card_name_the_dataset_and_its_licence(online):
    out, _ = online
    config = config_of(out / "pixels")
    card = model_card(config, "alice/dcgan-pixels", ["config.json", "model.safetensors"])
    parsed = ModelCard(str(card))
    assert parsed.data.datasets == [PIXELS]
    assert parsed.data.license == "cc-by-4.0"
    assert f"hf:{PIXELS}" not in parsed.data.tags
    assert f"{PIXELS} on the Hugging Face Hub (commit {config['dataset_revision'][:12]}" in parsed.text
    assert "Licence: cc-by-4.0." in parsed.text
    folder_card = ModelCard(str(model_card(config_of(out / "folder"), "alice/dcgan-folder", ["config.json"])))
    assert folder_card.data.datasets == [FOLDER] and folder_card.data.license == "other"


ERRORS = {
    "not found": "dataset repo alice/missing not found on {endpoint}: check --dataset hf:OWNER/NAME (a dataset "
    "repo's id); if it is private, log in with a token that can read it (`hf auth login`, or set HF_TOKEN)",
    "private, another user": "dataset repo carol/private not found on {endpoint}: check --dataset hf:OWNER/NAME "
    "(a dataset repo's id); if it is private, log in with a token that can read it (`hf auth login`, or set HF_TOKEN)",
    "private, anonymous": "dataset repo carol/private not found on {endpoint}: check --dataset hf:OWNER/NAME "
    "(a dataset repo's id); if it is private, log in with a token that can read it (`hf auth login`, or set HF_TOKEN)",
    "gated, no access": "dataset carol/gated is gated: accept its conditions at {endpoint}/datasets/carol/gated while "
    "logged in, then use that account's token (`hf auth login`, or set HF_TOKEN)",
    "gated, anonymous": "dataset carol/gated is gated: accept its conditions at {endpoint}/datasets/carol/gated while "
    "logged in, then use that account's token (`hf auth login`, or set HF_TOKEN)",
    "revision": "revision 'v9' not found in dataset alice/pixels: check --dataset-revision (a branch, tag or commit "
    "of {endpoint}/datasets/alice/pixels)",
    "no image column": "dataset alice/text (split 'train') has no image column (its columns: text (string), "
    "label (int64)): train on an image dataset",
    "not an image column": "--image-column label of dataset alice/pixels is not an image column (it holds int64); "
    "its image column(s): image",
    "no such column": "--image-column picture is not a column of dataset alice/pixels (split 'train'); its image "
    "column(s): image",
    "no such split": "dataset alice/splits has no split 'test': choose one with --data-split (its splits: "
    "train (2 rows), validation (0 rows))",
    "empty split": "split 'validation' of dataset alice/splits is empty: choose another with --data-split (its "
    "splits: train (2 rows), validation (0 rows))",
    "bad repo id": "--dataset hf:pixels does not name a dataset repo: use hf:OWNER/NAME (letters, digits, '-', '_' "
    "and '.'), e.g. --dataset hf:huggan/smithsonian_butterflies_subset",
    "hub flag on mnist": "--max-images is for --dataset hf:OWNER/NAME (a Hub dataset) only",
    "data dir": "--data-dir does not apply to --dataset hf:alice/pixels: a Hub dataset is read into the Hugging Face "
    "cache (HF_HOME); set HF_HUB_OFFLINE=1 to train from that cache alone",
    "no commit": "the Hub's answer for dataset alice/nosha@main names no commit: check HF_ENDPOINT",
    "datasets missing": "--dataset hf:OWNER/NAME needs the `datasets` library: pip install datasets==5.2.0 "
    "(or pip install -e '.[hub-datasets]')",
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_each_refusal_is_one_line_saying_what_to_do(hub, online, case):
    _, result = online
    assert error_line(result["errors"][case]) == "error: " + ERRORS[case].format(endpoint=hub.url)


def test_a_resumed_run_loads_the_commit_it_began_on(hub, online, moved):
    out, _ = online
    first, second, result = moved
    assert first != second
    assert result["resumed"]["code"] == 0, result["resumed"]["stderr"]
    assert "resuming from" in result["resumed"]["stdout"]
    resumed = config_of(out / "pixels")
    assert resumed["training"]["steps"] == 4
    assert resumed["dataset_revision"] == first and resumed["training"]["train_images"] == PIXELS_COUNT - 1
    assert result["new"]["code"] == 0, result["new"]["stderr"]
    new = config_of(out / "pixels-main")
    assert new["dataset_revision"] == second and new["training"]["train_images"] == 30


def test_trains_offline_from_the_cache(online, moved, offline):
    first, second, _ = moved
    runs, result, requests = offline
    assert requests == []  # not one request reached the Hub
    for name in ("pixels", "first", "folder"):
        assert result[name]["code"] == 0, result[name]["stderr"]
    assert config_of(runs / "pixels")["dataset_revision"] == second  # main, as last seen online
    assert config_of(runs / "pixels")["training"]["train_images"] == 30
    assert config_of(runs / "first")["dataset_revision"] == first  # by commit: that commit's data, not the newest
    assert config_of(runs / "first")["training"]["train_images"] == PIXELS_COUNT - 1
    assert config_of(runs / "first")["dataset_license"] == "cc-by-4.0"  # the card, from the cache
    assert config_of(runs / "folder")["training"]["train_images"] == FOLDER_COUNT
    assert error_line(result["not cached"]) == (
        "error: dataset alice/unseen@main is not in the local cache and HF_HUB_OFFLINE=1 is set: train on it once "
        "online (without HF_HUB_OFFLINE) to cache it"
    )


def test_a_dataset_without_a_card_trains_offline_at_the_commit_learned_online(hub, online, offline):
    """No README.md, and a 404 for it that names no commit: the repo's info told the commit online; offline, the
    cache's record of main gives the same one."""
    out, result = online
    runs, offline_result, _ = offline
    commit = hub.commits(BARE, repo_type="dataset")[0]["id"]
    assert result["bare"]["code"] == 0, result["bare"]["stderr"]
    assert offline_result["bare"]["code"] == 0, offline_result["bare"]["stderr"]
    assert config_of(out / "bare")["dataset_revision"] == commit
    assert config_of(runs / "bare")["dataset_revision"] == commit


def test_fakehub_gates_files_like_the_hub(hub, tmp_path):
    """A gated repo: its info for anyone, its files for the owner and granted users; 401/403 GatedRepo for others."""
    code = """
import json
from huggingface_hub import HfApi, hf_hub_download
result = {"gated": HfApi().dataset_info("carol/gated").gated}
for token in (None, "hf_alice", "hf_bob", "hf_carol"):
    try:
        hf_hub_download("carol/gated", "data/train.parquet", repo_type="dataset", token=token or False)
        result[str(token)] = "ok"
    except Exception as error:
        result[str(token)] = [type(error).__name__, error.response.status_code]
print(json.dumps(result))
"""
    env = hub_env(hub, tmp_path / "hf")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "gated": "auto",
        "None": ["GatedRepoError", 401],
        "hf_alice": ["GatedRepoError", 403],
        "hf_bob": "ok",
        "hf_carol": "ok",
    }


def test_the_hub_datasets_extra_pins_what_requirements_dev_and_the_hint_name():
    """`datasets` is for training only: in requirements-dev.txt and the `hub-datasets` extra, never requirements.txt
    (the Space's)."""
    import tomllib

    from gan.data.hub import INSTALL_HINT, REQUIREMENT

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["hub-datasets"]
    assert extra == [REQUIREMENT] and REQUIREMENT in INSTALL_HINT and "[hub-datasets]" in INSTALL_HINT
    assert REQUIREMENT in (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert (
        "datasets" not in (ROOT / "requirements.txt").read_text()
        and "pyarrow" not in (ROOT / "requirements.txt").read_text()
    )
    assert datasets.__version__ == REQUIREMENT.split("==")[1]


def test_trains_on_the_config_dataset_config_names(hub, configs):
    out, result, _, _ = configs
    assert result["b"]["code"] == 0, result["b"]["stderr"]
    config = config_of(out / "b")
    assert result["resumed"]["code"] == 0, result["resumed"]["stderr"]
    assert "resuming from" in result["resumed"]["stdout"] and config["training"]["steps"] == 4
    assert config["dataset_config"] == "b" and config["training"]["args"]["dataset_config"] == "b"
    assert config["training"]["train_images"] == CONFIG_COUNTS["b"]  # b's 7 images, not a's 5
    assert error_line(result["resume on a"]) == (
        "error: --dataset-config a differs from the resumed run's b; drop --dataset-config or use a new --out"
    )
    assert config["dataset_revision"] == hub.commits(CONFIGS, repo_type="dataset")[0]["id"]
    assert "config 'b', split 'train', column 'image'" in config["dataset_credit"]
    card = ModelCard(str(model_card(config, "alice/dcgan-configs", ["config.json"])))
    assert (
        f"{CONFIGS} on the Hugging Face Hub (commit {config['dataset_revision'][:12]}, config 'b', split" in card.text
    )


def test_a_dataset_of_several_configs_needs_dataset_config(configs):
    _, result, offline, _ = configs
    several = f"error: dataset {CONFIGS} has several configs (a, b): choose one with --dataset-config"
    assert error_line(result["no config"]) == several
    assert error_line(offline["no config"]) == several  # the cached card tells, offline too
    assert error_line(result["unknown config"]) == (
        f"error: dataset {CONFIGS} has no config 'c': choose one with --dataset-config (its configs: a, b)"
    )
    assert error_line(result["config on mnist"]) == (
        "error: --dataset-config is for --dataset hf:OWNER/NAME (a Hub dataset) only"
    )


def test_trains_offline_on_a_config_from_the_cache(configs):
    out, _, offline, requests = configs
    assert requests == []  # not one request reached the Hub
    assert offline["b"]["code"] == 0, offline["b"]["stderr"]
    config = config_of(out / "offline-b")
    assert config["dataset_config"] == "b" and config["training"]["train_images"] == CONFIG_COUNTS["b"]
    assert config["dataset_revision"] == config_of(out / "b")["dataset_revision"]
    assert torch.equal(torch.load(out / "b-first2.pt"), expected_images([CONFIG_SEEDS["b"], CONFIG_SEEDS["b"] + 1]))
