"""Cold start: the command line and the app import only what they use at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow


HEAVY = (
    "torchvision",
    "matplotlib",
    "torch_fidelity",
    "scipy",
    "tensorboard",
    "trackio",
    "datasets",
    "pyarrow",
    "fontTools",
)


@pytest.mark.parametrize("module", ["gan.cli", "gan.serve", "gan.ui", "gan.sampling", "gan.training"])
def test_importing_loads_no_heavy_library(module):
    """torchvision alone costs seconds (it pulls in torch._dynamo); matplotlib, torch-fidelity and scipy are needed
    only to draw, evaluate or load the datasets that use them; the Hub's API client (huggingface_hub.hf_api) only to
    download or publish; datasets and pyarrow only to train on Hub datasets; fontTools only to read the emoji font.
    gradio imports the Hub client, and pyarrow through pandas where pyarrow is installed, so the app is exempt from
    those two."""
    heavy = tuple(m for m in HEAVY if m != "pyarrow") if module == "gan.ui" else (*HEAVY, "huggingface_hub.hf_api")
    code = f"import json, sys; import {module}; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_a_projection_from_the_command_line_loads_no_heavy_library(tiny_run, tmp_path):
    """`python -m gan project` is the optimisation and little else: no torch._dynamo (torch.optim's first use imports
    it, 2.3 s cold: the projection has its own Adam), nor any library it does not draw, evaluate or download with."""
    heavy = (*HEAVY, "huggingface_hub.hf_api", "torch._dynamo", "gradio")
    image, out = ROOT / "examples" / "drawn-tshirt.png", tmp_path / "z.npy"
    command = ["project", str(image), "--checkpoint", str(tiny_run / "model"), "--out", str(out), "--steps", "2"]
    code = (
        f"import json, sys; from gan.cli import main; main({command!r}); "
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert json.loads(result.stdout.splitlines()[-1]) == []
