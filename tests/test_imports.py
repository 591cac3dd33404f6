"""Cold start: the command line and the app import only what they use at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow


HEAVY = ("torchvision", "matplotlib", "torch_fidelity", "scipy", "tensorboard", "trackio", "datasets", "pyarrow")


@pytest.mark.parametrize("module", ["gan.cli", "gan.serve", "gan.ui", "gan.sampling", "gan.training"])
def test_importing_loads_no_heavy_library(module):
    """torchvision alone costs seconds (it pulls in torch._dynamo); matplotlib, torch-fidelity and scipy are needed
    only to draw, evaluate or load the datasets that use them; the Hub's API client (huggingface_hub.hf_api) only to
    download or publish; datasets and pyarrow only to train on Hub datasets. gradio imports the Hub client, and
    pyarrow through pandas where pyarrow is installed, so the app is exempt from those two."""
    heavy = tuple(m for m in HEAVY if m != "pyarrow") if module == "gan.ui" else (*HEAVY, "huggingface_hub.hf_api")
    code = f"import json, sys; import {module}; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
