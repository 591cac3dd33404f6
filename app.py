"""DCGAN Studio, the Gradio app: `python app.py [--checkpoint DIR]`. All logic lives in gan.serve and gan.ui."""

import os
import sys

# Offline by default: no analytics or telemetry calls to outside hosts.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if os.environ.get("SPACES_ZERO_GPU"):  # ZeroGPU patches torch, and its package must be imported before torch is
    import spaces  # noqa: F401

from gan.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
