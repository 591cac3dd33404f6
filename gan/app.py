"""Command line of the app: which model to serve, and where."""

from __future__ import annotations

import argparse
import sys

from . import BUNDLED_MODEL
from .checkpoint import load_model
from .errors import GanError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the DCGAN Studio Gradio app.")
    parser.add_argument("--checkpoint", default=str(BUNDLED_MODEL), help="an export folder (config.json + safetensors)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 to serve your network)")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    try:
        model = load_model(args.checkpoint)
    except GanError as error:
        sys.exit(f"error: {error}")
    from .ui import build_demo  # gradio is slow to import: only after the model loaded

    print(f"serving {model.name} from {model.source}")
    build_demo(model).launch(server_name=args.host, server_port=args.port, footer_links=["api"])
