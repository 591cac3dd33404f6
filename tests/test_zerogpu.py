"""The Train run in a ZeroGPU worker, on the CPU: gan.testing's ZeroGPUCall (a forked worker, the generator in a
thread that is not its main one, each value pickled across, the stop event a cancel sets) checked on toy generators,
then gan.training.worker's train_in_worker through it: snapshots and the export as plain data, Stop with the model,
Stop before the first step, a refusal in one line, a cancel, and no gradio in the worker's imports."""

from __future__ import annotations

import errno
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from helpers import ROOT, TINY_MODEL_ARGS

from gan import checkpoint
from gan.checkpoint import load_model
from gan.run_folder import STORAGE_EXIT, RunFolder
from gan.testing import ZeroGPUCall, tensors_in
from gan.training.runner import STOPPED_CODE
from gan.training.worker import device_flags, train_in_worker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVERY = 0.25  # seconds of training between snapshots: several in a short run


# --- the harness, on toy generators (module-level: the worker inherits them; only arguments are pickled) ---


def _where_it_runs(tag: str):
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        refused = None
    except ValueError as error:
        refused = str(error)
    yield {"pid": os.getpid(), "main_thread": threading.current_thread() is threading.main_thread(), "tag": tag}
    yield {"signal": refused, "bytes": PNG_SIGNATURE, "numbers": (1.5, [2, None])}


def _counting(log: str, pause: float):
    try:
        for index in itertools.count():
            with open(log, "a") as out:
                out.write(f"yield {index}\n")
            yield index
            time.sleep(pause)
    finally:
        with open(log, "a") as out:
            out.write("closed\n")


def _failing():
    yield 1
    raise ValueError("a message the visitor never sees")


def _unpicklable():
    yield threading.Lock()


def _dying():
    yield 1
    os._exit(3)


def test_the_worker_is_a_forked_process_running_the_generator_off_its_main_thread():
    call = ZeroGPUCall(_where_it_runs, tag="sent")
    first, second = list(call)
    assert first == {"pid": call.process.pid, "main_thread": False, "tag": "sent"} and first["pid"] != os.getpid()
    assert "main thread" in second["signal"]  # so the trainer must not install signal handlers there
    assert second["bytes"] == PNG_SIGNATURE and second["numbers"] == (1.5, [2, None])
    assert call.process.exitcode == 0
    with pytest.raises((pickle.PicklingError, AttributeError)):  # arguments are pickled, in the app
        ZeroGPUCall(_where_it_runs, tag=lambda: None)


def test_closing_early_stops_the_worker_at_its_next_yield(tmp_path):
    log = tmp_path / "log"
    call = ZeroGPUCall(_counting, str(log), pause=0.5)
    items = iter(call)
    assert next(items) == 0
    items.close()  # Gradio's cancel: the worker closes the generator when it yields 1, which never arrives
    assert log.read_text() == "yield 0\nyield 1\nclosed\n"
    assert call.process.exitcode == 0 and multiprocessing.active_children() == []


def test_an_exception_reaches_the_app_as_a_zerogpu_worker_error_without_its_message():
    received = []
    with pytest.raises(RuntimeError) as raised:
        received.extend(ZeroGPUCall(_failing))
    assert received == [1] and str(raised.value) == "ZeroGPU worker error: ValueError"
    assert "a message the visitor never sees" in raised.value.__notes__[0]  # the worker's traceback, for the log
    for generator, shown in ((_unpicklable, "PicklingError"), (_dying, "GPU task aborted")):
        with pytest.raises(RuntimeError) as raised:
            list(ZeroGPUCall(generator))
        assert str(raised.value) == f"ZeroGPU worker error: {shown}"


def test_tensors_in_finds_tensors_nested_in_dicts_lists_and_tuples():
    nested = {"a": [1, (torch.zeros(1), "x")], "b": b"", "c": {"d": torch.ones(2)}}
    assert tensors_in(nested) == ["['a'][1][0]", "['c']['d']"]
    assert tensors_in({"grid": PNG_SIGNATURE, "real": [0.5], "files": {"model.safetensors": b""}}) == []


# --- train_in_worker through the harness: a tiny model on 64 MNIST-format images, on the CPU ---


def _flags(idx_dir, *budget: str) -> list[str]:
    """train.py flags without --out (train_in_worker adds it), as TabRun.flags() and device_flags make them."""
    data = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--no-download"]
    unused = ["--sample-every", "100000", "--checkpoint-every", "100000", "--eval-every", "0"]
    return [*data, *TINY_MODEL_ARGS, "--log-every", "2", *unused, *budget, *device_flags(False)]


def _check_plain(items: list[dict]) -> None:
    assert [where for item in items for where in tensors_in(item)] == []


@pytest.mark.slow
def test_a_run_yields_snapshots_then_its_export_as_plain_data(idx_dir, tmp_path):
    out = tmp_path / "run"
    items = list(ZeroGPUCall(train_in_worker, _flags(idx_dir, "--steps", "12"), str(out), EVERY))
    _check_plain(items)
    *snapshots, export = items
    assert snapshots and {item["kind"] for item in snapshots} == {"snapshot"}
    steps = [item["step"] for item in snapshots]
    assert steps == sorted(set(steps)) and steps[-1] <= 12
    for item in snapshots:
        assert item["grid"].startswith(PNG_SIGNATURE) and item["total_steps"] == 12
        assert all(isinstance(record, dict) and "loss_d" in record for record in item["records"])
    records = [record["step"] for item in snapshots for record in item["records"]]
    assert records == sorted(set(records)) and records  # each record once, in order
    assert export["kind"] == "export" and export["code"] == 0
    assert {"config.json", "model.safetensors"} <= set(export["files"])
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in export["files"].items():
        (copy / name).write_bytes(data)
    model = load_model(copy)
    assert model.metadata["training"]["steps"] == 12
    assert model.generator(torch.zeros(1, model.config.nz)).shape == (1, 1, 32, 32)


@pytest.mark.slow
def test_the_stop_file_ends_the_run_with_its_model(idx_dir, tmp_path):
    out = tmp_path / "run"
    items, stopped_at = [], None
    for item in ZeroGPUCall(train_in_worker, _flags(idx_dir, "--seconds", "60"), str(out), EVERY):
        items.append(item)
        if stopped_at is None:  # the first snapshot: the app's Stop button
            RunFolder(out).stop.touch()
            stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 15  # a step and the export, not the 60 s budget
    _check_plain(items)
    assert items[0]["kind"] == "snapshot" and items[-1]["kind"] == "export" and items[-1]["code"] == STOPPED_CODE
    training = json.loads(items[-1]["files"]["config.json"])["training"]
    assert training["steps"] >= items[0]["step"] > 0
    assert training["time_s"] < items[0]["training_s"] + 2  # seconds of training after the first snapshot
    assert not RunFolder(out).stop.exists()  # consumed


@pytest.mark.slow
def test_a_stop_before_the_first_step_yields_stopped_and_no_export(idx_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    RunFolder(out).stop.touch()  # the app's Stop while the worker starts
    assert list(ZeroGPUCall(train_in_worker, _flags(idx_dir, "--steps", "50"), str(out), EVERY)) == [
        {"kind": "stopped"}
    ]
    assert not RunFolder(out).model.exists()


def test_a_refusal_comes_back_as_one_readable_line(tmp_path):
    flags = ["--dataset", "folder", "--data-dir", "/nonexistent", *TINY_MODEL_ARGS, *device_flags(False)]
    (item,) = list(ZeroGPUCall(train_in_worker, flags, str(tmp_path / "run"), EVERY))  # no ZeroGPU worker error
    assert item["kind"] == "error" and "/nonexistent" in item["message"] and "is not a folder" in item["message"]
    assert "\n" not in item["message"] and "Traceback" not in item["message"]
    (item,) = list(ZeroGPUCall(train_in_worker, ["--bogus"], str(tmp_path / "flags"), EVERY))  # argparse exits
    assert item == {"kind": "error", "message": "train.py refused its flags (exit code 2)", "code": 2}


@pytest.mark.slow
def test_a_full_disk_comes_back_with_the_trainers_storage_code(idx_dir, tmp_path, monkeypatch):
    """A write that fails as on a full disk (ENOSPC at the last training state; patched before the worker forks):
    an error whose code tells the tab so (STORAGE_EXIT, as a child's exit status), not a refusal's 2."""

    def full(path, state):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(checkpoint, "save_training_state", full)
    *_, item = list(ZeroGPUCall(train_in_worker, _flags(idx_dir, "--steps", "4"), str(tmp_path / "run"), EVERY))
    assert item["kind"] == "error" and item["code"] == STORAGE_EXIT
    assert "(No space left on device)" in item["message"]


@pytest.mark.slow
def test_a_cancel_stops_the_trainer_and_leaves_no_process(idx_dir, tmp_path):
    out = tmp_path / "run"
    call = ZeroGPUCall(train_in_worker, _flags(idx_dir, "--seconds", "60"), str(out), EVERY)
    items = iter(call)
    first = next(items)
    assert first["kind"] == "snapshot"
    items.close()  # Gradio's cancel (the visitor left): the worker closes train_in_worker at its next snapshot
    assert call.process.exitcode == 0 and multiprocessing.active_children() == []  # it ended by itself
    folder = RunFolder(out)
    assert not folder.stop.exists()  # made by train_in_worker's close, consumed by the trainer as it stopped
    config = json.loads((folder.model / "config.json").read_text())  # it stopped as Stop does: with its model
    assert 0 < first["step"] <= config["training"]["steps"]


@pytest.mark.slow
def test_the_worker_and_the_trainer_import_without_gradio():
    code = "import sys; sys.modules['gradio'] = None; import gan.training.worker, gan.training; print('imported')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr


# --- the app's side: the Train tab and the Project tab with ZeroGPU's placement, through the harness ---


def _result_of(fn, *args):
    """A regular function as a one-item generator: what ZeroGPUCall runs (ZeroGPU wraps both kinds alike)."""
    yield fn(*args)


def _zerogpu_placement():
    from gan.projection import project_in_worker
    from gan.training.runner import TabRun
    from gan.ui.gpu import ZeroGPUPlacement

    return ZeroGPUPlacement(
        TabRun(width="tiny", batch_size=16),
        600,
        "",
        gpu_train=lambda flags, out: iter(ZeroGPUCall(train_in_worker, flags, out, EVERY)),
        gpu_project=lambda *args: next(iter(ZeroGPUCall(_result_of, project_in_worker, *args))),
    )


@pytest.mark.slow
def test_the_train_tab_trains_in_a_zerogpu_worker_as_in_a_child_and_stops_with_its_model(tiny_run, tmp_path):
    from images_for_tests import blob_pngs, write_zip

    from gan.ui import create_state
    from gan.ui.assets import OutputFiles
    from gan.ui.picker import OwnModel
    from gan.ui.train import TrainTab

    state = create_state(load_model(tiny_run / "model"), outputs=OutputFiles(parent=tmp_path / "outputs"))
    state.placement = _zerogpu_placement()
    tab = TrainTab(state, root=tmp_path / "runs")
    images = [str(write_zip(tmp_path / "blobs.zip", blob_pngs(64)))]
    *_, final = tab.train(seed=1, data="images", images=images, steps=6, width="tiny", batch_size=16)
    grid, figure, line, numbers, archive, ref, own = final
    assert numbers["state"] == "done" and line.startswith("**Done** after 6 steps.") and isinstance(own, OwnModel)
    assert load_model(ref.folder).metadata["training"]["steps"] == 6 and archive.endswith(".zip")
    updates = tab.train(seed=1, data="images", images=images, seconds=60, width="tiny", batch_size=16)
    for update in updates:
        if update[3]["state"] == "training":
            tab.stop_training()  # the STOP file: it crosses into the worker
            break
    *_, final = updates
    assert final[3]["state"] == "stopped" and 0 < final[3]["step"] and isinstance(final[-1], OwnModel)
    assert multiprocessing.active_children() == []


def test_a_full_disk_in_the_worker_is_said_to_the_visitor_as_in_a_child(tiny_run, tmp_path):
    """The worker's full disk (its error item with STORAGE_EXIT) reaches the visitor in the app's words, not as the
    trainer's advice to free space and resume with --out PATH."""
    import gradio as gr
    from images_for_tests import blob_pngs, write_zip

    from gan.training.runner import TabRun
    from gan.ui import create_state
    from gan.ui.assets import OutputFiles
    from gan.ui.gpu import ZeroGPUPlacement
    from gan.ui.train import TrainTab

    line = f"could not write {tmp_path}/run/checkpoints/x.pt (No space left on device); ...: --resume auto"
    items = [{"kind": "error", "message": line, "code": STORAGE_EXIT}]
    state = create_state(load_model(tiny_run / "model"), outputs=OutputFiles(parent=tmp_path / "outputs"))
    state.placement = ZeroGPUPlacement(TabRun(), 600, "", gpu_train=lambda *_: (i for i in items), gpu_project=None)
    tab = TrainTab(state, root=tmp_path / "runs")
    with pytest.raises(gr.Error) as failed:
        list(tab.train(data="images", images=[str(write_zip(tmp_path / "blobs.zip", blob_pngs(64)))], steps=6))
    assert failed.value.message == (
        "the server could not save your run (its disk is full or failing): it stopped and was not kept; try again later"
    )


@pytest.mark.slow
def test_a_projection_in_a_zerogpu_worker_is_the_cpu_projection(tiny_run, tmp_path):
    from PIL import Image

    from gan.projection import project_file
    from gan.ui.gpu import Placement

    model, image = load_model(tiny_run / "model"), tmp_path / "blob.png"
    Image.new("L", (28, 28), 200).save(image)
    here = Placement().project(model, str(image), "blob.png", 20, 2, None)
    there = _zerogpu_placement().project(model, str(image), "blob.png", 20, 2, None)
    assert torch.equal(here.z, there.z) and here.distance == there.distance and here.notes == there.notes
    assert torch.equal(here.reconstruction, there.reconstruction) and torch.equal(here.target, there.target)
    with pytest.raises(Exception, match="not an image"):  # a file's error: one line, as on the CPU
        (tmp_path / "notes.png").write_text("not an image")
        _zerogpu_placement().project(model, str(tmp_path / "notes.png"), "notes.png", 5, 1, None)
    assert project_file(model, str(image), steps=20, restarts=2).distance == here.distance
