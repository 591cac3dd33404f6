"""Where long work goes (gan/ui/gpu.py): the durations asked of ZeroGPU, and the app built as on a ZeroGPU Space with
the real `spaces` package (its functions decorated, the Train tab's GPU defaults and its note), in a subprocess with
SPACES_ZERO_GPU set; off ZeroGPU, a child process and the handler's thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from helpers import ROOT

from gan.training.runner import TabRun
from gan.training.worker import GPU_DEFAULTS
from gan.ui.gpu import ANONYMOUS_S, MAX_GPU_S, Placement, placement, project_duration, train_duration


def test_durations_are_the_budget_plus_a_margin_within_the_quota():
    assert train_duration(GPU_DEFAULTS.flags(), "out") == 60 <= ANONYMOUS_S  # the default run: anyone may start it
    assert train_duration(replace(GPU_DEFAULTS, seconds=120).flags(), "out") == 140
    assert train_duration(replace(GPU_DEFAULTS, seconds=600).flags(), "out") == MAX_GPU_S  # capped
    assert train_duration(TabRun(steps=500).flags(), "out") == MAX_GPU_S  # a step budget: the most
    assert project_duration({}, "image.png", "image.png", 1, 1) == 10
    assert project_duration({}, "image.png", "image.png", 1000, 8) == 30 <= ANONYMOUS_S  # the longest projection


def test_off_zerogpu_runs_are_child_processes_with_the_cpu_defaults(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert placement() == Placement() and Placement().defaults == TabRun()


ON_ZEROGPU = """
import json
import spaces  # first, as app.py imports it on ZeroGPU
from gan.checkpoint import load_model
from gan.ui import build_demo
from gan.ui.gpu import ZeroGPUPlacement, placement

chosen = placement()
demo = build_demo(load_model("models/dcgan-fashion-mnist"))
texts = [block.value for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
print(json.dumps({
    "placement": type(chosen).__name__,
    "decorated": [hasattr(chosen.gpu_train, "zerogpu"), hasattr(chosen.gpu_project, "zerogpu")],
    "defaults": [chosen.defaults.width, chosen.defaults.batch_size, chosen.defaults.seconds],
    "max_seconds": chosen.max_seconds,
    "note": any("Runs train on this Space's GPU (ZeroGPU)" in str(text) for text in texts),
}))
"""


def test_on_a_zerogpu_space_training_and_projection_are_decorated_and_the_tab_says_so():
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9/"}
    done = subprocess.run([sys.executable, "-c", ON_ZEROGPU], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "placement": "ZeroGPUPlacement",
        "decorated": [True, True],
        "defaults": ["large", 128, 40],
        "max_seconds": MAX_GPU_S - 20,
        "note": True,
    }
