"""The app's API and events as recorded in `tests/data/api_snapshot.json`: what `gradio_client` and MCP clients see
(`get_api_info()`: endpoints, parameters, their types, defaults and descriptions) and every event `build_demo`
registers, public and private (the handler's name, api_name, visibility, queue, concurrency group and limit,
validator, input and output components). A reorganisation must leave both as they are.

Re-record (only for an intended change of the API or the events, saying so in the commit):
    python tests/test_api_snapshot.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import helpers  # noqa: F401 (sets the offline environment before gradio loads)

SNAPSHOT = Path(__file__).parent / "data" / "api_snapshot.json"


def _event(fn) -> dict:
    own_group = fn.concurrency_id == str(id(fn.fn))  # Gradio's default group: the function's id, different per run
    return {
        "fn": fn.name,
        "api_name": fn.api_name,
        "visibility": fn.api_visibility,
        "queue": fn.queue,
        "concurrency_id": "(its own)" if own_group else fn.concurrency_id,
        "concurrency_limit": fn.concurrency_limit,
        "validator": getattr(fn.validator, "__qualname__", None),
        "inputs": [type(block).__name__ for block in fn.inputs],
        "outputs": [type(block).__name__ for block in fn.outputs],
    }


def snapshot() -> dict:
    """The API and the events of the app as `python app.py` builds it on the bundled model."""
    from gan import BUNDLED_MODEL
    from gan.checkpoint import load_model
    from gan.serve import other_bundled_models
    from gan.ui import build_demo

    demo = build_demo(load_model(BUNDLED_MODEL), other_bundled_models(str(BUNDLED_MODEL)))
    # through JSON, as clients read it (tuples become lists); an output without a label is named by Gradio after its
    # block id ("value_32"), which counts the blocks built before it in the process, so the id is left out
    text = json.dumps({"api": demo.get_api_info(), "events": [_event(fn) for fn in demo.fns.values()]})
    return json.loads(re.sub(r'"value_\d+"', '"value_(block id)"', text))


def differences(was, now, path: str = "") -> list[str]:
    """Each place where `now` differs from `was`, as its key path and both values (a whole dict says nothing)."""
    if isinstance(was, dict) and isinstance(now, dict):
        return [
            line
            for key in sorted(was.keys() | now.keys(), key=str)
            for line in differences(was.get(key, "(absent)"), now.get(key, "(absent)"), f"{path}/{key}")
        ]
    if isinstance(was, list) and isinstance(now, list) and len(was) == len(now):
        return [
            line
            for index, pair in enumerate(zip(was, now, strict=True))
            for line in differences(*pair, f"{path}[{index}]")
        ]
    return [] if was == now else [f"{path}: recorded {was!r}, now {now!r}"]


def test_the_api_and_events_are_as_recorded():
    recorded, now = json.loads(SNAPSHOT.read_text()), snapshot()
    changed = differences(recorded, now)
    assert not changed, "the API or the events changed:\n" + "\n".join(line[:300] for line in changed[:20])


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")
    print(f"recorded the API and the events in {SNAPSHOT}", file=sys.stderr)
