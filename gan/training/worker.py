"""A Train-tab run inside a GPU worker (ZeroGPU's `@spaces.GPU`): the trainer in this process, as a generator of plain
data. It imports no gradio.

ZeroGPU runs a decorated generator in a forked worker, in a thread that is not the worker's main one, and carries each
value it yields to the app through a multiprocessing queue (tensors would travel as shared-memory handles). So here the
trainer runs in a thread of its own (`train_in_process`: no signal handlers), writing its live snapshots to the run
folder as the child process of the CPU runner does, and this generator reads them back and yields their bytes and
numbers, never tensors, about once a second; then the export's files as bytes. The run folder's STOP file stops the run
with its model (a flag that crosses processes: the app makes the file); closing the generator (Gradio cancelled: the
visitor left) stops it too and yields nothing more. A failure comes back as one line: an exception would reach the
visitor as "ZeroGPU worker error: <type>", its message lost.

Items, each a dict with "kind":
    snapshot   step, training_s, seconds, total_steps, real, generated (D's logits), grid (PNG bytes), records (the
               metrics records written since the previous item)
    export     code (the trainer's exit code), files ({name: bytes} of the export folder)
    stopped    stopped before the first step: no model
    error      message, code (2: refused or failed; STORAGE_EXIT: a write failed, the disk full or failing)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ..errors import GanError
from ..run_folder import STORAGE_EXIT, RunFolder, StorageFailure
from .runner import STOPPED_CODE, LiveView, TabRun

SNAPSHOT, EXPORT, STOPPED, ERROR = "snapshot", "export", "stopped", "error"
LIVE_EVERY = 1.0  # seconds of training between snapshots
# The Train tab's defaults on a GPU: the paper's width, a batch that keeps it busy, and 40 s of training (a call of
# 60 s with gan.ui.gpu's margin: within what an anonymous ZeroGPU visitor may ask for)
GPU_DEFAULTS = TabRun(seconds=40, width="large", batch_size=128)


def device_flags(cuda: bool) -> list[str]:
    """The trainer's device and precision in a worker: CUDA with bf16 autocast where there is a GPU."""
    return ["--device", "cuda", "--amp", "bf16"] if cuda else ["--device", "cpu"]


def train_in_worker(flags: list[str], out: str, every: float = LIVE_EVERY) -> Iterator[dict]:
    """Train with train.py's `flags` (TabRun.flags(); the device's, `device_flags`, unless they name one) in the run
    folder `out`, yielding the items of the module's docstring."""
    import torch  # in the worker, when it runs: there CUDA is the GPU lent to this call

    from . import train_in_process

    if "--device" not in flags:
        flags = [*flags, *device_flags(torch.cuda.is_available())]
    folder = RunFolder(out)
    outcome: dict = {}

    def train() -> None:
        try:
            outcome["code"] = train_in_process([*flags, "--out", out, "--live-every", str(every)])
        except StorageFailure as error:
            outcome["error"], outcome["code"] = str(error), STORAGE_EXIT
        except GanError as error:
            outcome["error"] = error.web  # for the tab's visitor
        except SystemExit as error:  # argparse refusing a flag (its message on the worker's stderr)
            outcome["error"] = f"train.py refused its flags (exit code {error.code})"
        except Exception as error:  # one line for the visitor; the worker's log keeps the traceback
            outcome["error"] = f"the training failed: {type(error).__name__}: {error}"
            raise

    thread = threading.Thread(target=train, name="train-in-worker", daemon=True)
    thread.start()
    view, shown = LiveView(folder.path), None
    try:
        while True:
            thread.join(every)
            snapshot = view.snapshot()
            if snapshot is not None and snapshot.step != shown:
                shown = snapshot.step
                yield {"kind": SNAPSHOT, **asdict(snapshot), "records": view.new_records()}
            if not thread.is_alive():
                break
        yield _outcome(outcome, folder)
    finally:
        if thread.is_alive():  # closed early (the visitor left): stop at the end of this step
            folder.stop.touch()
            thread.join()


def _outcome(outcome: dict, folder: RunFolder) -> dict:
    if "error" in outcome:
        return {"kind": ERROR, "message": outcome["error"], "code": outcome.get("code", 2)}
    if outcome.get("code") == STOPPED_CODE and not folder.model.is_dir():
        return {"kind": STOPPED}
    files = {path.name: path.read_bytes() for path in sorted(Path(folder.model).iterdir()) if path.is_file()}
    return {"kind": EXPORT, "code": outcome.get("code"), "files": files}
