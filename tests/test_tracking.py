"""--report-to tensorboard,trackio: what the trackers hold, read back from their own stores (TensorBoard's event files
through its EventAccumulator, Trackio's SQLite database), is what metrics.jsonl and samples/ hold, each step once,
across resumes too; the pushed repo holds the event files; a missing package fails in one line.

Trackio stores runs under TRACKIO_DIR (read when trackio is imported): this module points it at a temporary folder.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, run_script, tiny_mnist_args, train
from hub_server import FakeHub, hub_env
from PIL import Image

import gan.training.run as run_module
import gan.training.tracking as tracking
from gan.checkpoint import list_training_states
from gan.runlog import read_metrics
from gan.training.trainer import Trainer

assert "trackio" not in sys.modules, "trackio was imported before TRACKIO_DIR could be set"
TRACKIO_DIR = Path(tempfile.mkdtemp(prefix="dcgan-trackio-"))  # never a developer's own store
os.environ["TRACKIO_DIR"] = str(TRACKIO_DIR)
atexit.register(shutil.rmtree, TRACKIO_DIR, True)
TOKEN = "hf_alice"
REPO = "alice/tracked-dcgan"


def _args(idx_dir, out: Path, steps: int, *extra: str) -> list[str]:
    every = ["--log-every", "1", "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "3"]
    report = ["--report-to", "tensorboard,trackio"]
    return tiny_mnist_args(idx_dir, out, "--steps", str(steps), "--keep-last", "0", *every, *report, *extra)


def _scores(generator) -> dict:
    """Stand-in evaluation scores (MNIST has no feature network): numbers of the weights, and a missing value."""
    weights = next(generator.parameters()).detach()
    fd, share = round(float(weights.abs().sum()), 5), round(float(weights.abs().mean()), 5)
    return {"fd": fd, "kid": 0.5, "precision": share, "recall": 1 - share, "diversity": 1.0, "ratio": None}


@pytest.fixture
def evaluated(monkeypatch):
    """Runs evaluate every --eval-every steps with `_scores`."""
    monkeypatch.setattr(run_module, "make_evaluator", lambda trainer, dataset: lambda generator: _scores(generator))


def _image(data: bytes | Path) -> np.ndarray:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        return np.asarray(image.convert("RGB"))


def _expected(out: Path) -> tuple[dict[str, list], dict[int, np.ndarray]]:
    """metrics.jsonl's numbers by name (nested fields joined by '/') as sorted (step, value) lists, and samples/."""
    scalars: dict[str, list] = {}

    def add(prefix: str, record: dict, step: int) -> None:
        for key, value in record.items():
            if isinstance(value, dict):
                add(f"{prefix}{key}/", value, step)
            elif isinstance(value, int | float) and not isinstance(value, bool) and key != "step":
                scalars.setdefault(prefix + key, []).append((step, value))

    for record in read_metrics(out / "metrics.jsonl"):
        add("", record, record["step"])
    grids = {int(p.stem.removeprefix("step_")): _image(p) for p in (out / "samples").glob("step_*.png")}
    return {tag: sorted(values) for tag, values in scalars.items()}, grids


def _tensorboard(folder: Path) -> tuple[dict[str, list], dict[int, np.ndarray]]:
    """What TensorBoard shows of the event files in `folder`, purges applied."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = {tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in events.Tags()["scalars"]}
    images = events.Images(tracking.SAMPLES_TAG)
    assert len({e.step for e in images}) == len(images), "an image step logged twice"
    return scalars, {e.step: _image(e.encoded_image_string) for e in images}


def _trackio(out: Path) -> tuple[dict[str, list], dict[int, np.ndarray]]:
    """The Trackio run that out/trackio.json names, from Trackio's SQLite database; no other run has its name."""
    run = json.loads((out / tracking.TRACKIO_RUN_FILE).read_text())
    with sqlite3.connect(TRACKIO_DIR / f"{tracking.TRACKIO_PROJECT}.db") as db:
        rows = db.execute("SELECT run_id, step, metrics FROM metrics WHERE run_name = ?", (run["name"],)).fetchall()
    assert {run_id for run_id, _, _ in rows} == {run["id"]}
    scalars: dict[str, list] = {}
    images = {}
    for _, step, metrics in rows:
        for key, value in json.loads(metrics).items():
            if key == tracking.SAMPLES_TAG:
                assert step not in images, f"the sample grid of step {step} logged twice"
                images[step] = _image(TRACKIO_DIR / "media" / value["file_path"])
            elif key != "timestamp":
                scalars.setdefault(key, []).append((step, value))
    media = TRACKIO_DIR / "media" / tracking.TRACKIO_PROJECT / run["name"]  # a rebuilt run's old images went
    assert sorted((int(d.name), len(list(d.iterdir()))) for d in media.iterdir()) == [
        (step, 1) for step in sorted(images)
    ]
    return {tag: sorted(values) for tag, values in scalars.items()}, images


def _assert_trackers_hold_the_run(out: Path, image_steps: list[int]) -> None:
    """Both trackers hold every number of metrics.jsonl at its step, once (TensorBoard: as float32), and the sample
    grids of `image_steps`, pixel for pixel."""
    scalars, grids = _expected(out)
    assert sorted(grids) == image_steps
    assert {"lr_g", "lr_d", "eval/fd", "eval/precision", "weight_norms_g/0", "skipped_steps"} <= scalars.keys()
    assert "eval/ratio" not in scalars  # None: not a number
    board_scalars, board_images = _tensorboard(out / tracking.TENSORBOARD_DIR)
    float32 = {tag: [(step, float(np.float32(value))) for step, value in values] for tag, values in scalars.items()}
    assert board_scalars == float32
    trackio_scalars, trackio_images = _trackio(out)
    assert trackio_scalars == scalars
    for images in (board_images, trackio_images):
        assert sorted(images) == image_steps
        for step in image_steps:
            assert np.array_equal(images[step], grids[step]), step


def test_report_to_is_checked_before_anything_loads(tmp_path, idx_dir, monkeypatch, capsys):
    assert tracking.parse_report_to("none") == ()
    assert tracking.parse_report_to(" TensorBoard, trackio,tensorboard") == ("tensorboard", "trackio")
    out = tmp_path / "run"
    assert train(_args(idx_dir, out, 2, "--report-to", "wandb")) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --report-to wandb: unknown wandb; choose none, tensorboard, trackio, or tensorboard,trackio"
    ]
    monkeypatch.setattr(tracking, "find_spec", lambda name: None if name == "tensorboard" else object())
    assert train(_args(idx_dir, out, 2)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --report-to tensorboard needs tensorboard: pip install tensorboard==2.21.0 "
        "(or pip install -e '.[tracking]')"
    ]
    assert not out.exists()  # refused before the run folder was claimed


def test_the_tracking_extra_pins_what_requirements_dev_and_the_hint_name():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tracking"]
    assert extra == list(tracking.TRACKERS.values())
    assert set(extra) <= set((ROOT / "requirements-dev.txt").read_text().splitlines())


@pytest.mark.slow
def test_trackers_hold_what_metrics_jsonl_holds(tmp_path, idx_dir, evaluated):
    out = tmp_path / "run"
    assert train(_args(idx_dir, out, 5)) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records if "eval" in r] == [3, 5]  # and the last step's
    _assert_trackers_hold_the_run(out, image_steps=[2, 4, 5])
    # the export holds the event files as they stand at the end, for the push
    exported = sorted(p.name for p in (out / "model" / tracking.TENSORBOARD_DIR).iterdir())
    assert exported == sorted(p.name for p in (out / tracking.TENSORBOARD_DIR).iterdir()) and len(exported) == 1


@pytest.mark.slow
def test_resumed_runs_continue_the_tracked_runs_without_repeating_steps(tmp_path, idx_dir, evaluated, monkeypatch):
    """Stopped by SIGTERM after step 5 and its last state lost (as if killed after logging step 5 but before its
    checkpoint): the resume from step 4 logs step 5 again; stopped again after step 7, resumed to 10. The trackers
    hold steps 1..10 once each."""
    out = tmp_path / "run"
    train_step = Trainer.train_step

    def stop_after(step: int):
        def stopping(trainer, real):
            stats = train_step(trainer, real)
            if trainer.step == step - 1:  # counted after this call returns
                os.kill(os.getpid(), signal.SIGTERM)
            return stats

        return stopping

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", stop_after(5))
        assert train(_args(idx_dir, out, 10)) == 128 + signal.SIGTERM
    list_training_states(out / "checkpoints")[-1].unlink()  # step 5's
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", stop_after(7))
        assert train(_args(idx_dir, out, 10, "--resume", "auto")) == 128 + signal.SIGTERM
    assert train(_args(idx_dir, out, 10, "--resume", "auto")) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records if "loss_d" in r] == list(range(1, 11))
    assert len(list((out / tracking.TENSORBOARD_DIR).iterdir())) == 3  # one event file per part
    # the first part's grid of step 5 went with the step (samples/ too), and its last step's grid stays (step 7)
    _assert_trackers_hold_the_run(out, image_steps=[2, 4, 6, 7, 8, 10])


@pytest.mark.slow
@pytest.mark.hub
def test_pushed_repo_holds_the_event_files(tmp_path, idx_dir):
    """train.py --push-to-hub --report-to tensorboard pushes the event files with the export, in each push's one
    commit; `python -m gan push RUN_FOLDER` pushes them too, and a push without them removes them."""
    out, home = tmp_path / "run", tmp_path / "hf-home"
    flags = ["--steps", "6", "--log-every", "2", "--sample-every", "3", "--checkpoint-every", "3"]
    hub_flags = ["--push-to-hub", "--hub-model-id", REPO, "--hub-token", TOKEN, "--push-every", "3"]
    with FakeHub(tokens={TOKEN: "alice"}) as hub:
        env = hub_env(hub, home, DCGAN_CACHE=str(tmp_path / "dcgan-cache"))
        command = ["train.py", *tiny_mnist_args(idx_dir, out, *flags, "--report-to", "tensorboard", *hub_flags)]
        proc = subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr
        (event_file,) = (out / tracking.TENSORBOARD_DIR).iterdir()
        path = f"{tracking.TENSORBOARD_DIR}/{event_file.name}"
        commits = hub.commits(REPO)  # newest first: the final push, the push at step 3, the repo's creation
        assert len(commits) == 3
        final, at_step_3 = hub.files(REPO), hub.files(REPO, revision=commits[1]["id"])
        assert final[path] == event_file.read_bytes() and "model.safetensors" in final
        assert final[path].startswith(at_step_3[path]) and len(at_step_3[path]) < len(final[path])
        assert _tensorboard(event_file.parent)[1].keys() == {3, 6}
        result = run_script(
            hub_env(hub, home, token=TOKEN),
            """
            import shutil
            from gan.cli import main as cli

            result["with"] = call(cli, ["push", out, "--hub-model-id", "alice/other"])
            shutil.rmtree(f"{out}/model/tensorboard")
            result["without"] = call(cli, ["push", out, "--hub-model-id", repo])
            """,
            out=str(out),
            repo=REPO,
        )
        assert result["with"]["code"] == 0 and result["without"]["code"] == 0, result
        assert hub.files("alice/other")[path] == event_file.read_bytes()
        assert not [name for name in hub.files(REPO) if name.startswith(f"{tracking.TENSORBOARD_DIR}/")]
        assert "model.safetensors" in hub.files(REPO)
