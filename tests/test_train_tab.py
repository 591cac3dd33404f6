"""The Train tab: a visitor's own images (caps, zip bombs, paths), the trainer's time budget and live snapshots, the
live view's reading and its explanation, the handler's checks in-process; marked slow, the launched app over HTTP with
gradio_client (a streamed run, Stop, the same weights from the same seed and steps, the visitor's own model behind
/sample and in a zip the command line loads, the queue, refused uploads, a visitor who leaves); marked hub, publishing
with an OAuth token to the local Hub server."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, RunningApp, tiny_mnist_args, train
from images_for_tests import blob_pngs, write_test_images, write_zip
from PIL import Image
from safetensors.torch import load_file

from gan.checkpoint import load_model
from gan.errors import ImageInputError
from gan.run_folder import RunFolder
from gan.training.runner import STOPPED_CODE, LiveView, TabRun, explain_curves
from gan.training.trainer import Trainer
from gan.uploads import MAX_FILES, MIN_IMAGES, read_images, write_images

TINY = {"width": "tiny", "batch_size": 16}  # the tab's tiny preset: a step takes milliseconds


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
    return train(tiny_mnist_args(idx_dir, out, "--log-every", "2", "--eval-every", "0", *extra))


def test_live_snapshots_change_no_weight_and_show_the_run(idx_dir, tmp_path):
    assert _tiny_run(idx_dir, tmp_path / "plain", "--steps", "12", "--seed", "3") == 0
    assert _tiny_run(idx_dir, tmp_path / "live", "--steps", "12", "--seed", "3", "--live-every", "0.0001") == 0
    for name in ("model.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        plain, live = (load_file(tmp_path / run / "model" / name) for run in ("plain", "live"))
        assert all(torch.equal(plain[key], live[key]) for key in plain), name
    view = LiveView(tmp_path / "live")
    snapshot = view.snapshot()
    assert snapshot.step == 12 and snapshot.total_steps == 12 and snapshot.seconds is None
    assert (len(snapshot.real), len(snapshot.generated)) == (64, 128)  # the dataset has 64 images
    assert Image.open(io.BytesIO(snapshot.grid)).size == (8 * 34 + 2, 8 * 34 + 2)  # seeds 0..63, 32 px, padded
    assert [r["step"] for r in view.metrics()] == [2, 4, 6, 8, 10, 12]
    assert not RunFolder(tmp_path / "plain").live.exists()


def test_a_stop_file_ends_the_run_at_any_moment_with_its_model_or_nothing(idx_dir, tmp_path, capsys):
    early = tmp_path / "early"  # made before the run even began (the app's Stop while Python starts)
    early.mkdir()
    RunFolder(early).stop.touch()
    assert _tiny_run(idx_dir, early, "--steps", "50") == STOPPED_CODE
    assert "stopped before the first step: nothing was trained or exported" in capsys.readouterr().out
    assert not (early / "model").exists() and not RunFolder(early).stop.exists()  # consumed: a resume is not stopped
    train_step = Trainer.train_step

    def stop_at_step_3(trainer, real):
        if trainer.step == 3:
            RunFolder(tmp_path / "late").stop.touch()
        return train_step(trainer, real)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "train_step", stop_at_step_3)
        assert _tiny_run(idx_dir, tmp_path / "late", "--steps", "50") == STOPPED_CODE
    assert load_model(tmp_path / "late" / "model").metadata["training"]["steps"] == 4
    assert not RunFolder(tmp_path / "late").stop.exists()


def test_a_time_budget_ends_the_run_and_plans_the_learning_rate_decay_over_it(idx_dir, tmp_path):
    started = time.perf_counter()
    assert _tiny_run(idx_dir, tmp_path / "timed", "--seconds", "2") == 0
    assert time.perf_counter() - started < 30
    records = [r for r in LiveView(tmp_path / "timed").metrics()]
    assert 1.5 <= records[-1]["elapsed_s"] < 3.0 and records[-1]["step"] > 2  # a busy CPU takes few steps in 2 s
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
    folder = RunFolder(tmp_path)
    folder.live.mkdir()
    folder.live_snapshot.write_text(json.dumps({"format": 2, "step": 1}))
    assert view.snapshot() is None
    snapshot = {"format": 1, "step": 3, "training_s": 1, "real": [1.0, None, "x"], "generated": [float("nan"), -1]}
    folder.live_snapshot.write_text(json.dumps(snapshot))
    folder.live_grid.write_bytes(b"\0" * (5 * 2**20))  # over the cap: not read
    read = view.snapshot()
    assert (read.step, read.real, read.generated, read.grid) == (3, [1.0], [-1.0], None)


def test_explain_says_in_one_line_what_the_curves_mean():
    def records(real: float, fake: float, step: int = 500) -> list[dict]:
        return [{"step": step, "d_real": real, "d_fake": fake, "loss_d": 1.0, "loss_g": 1.0}]

    assert explain_curves([]).startswith("Starting")
    assert explain_curves(records(0.97, 0.03)).startswith("D is winning: D(G(z)) is near 0, so G gets little signal")
    assert explain_curves(records(0.6, 0.7)).startswith("G is fooling D")
    assert explain_curves(records(0.55, 0.45)).startswith("D can hardly tell")
    assert explain_curves(records(0.7, 0.3, step=20)).startswith("Early days")
    assert explain_curves(records(0.7, 0.3)).startswith("A healthy contest")
    assert explain_curves(records(float("nan"), 0.3)).startswith("The losses are not finite")
    assert all("\n" not in explain_curves(records(r, f)) for r in (0.1, 0.5, 0.9) for f in (0.1, 0.5, 0.9))


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
    assert tab.jobs == {} and not any(tab.root.rglob("run-*"))  # nothing left behind


@pytest.mark.slow
def test_the_handler_trains_in_process_and_gives_the_model_and_a_zip(tab, blobs_zip, tmp_path):
    import gradio as gr

    from gan.ui.picker import ModelRef, OwnModel

    updates = list(tab.train(seed=1, data="images", images=[str(blobs_zip)], steps=8, **TINY))
    first, *live, final = updates
    assert first[3]["state"] == "starting" and live and live[-1][3]["step"] == 8
    grid, figure, line, numbers, archive, ref, own = final
    assert numbers["state"] == "done" and line.startswith("**Done** after 8 steps.") and isinstance(own, OwnModel)
    assert Path(ref.folder) == Path(own.folder) / "run" / "model" and tab.kept.models["in-process"].folder == Path(
        own.folder
    )
    assert not (Path(own.folder) / "run" / "checkpoints").exists()
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path)
    (folder,) = tmp_path.iterdir()
    assert folder.name == "dcgan-folder-seed1" and load_model(folder).config.ngf == 8
    tab.forget(own)
    assert not Path(own.folder).exists()
    with pytest.raises(gr.Error, match="The model you trained is no longer on this server"):
        tab.app.current(ModelRef(folder=str(Path(own.folder) / "elsewhere")))


# -- the launched app ------------------------------------------------------------------------------
def _visitor(app, tmp_path: Path):
    from gradio_client import Client

    return Client(app.url, verbose=False, download_files=str(tmp_path))


def _submit(client, blobs_zip: Path, **settings):
    from gradio_client import handle_file

    arguments = {"seed": 0, "seconds": 300, "data": "images", "images": [handle_file(str(blobs_zip))], **TINY}
    return client.submit(**{**arguments, **settings}, api_name="/train")


def _wait_for(condition, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def _training(job) -> bool:
    """Whether the job has streamed a live update of a run that trains."""
    return any(update[3].get("state") == "training" for update in job.outputs())


def _unzip(archive: str, where: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(where)
    (folder,) = where.iterdir()
    return folder


@pytest.mark.slow
def test_a_run_streams_live_updates_then_its_model_is_the_visitors_and_its_zip_loads(app, blobs_zip, tmp_path):
    from gan.cli import main as cli

    client = _visitor(app, tmp_path / "downloads")
    job = _submit(client, blobs_zip, seconds=6)
    final = job.result(timeout=120)
    # the first snapshot may come before the first metrics record (every 5 steps): it has a grid but no losses yet
    updates = [update[3] for update in job.outputs() if update[3].get("state") == "training" and "loss_d" in update[3]]
    assert len(updates) >= 2, job.outputs()  # a busy CPU (a second test worker) takes fewer steps in 6 s
    steps = [update["step"] for update in updates]
    assert steps == sorted(steps) and steps[-1] > steps[0]
    assert all(math.isfinite(update[key]) for update in updates for key in ("loss_d", "loss_g", "d_real", "d_fake"))
    grid, figure, line, numbers, archive = final
    assert numbers["state"] == "done" and line.startswith("**Done**") and Image.open(figure).format == "PNG"
    folder = _unzip(archive, tmp_path / "unzipped")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "model.safetensors", "generator_raw.safetensors", "discriminator.safetensors"]
        + ["samples.png", "loss.png", "weights.png", "metrics.jsonl"]
    )
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
    sample = Image.open(client.predict(seed=0, count=4, api_name="/sample"))  # this visitor's model now
    assert sample.text["revision"] == f"local sha256:{digest}"
    other = Image.open(_visitor(app, tmp_path / "other").predict(seed=0, count=4, api_name="/sample"))
    assert other.text["revision"] != sample.text["revision"]  # everyone else keeps the app's model
    assert cli(["sample", "--checkpoint", str(folder), "--num", "4", "--out", str(tmp_path / "grid.png")]) == 0
    served = RunningApp(tmp_path / "app.log", ["--checkpoint", str(folder)])
    try:
        again = Image.open(_visitor(served, tmp_path / "served").predict(seed=0, count=4, api_name="/sample"))
        assert np.array_equal(np.asarray(again), np.asarray(sample))
    finally:
        served.stop()


@pytest.mark.slow
def test_stop_ends_the_run_with_its_model(app, blobs_zip, tmp_path):
    client = _visitor(app, tmp_path)
    job = _submit(client, blobs_zip)
    _wait_for(lambda: _training(job))
    started = time.perf_counter()
    client.predict(api_name="/stop_training")
    *_, numbers, archive = job.result(timeout=60)
    assert time.perf_counter() - started < 20  # generous: the figure is a benchmark's (bench/train_tab.py app)
    assert numbers["state"] == "stopped" and 0 < numbers["training_s"] < 60 and archive.endswith(".zip")


@pytest.mark.slow
def test_stop_at_any_moment_gives_the_model_trained_so_far_or_one_line(app, blobs_zip, tmp_path):
    client = _visitor(app, tmp_path)
    for delay in (0, 0.3, 1, 2, 4):  # before the run is queued, while Python starts, torch loads, the data loads...
        job = _submit(client, blobs_zip)
        time.sleep(delay)
        client.predict(api_name="/stop_training")
        grid, figure, line, numbers, archive = job.result(timeout=90)
        assert numbers["state"] == "stopped", (delay, line)
        if archive is None:
            assert line.startswith("**Stopped** before the first step: nothing was trained."), (delay, line)
        else:
            assert line.startswith("**Stopped** after") and numbers["step"] > 0 and zipfile.is_zipfile(archive)


@pytest.mark.slow
def test_the_same_seed_and_step_budget_give_the_same_weights(app, blobs_zip, tmp_path):
    client = _visitor(app, tmp_path / "downloads")
    folders = []
    for run in range(2):
        *_, archive = _submit(client, blobs_zip, seed=5, steps=30).result(timeout=120)
        folders.append(_unzip(archive, tmp_path / f"run{run}"))
    for name in ("model.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        first, second = (load_file(folder / name) for folder in folders)
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), name
    config = json.loads((folders[0] / "config.json").read_text())
    assert config["training"]["steps"] == 30 and config["training"]["args"]["seed"] == 5


@pytest.mark.slow
def test_runs_take_turns_and_a_visitor_has_one_at_a_time(app, blobs_zip, tmp_path):
    import httpx
    from gradio_client.utils import Status

    first, second = _visitor(app, tmp_path / "a"), _visitor(app, tmp_path / "b")
    running = _submit(first, blobs_zip)
    _wait_for(lambda: _training(running))
    with pytest.raises(httpx.HTTPStatusError) as refused:  # refused before it is queued, with the cap's sentence
        _submit(first, blobs_zip).result(timeout=30)
    assert refused.value.response.json()["detail"] == (
        "you already have 1 training run(s) queued or running (at most 1 per visitor); wait for one to finish"
    )
    waiting = _submit(second, blobs_zip)
    _wait_for(lambda: waiting.status().code == Status.IN_QUEUE)
    time.sleep(2)
    assert waiting.status().code == Status.IN_QUEUE and waiting.outputs() == []  # still waiting its turn
    first.predict(api_name="/stop_training")
    running.result(timeout=60)
    _wait_for(lambda: _training(waiting))  # its turn came
    second.predict(api_name="/stop_training")
    assert waiting.result(timeout=60)[3]["state"] == "stopped"


@pytest.mark.slow
def test_bad_uploads_a_zip_bomb_and_too_many_files_are_refused(app, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = _visitor(app, tmp_path / "downloads")
    odd = write_test_images(tmp_path / "odd")
    cases = {
        "bomb.zip: zeros.png would expand from": write_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(64 * 2**20)}),
        f"many.zip holds {MAX_FILES + 1} files, over the limit of {MAX_FILES} per run": write_zip(
            tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(MAX_FILES + 1)}, zipfile.ZIP_STORED
        ),
    }
    for message, archive in cases.items():
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(data="images", images=[handle_file(str(archive))], api_name="/train")
    files = [handle_file(str(odd[name])) for name in ("good.png", "notes.txt", "truncated.png")]
    with pytest.raises(AppError, match=r"^1 usable image\(s\): training needs at least 64; skipped: notes.txt: not an"):
        client.predict(data="images", images=files, api_name="/train")
    assert app.alive()


LEAVER = """
import os, sys, time
from gradio_client import Client, handle_file
job = Client(sys.argv[1], verbose=False).submit(seed=0, seconds=300, data="images", images=[handle_file(sys.argv[2])],
                                                width="tiny", batch_size=16, api_name="/train")
while not any(update[3].get("state") == "training" for update in job.outputs()):
    time.sleep(0.1)
print("training", flush=True)
sys.stdin.readline()
os._exit(0)  # gone, without a word to the server
"""


def _trainers(parent: int) -> dict[int, str]:
    """The app's training processes: pid -> their --out folder."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"gan.training" in command:
            found[int(entry.name)] = command[command.index(b"--out") + 1].decode()
    return found


@pytest.mark.slow
def test_a_run_whose_visitor_leaves_is_killed_and_its_files_deleted(app, blobs_zip):
    leaver = subprocess.Popen(
        [sys.executable, "-c", LEAVER, app.url, str(blobs_zip)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leaver.stdout.readline() == "training\n"
        trainers = _trainers(app.process.pid)
        assert len(trainers) == 1, trainers
        (pid, out), limits = next(iter(trainers.items())), Path(f"/proc/{next(iter(trainers))}/limits").read_text()
        assert re.search(r"Max data size\s+2147483648", limits)  # the memory cap (RLIMIT_DATA)
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"OMP_NUM_THREADS=1" in environment  # one thread, whatever the app's
        leaver.communicate("\n", timeout=30)
    finally:
        leaver.kill()
    assert leaver.returncode == 0
    _wait_for(lambda: not _trainers(app.process.pid), timeout=60)
    _wait_for(lambda: not Path(out).parent.exists(), timeout=10)


def _when_room(submit, timeout: float = 30):
    """A job submitted again until the app has room for its model (a visitor who left has been seen to), once it
    trains or has ended."""
    deadline = time.time() + timeout
    while True:
        job = submit()
        _wait_for(lambda job=job: job.done() or _training(job))
        if not job.done() or "as it has room for" not in str(job.exception()):
            return job
        assert time.time() < deadline, "a visitor's leaving never made room"
        time.sleep(1)


def _runs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("dcgan-train-*/run-*"))


@pytest.mark.slow
def test_models_of_visitors_here_are_kept_and_an_apps_files_go_when_it_is_killed_or_stopped(
    tiny_run, blobs_zip, tmp_path
):
    from gradio_client.exceptions import AppError

    tmp = tmp_path / "tmp"  # the apps' temporary folder: their runs, and Gradio's cache (uploads, outputs)
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "GAN_KEPT_MODELS_MB": "0.001"}  # one kept model fills the budget
    first = RunningApp(tmp_path / "first.log", ["--checkpoint", str(tiny_run / "model")], env)
    try:
        a, b = _visitor(first, tmp_path / "a"), _visitor(first, tmp_path / "b")
        *_, archive = _submit(a, blobs_zip, steps=2).result(timeout=120)
        with pytest.raises(AppError, match="keeping as many trained models as it has room for"):
            _submit(b, blobs_zip, steps=2).result(timeout=60)
        revisions = [Image.open(v.predict(seed=0, count=4, api_name="/sample")).text["revision"] for v in (a, b)]
        assert revisions[0] != revisions[1]  # a's own model, still there; b has the app's
        (kept,) = _runs(tmp)
        a.close()  # a leaves (the app sees their heartbeat end): their model may go when its room is needed
        assert _when_room(lambda: _submit(b, blobs_zip, steps=2)).result(timeout=120)[3]["state"] == "done"
        assert not kept.exists() and len(_runs(tmp)) == 1
        b.close()
        _when_room(lambda: _submit(_visitor(first, tmp_path / "c"), blobs_zip))
        trainers = _trainers(first.process.pid)
        first.process.kill()  # SIGKILL: nothing of the app runs at its end
        first.process.wait()
    finally:
        first.process.kill()
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in trainers), timeout=30)  # stdin closed: ended
    left = sorted(tmp.glob("dcgan-train-*")) + sorted(tmp.glob("gradio/dcgan-studio-*"))
    assert len(left) == 2, left
    second = RunningApp(tmp_path / "second.log", ["--checkpoint", str(tiny_run / "model")], env)
    try:
        assert not any(path.exists() for path in left)  # the killed app's runs and outputs, removed at start
        running = _submit(_visitor(second, tmp_path / "d"), blobs_zip)
        _wait_for(lambda: _training(running))
        trainers = _trainers(second.process.pid)
        assert len(trainers) == 1 and len(_runs(tmp)) == 1
    finally:
        second.stop()  # SIGTERM
    assert not any(Path(f"/proc/{pid}").exists() for pid in trainers)
    assert not list(tmp.glob("dcgan-train-*")) and not list(tmp.glob("gradio/dcgan-studio-*"))


# -- publishing ------------------------------------------------------------------------------------
def test_the_login_button_and_publishing_appear_only_where_oauth_is_configured(tiny_run, monkeypatch):
    from gan.ui import build_demo

    model = load_model(tiny_run / "model")
    monkeypatch.delenv("OAUTH_CLIENT_ID", raising=False)
    demo = build_demo(model)  # `make demo` offline: no login (Gradio would fake one with the machine's token)
    assert not demo.expects_oauth and not [fn for fn in demo.fns.values() if fn.name == "publish"]
    parameters = [p["parameter_name"] for p in demo.get_api_info()["named_endpoints"]["/train"]["parameters"]]
    assert parameters == ["seed", "seconds", "data", "images", "recipe", "lr", "width", "batch_size", "steps"]
    train = next(fn for fn in demo.fns.values() if fn.api_name == "train")
    assert (train.concurrency_id, train.concurrency_limit, train.validator is not None) == ("training", 1, True)
    monkeypatch.setenv("OAUTH_CLIENT_ID", "a-space-client")  # what a Space with hf_oauth: true sets
    # off a Space, Gradio fakes the login with whoami() on the machine's token: offline, with none, it raises
    monkeypatch.setattr("gradio.oauth._get_mocked_oauth_info", lambda: {})
    demo = build_demo(model)
    assert demo.expects_oauth
    (publish,) = [fn for fn in demo.fns.values() if fn.name == "publish"]
    assert publish.api_visibility == "private"


def test_the_space_asks_for_oauth_with_the_contribute_repos_scope():
    from huggingface_hub import SpaceCard

    from gan.hub.space import SpaceModel, space_files

    for card in (
        SpaceCard.load(ROOT / "README.md"),
        SpaceCard(space_files([SpaceModel("alice/m", ["config.json"])], None, "alice/s")["README.md"].decode()),
    ):
        assert card.data.hf_oauth is True and card.data.hf_oauth_scopes == ["contribute-repos"]
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert "gradio[mcp,oauth]==6.31.0" in requirements
    assert any(line.startswith("authlib==") for line in requirements)
    assert any(line.startswith("itsdangerous==") for line in requirements)


PUBLISH = """
import time
import gradio as gr
from gan.checkpoint import load_model
from gan.ui import create_state
from gan.ui.picker import ModelRef, OwnModel
from gan.ui.train import TrainTab

tab = TrainTab(create_state(load_model(export)))
own = OwnModel("your model", ModelRef(folder=export), export)
token = gr.OAuthToken(token=token, scope="openid profile contribute-repos", expires_at=int(time.time()) + 3600)

def refused(*args):
    try:
        tab.publish(*args)
    except gr.Error as error:
        return error.message

result["published"] = tab.publish("my-dcgan", own, None, token)
alice = gr.OAuthProfile({"name": "Alice", "preferred_username": "alice", "profile": "", "picture": ""})
result["profile"] = tab.publish("my-dcgan-2", own, alice, token)
result["not signed in"] = refused("my-dcgan", own, None, None)
result["nothing trained"] = refused("my-dcgan", None, None, token)
result["bad name"] = refused("../x", own, None, token)
result["rejected token"] = refused("my-dcgan", own, None, gr.OAuthToken(token="hf_expired", scope="", expires_at=0))
"""


@pytest.mark.hub
def test_publishing_with_the_visitors_oauth_token_pushes_as_gan_push_does(tiny_run, tmp_path):
    from helpers import run_script
    from hub_server import FakeHub, hub_env

    with FakeHub(tokens={"hf_alice": "alice"}) as hub:
        result = run_script(hub_env(hub, tmp_path / "hf"), PUBLISH, export=str(tiny_run / "model"), token="hf_alice")
        files = hub.files("alice/my-dcgan")
        assert {"config.json", "model.safetensors", "discriminator.safetensors", "README.md"} <= set(files)
        assert "config.json" in hub.files("alice/my-dcgan-2")
        assert hub.commits("alice/my-dcgan")[0]["title"].startswith("Upload ")
    assert result["published"].startswith("Published to [alice/my-dcgan](") and "commit `" in result["published"]
    assert result["profile"].startswith("Published to [alice/my-dcgan-2](")
    assert result["not signed in"] == "sign in with Hugging Face first (the button above), then publish"
    assert result["nothing trained"] == "train a model first: there is nothing to publish yet"
    assert result["bad name"].startswith("name the model repo with letters, digits")
    rejected = "the Hub rejected your sign-in (invalid or expired): sign in with Hugging Face again"
    assert result["rejected token"] == rejected  # the visitor's token: not `hf auth login`, nor the app's
