"""The Train tab: a visitor's own images (caps, zip bombs, paths), the trainer's time budget and live snapshots, the
live view's reading and its explanation, the handler's checks in-process; marked slow, the launched app over HTTP with
gradio_client (a streamed run, Stop, the same weights from the same seed and steps, the visitor's own model behind
/sample and in a zip the command line loads, the queue, refused uploads, a visitor who leaves); marked hub, publishing
with an OAuth token to the local Hub server."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL_ARGS, train
from images_for_tests import write_test_images
from PIL import Image
from safetensors.torch import load_file

from gan.checkpoint import load_model
from gan.errors import ImageInputError
from gan.training.live import GRID_NAME, LIVE_DIR, SNAPSHOT_NAME, LiveView, TabRun, explain
from gan.uploads import MAX_FILES, MIN_IMAGES, read_images, write_images

TINY = {"width": "tiny", "batch_size": 16}  # the tab's tiny preset: a step takes milliseconds


def blob_pngs(count: int, colour: bool = False, seed: int = 0) -> dict[str, bytes]:
    """`count` small PNGs of soft blobs (grey, or each channel its own blob), by name."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40]
    files = {}
    for index in range(count):
        channels = []
        for _ in range(3 if colour else 1):
            cy, cx, s = rng.uniform(10, 30), rng.uniform(10, 30), rng.uniform(3, 8)
            channels.append((255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))).astype(np.uint8))
        array = np.stack(channels, -1) if colour else channels[0]
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files[f"blob-{index:03d}.png"] = buffer.getvalue()
    return files


def write_zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def blobs_zip(tmp_path_factory) -> Path:
    return write_zip(tmp_path_factory.mktemp("zips") / "blobs.zip", blob_pngs(MIN_IMAGES))


# -- a visitor's images ------------------------------------------------------------------------
def test_a_zip_of_images_becomes_32px_training_images_in_a_folder_of_its_own(tmp_path, blobs_zip):
    loaded = read_images([blobs_zip])
    assert loaded.images.shape == (MIN_IMAGES, 1, 32, 32) and loaded.images.dtype == torch.uint8
    assert loaded.skipped == []
    folder = write_images(loaded.images, tmp_path / "images")
    assert sorted(p.name for p in folder.iterdir())[:2] == ["00000.png", "00001.png"]
    from gan.data import load_dataset  # the trainer reads them back unchanged

    assert torch.equal(load_dataset("folder", folder, 32, channels=1).images, loaded.images)


def test_files_and_zips_mix_colour_is_kept_and_bad_files_are_skipped_with_their_reasons(tmp_path):
    files = {**blob_pngs(40, colour=True), "notes.txt": b"not an image"}
    paths = []
    for name, data in list(files.items())[:20]:
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    paths.append(write_zip(tmp_path / "rest.zip", dict(list(files.items())[20:])))
    paths.append(write_zip(tmp_path / "more.zip", blob_pngs(30, colour=True, seed=1)))
    loaded = read_images(paths)
    assert loaded.images.shape == (70, 3, 32, 32)
    assert loaded.skipped == ["rest.zip/notes.txt: not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP, TIFF...)"]


def test_too_few_images_are_refused_naming_what_was_skipped(tmp_path):
    hostile = write_test_images(tmp_path / "odd")
    paths = [hostile[name] for name in ("good.png", "notes.txt", "bomb.png", "empty.png")]
    with pytest.raises(ImageInputError) as refused:
        read_images(paths)
    message = str(refused.value)
    assert message.startswith(f"1 usable image(s): training needs at least {MIN_IMAGES}; skipped: notes.txt: ")
    assert "bomb.png: 400,000,000 pixels is over the limit" in message and "empty.png: the file is empty" in message


def test_a_zip_bomb_too_many_files_and_too_many_bytes_are_refused_before_anything_is_read(tmp_path):
    bomb = write_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(64 * 2**20)})  # 64 MB of zeros: ~64 KB zipped
    assert bomb.stat().st_size < 2**20
    with pytest.raises(ImageInputError, match=r"^bomb.zip: zeros.png would expand from .* to 64.0 MB .*zip bomb"):
        read_images([bomb])
    many = write_zip(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(MAX_FILES + 1)}, zipfile.ZIP_STORED)
    with pytest.raises(ImageInputError, match=f"many.zip holds {MAX_FILES + 1} files, over the limit of {MAX_FILES}"):
        read_images([many])
    almost = write_zip(tmp_path / "almost.zip", {f"{i}.png": b"x" for i in range(MAX_FILES - 1)}, zipfile.ZIP_STORED)
    loose = [tmp_path / f"{i}.png" for i in range(3)]
    for path in loose:
        path.write_bytes(b"x")
    with pytest.raises(ImageInputError, match=f"^{MAX_FILES + 2} files is over the limit of {MAX_FILES} per run"):
        read_images([*loose, almost])
    big = write_zip(tmp_path / "big.zip", {f"{i}.png": bytes(90 * 2**20) for i in range(3)}, zipfile.ZIP_STORED)
    with pytest.raises(ImageInputError, match=r"^big.zip expands to 270.0 MB, over the limit of 256.0 MB per run"):
        read_images([big])


def test_zip_member_paths_never_reach_the_file_system(tmp_path):
    pngs = list(blob_pngs(MIN_IMAGES).values())
    names = ["../../escape.png", "/etc/evil.png", "a/../../b.png", "C:\\win.png"] + [f"x/{i}.png" for i in range(60)]
    archive = write_zip(tmp_path / "paths.zip", dict(zip(names, pngs, strict=True)))
    target = tmp_path / "deep" / "target"
    write_images(read_images([archive]).images, target)
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == [f"{i:05d}.png" for i in range(MIN_IMAGES)]
    assert all(p.parent == target for p in tmp_path.rglob("*.png"))


# -- the trainer's side: a time budget, live snapshots ---------------------------------------------
def _tiny_run(idx_dir, out: Path, *extra: str) -> int:
    args = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--no-download", "--out", str(out), *TINY_MODEL_ARGS]
    return train([*args, "--log-every", "2", "--eval-every", "0", *extra])


def test_live_snapshots_change_no_weight_and_show_the_run(idx_dir, tmp_path):
    assert _tiny_run(idx_dir, tmp_path / "plain", "--steps", "12", "--seed", "3") == 0
    assert _tiny_run(idx_dir, tmp_path / "live", "--steps", "12", "--seed", "3", "--live-every", "0.0001") == 0
    for name in ("model.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        plain, live = (load_file(tmp_path / run / "model" / name) for run in ("plain", "live"))
        assert all(torch.equal(plain[key], live[key]) for key in plain), name
    view = LiveView(tmp_path / "live")
    snapshot = view.snapshot()
    assert snapshot.step == 12 and snapshot.total_steps == 12 and snapshot.seconds is None
    assert len(snapshot.real) == len(snapshot.generated) == 128
    assert Image.open(io.BytesIO(snapshot.grid)).size == (8 * 34 + 2, 8 * 34 + 2)  # seeds 0..63, 32 px, padded
    assert [r["step"] for r in view.metrics()] == [2, 4, 6, 8, 10, 12]
    assert not (tmp_path / "plain" / LIVE_DIR).exists()


def test_a_time_budget_ends_the_run_and_plans_the_learning_rate_decay_over_it(idx_dir, tmp_path):
    started = time.perf_counter()
    assert _tiny_run(idx_dir, tmp_path / "timed", "--seconds", "2") == 0
    assert time.perf_counter() - started < 30
    records = [r for r in LiveView(tmp_path / "timed").metrics()]
    assert 2.0 <= records[-1]["elapsed_s"] < 3.0 and records[-1]["step"] > 10
    assert records[-1]["lr_g"] < 0.2 * records[0]["lr_g"]  # the default recipe decays to 0 over the last third
    config = json.loads((tmp_path / "timed" / "model" / "config.json").read_text())
    assert config["training"]["args"]["seconds"] == 2 and config["training"]["time_s"] >= 2


def test_the_live_view_reads_new_lines_skips_torn_ones_and_refuses_odd_snapshots(tmp_path):
    view = LiveView(tmp_path)
    assert view.snapshot() is None and view.metrics() == []
    record = {"step": 5, "loss_d": 1.0, "loss_g": 2.0, "d_real": 0.6, "d_fake": 0.4}
    log = tmp_path / "metrics.jsonl"
    log.write_text(json.dumps(record) + "\n{torn\n" + json.dumps({"step": 5, "eval": {}}) + "\n" + '{"step": 1')
    assert [r["step"] for r in view.metrics()] == [5]
    with open(log, "a") as more:  # the last line completed: read now, once
        more.write('0, "loss_d": 1.5, "loss_g": 1.5, "d_real": 0.5, "d_fake": 0.5}\n')
    assert [r["step"] for r in view.metrics()] == [5, 10]
    assert [r["step"] for r in view.metrics()] == [5, 10]
    (tmp_path / LIVE_DIR).mkdir()
    (tmp_path / LIVE_DIR / SNAPSHOT_NAME).write_text(json.dumps({"format": 2, "step": 1}))
    assert view.snapshot() is None
    snapshot = {"format": 1, "step": 3, "training_s": 1, "real": [1.0, None, "x"], "generated": [float("nan"), -1]}
    (tmp_path / LIVE_DIR / SNAPSHOT_NAME).write_text(json.dumps(snapshot))
    (tmp_path / LIVE_DIR / GRID_NAME).write_bytes(b"\0" * (5 * 2**20))  # over the cap: not read
    read = view.snapshot()
    assert (read.step, read.real, read.generated, read.grid) == (3, [1.0], [-1.0], None)


def test_explain_says_in_one_line_what_the_curves_mean():
    def records(real: float, fake: float, step: int = 500) -> list[dict]:
        return [{"step": step, "d_real": real, "d_fake": fake, "loss_d": 1.0, "loss_g": 1.0}]

    assert explain([]).startswith("Starting")
    assert explain(records(0.97, 0.03)).startswith("D is winning: D(G(z)) is near 0, so G gets little signal")
    assert explain(records(0.6, 0.7)).startswith("G is fooling D")
    assert explain(records(0.55, 0.45)).startswith("D can hardly tell")
    assert explain(records(0.7, 0.3, step=20)).startswith("Early days")
    assert explain(records(0.7, 0.3)).startswith("A healthy contest")
    assert explain(records(float("nan"), 0.3)).startswith("The losses are not finite")
    assert all("\n" not in explain(records(r, f)) for r in (0.1, 0.5, 0.9) for f in (0.1, 0.5, 0.9))


def test_the_tabs_flags_are_train_py_flags_with_one_budget():
    from gan.training.settings import parse_flags

    timed, _ = parse_flags(TabRun(seed=7, seconds=30, recipe="classic", lr=1e-3, width="large").flags())
    assert (timed.seconds, timed.steps, timed.seed, timed.recipe, timed.ngf, timed.ndf) == (
        30,
        20_000,
        7,
        "classic",
        64,
        64,
    )
    assert (timed.lr_g, timed.lr_d, timed.eval_every, timed.dataset, timed.no_download) == (
        1e-3,
        1e-3,
        0,
        "fashion-mnist",
        True,
    )
    stepped, _ = parse_flags(TabRun(steps=40, data_dir="/x", channels=3, **TINY).flags())
    assert (stepped.seconds, stepped.steps, stepped.dataset, stepped.data_dir, stepped.channels) == (
        None,
        40,
        "folder",
        "/x",
        3,
    )
    assert (stepped.ngf, stepped.batch_size, stepped.lr_g) == (8, 16, 2e-3)  # the recipe's rate


# -- the handler in-process ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tab(tiny_run, tmp_path_factory):
    from gan.ui import create_state
    from gan.ui.assets import OutputFiles
    from gan.ui.train import TrainTab

    state = create_state(load_model(tiny_run / "model"), outputs=OutputFiles(parent=tmp_path_factory.mktemp("out")))
    return TrainTab(state, root=tmp_path_factory.mktemp("runs"))


def test_the_handler_checks_its_inputs_by_name(tab):
    import gradio as gr

    cases = [
        ({"seconds": 601}, "seconds: Value 601 is greater than maximum value 600"),
        ({"seconds": float("nan")}, "seconds must be a number between 5 and 600"),
        ({"seed": -1}, "seed: Value -1 is less than minimum value 0"),
        ({"steps": 1.5}, "steps must be a whole number"),
        ({"batch_size": 48}, "batch_size must be one of 16, 32, 64, 128"),
        ({"width": "huge"}, "width must be one of 'tiny', 'small', 'medium', 'large', not 'huge'"),
        ({"recipe": "fancy"}, "recipe must be one of 'default', 'classic', not 'fancy'"),
        ({"data": "images"}, f"upload your images (a zip, or up to {MAX_FILES} files; at least {MIN_IMAGES})"),
    ]
    for arguments, message in cases:
        with pytest.raises(gr.Error) as refused:
            list(tab.train(**arguments))
        assert message in refused.value.message, arguments
    assert tab.jobs == {} and not any(tab.root.iterdir())  # nothing left behind


def test_the_handler_trains_in_process_and_gives_the_model_and_a_zip(tab, blobs_zip, tmp_path):
    from gan.ui.models import OwnModel

    updates = list(tab.train(seed=1, data="images", images=[str(blobs_zip)], steps=8, **TINY))
    first, *live, final = updates
    assert first[3]["state"] == "starting" and live and live[-1][3]["step"] == 8
    grid, figure, line, numbers, archive, ref, own = final
    assert numbers["state"] == "done" and line.startswith("**Done** after 8 steps.") and isinstance(own, OwnModel)
    assert Path(ref.folder) == Path(own.folder) / "run" / "model" and tab.kept["in-process"] == Path(own.folder)
    assert not (Path(own.folder) / "run" / "checkpoints").exists()
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path)
    (folder,) = tmp_path.iterdir()
    assert folder.name == "dcgan-folder-seed1" and load_model(folder).config.ngf == 8
    tab.forget(own)
    assert not Path(own.folder).exists()
