"""Command line of the app (`python app.py`): which model to serve, and where.

The model is `--repo-id USER/NAME [--revision REV]` (a Hub model), else `--checkpoint DIR` (an export folder), else the
environment variables GAN_REPO_ID / GAN_REVISION (how a Space is configured; GAN_REPO_ID may name several repos,
separated by commas: the first is served, the others are listed by the picker), else the bundled model, with the
other bundled models listed. Host and port
default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT when set (as on Spaces). Like the other commands, a model that
cannot be loaded is one line, `error: ...`, and exit status 2. torch's threads are first set to the CPUs the
container may use (gan.cpus), and the first line says how many.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import BUNDLED_MODEL, BUNDLED_MODELS
from .cpus import describe_threads, set_torch_threads
from .errors import GanError
from .hub.load import REPO_ID_VARIABLE, REVISION_VARIABLE, load_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the DCGAN Studio Gradio app.")
    parser.add_argument(
        "--checkpoint", default=None, help="an export folder (config.json + safetensors); default: the bundled model"
    )
    parser.add_argument(
        "--repo-id", default=None, metavar="USER/NAME", help=f"a Hub model instead (default: ${REPO_ID_VARIABLE})"
    )
    parser.add_argument(
        "--revision", default=None, help=f"branch, tag or commit of --repo-id (default: ${REVISION_VARIABLE} or main)"
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (0.0.0.0 to serve your network)",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument(
        "--mcp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve the public endpoints as MCP tools at /gradio_api/mcp/ (default: on)",
    )
    return parser


def other_bundled_models(checkpoint: str | None) -> list[Path]:
    """The bundled exports the picker lists beside the served model (which is never loaded twice)."""
    served = Path(checkpoint).resolve() if checkpoint else None
    return [folder for folder in BUNDLED_MODELS if folder.is_dir() and folder.resolve() != served]


def space_repo_ids(value: str) -> list[str]:
    """The model repos a Space serves, as GAN_REPO_ID names them: one, or several separated by commas (the first is
    the default; GAN_REVISION applies to it alone)."""
    return [repo_id.strip() for repo_id in value.split(",") if repo_id.strip()]


def _loaded(repo_ids: list[str]) -> list:
    """The Space's other model repos, loaded now (preloaded by its build): one that does not load is left out of the
    picker, said in the log."""
    models = []
    for repo_id in repo_ids:
        try:
            models.append(load_source(None, repo_id))
        except GanError as error:
            print(f"warning: {repo_id} is left out of the model picker: {error}", file=sys.stderr, flush=True)
    return models


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = set_torch_threads()  # before any work: the container's CPU quota, not the CPUs it shows
    repo_id, revision, others = args.repo_id, args.revision, []
    if not repo_id and not args.checkpoint and os.environ.get(REPO_ID_VARIABLE):
        repo_id, *others = space_repo_ids(os.environ[REPO_ID_VARIABLE]) or [None]
        revision = revision or os.environ.get(REVISION_VARIABLE) or None
    checkpoint = args.checkpoint or (None if repo_id else str(BUNDLED_MODEL))
    try:
        model = load_source(checkpoint, repo_id, revision)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    listed = [*other_bundled_models(checkpoint), *_loaded(others)]
    from .ui import CSS, EXAMPLES, MAX_UPLOAD, build_demo  # gradio is slow to import: only after the model loaded

    print(f"serving {model.name} from {model.source}, on {describe_threads(threads)}", flush=True)  # in logs at once
    demo = build_demo(model, listed)
    app_kwargs = None
    if args.mcp:  # the tools at /gradio_api/mcp/, served by ui/mcp.py (Gradio's MCP layer would take the events as is)
        from .ui.mcp import app_kwargs as mcp_app_kwargs

        app_kwargs = mcp_app_kwargs(demo)
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: Gradio closes, then exit handlers remove the app's files
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        footer_links=["api"],
        css=CSS,
        allowed_paths=[str(EXAMPLES)],
        max_file_size=MAX_UPLOAD,
        mcp_server=False,
        app_kwargs=app_kwargs,
    )
    return 0
