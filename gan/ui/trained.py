"""The Train tab's files on disk: one folder per app for its runs (`dcgan-train-*`, owned: the folder of an app that
was killed is removed when the next app starts, and an app removes its own at exit), and the models that visitors
trained, kept within a budget of bytes.

A visitor's model stays while they are here, whatever others train: runs of others never evict it. When they leave
(the page's unload), their model stays until its space is needed: beyond the budget, the models of visitors who left
go, the earliest departure first, and at the latest when Gradio drops their session's state (an hour after). When the
models of visitors still here fill the budget, no new run starts until some leave.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..files import folder_bytes

RUNS_PREFIX = "dcgan-train-"
MAX_KEPT_BYTES = 4 * 2**30  # trained models kept in all (a width-64 run's folder is ~40 MB, a tiny one's ~1 MB)
KEPT_BYTES_VARIABLE = "GAN_KEPT_MODELS_MB"  # a host's own budget, in MB


def kept_budget() -> int:
    """The budget for kept models: $GAN_KEPT_MODELS_MB (MB, may be fractional) if set, else MAX_KEPT_BYTES."""
    value = os.environ.get(KEPT_BYTES_VARIABLE)
    if not value:
        return MAX_KEPT_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(f"${KEPT_BYTES_VARIABLE} must be a number of megabytes, not {value!r}") from None
    return int(megabytes * 2**20)


@dataclass
class _Kept:
    folder: Path
    size: int
    left: float | None = None  # when its visitor left; None while they are here


class KeptModels:
    """Each visitor's latest trained model (its run folder), by session, within `max_bytes` (see the module's
    docstring). Thread-safe; folders are deleted outside the lock."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.models: dict[str, _Kept] = {}
        self.lock = threading.Lock()

    def total(self) -> int:
        return sum(kept.size for kept in self.models.values())

    def keep(self, session: str, folder: Path) -> None:
        """`folder` becomes `session`'s model, replacing its previous one; then models of visitors who left go, the
        earliest departure first, while the budget is exceeded."""
        size = folder_bytes(folder)
        with self.lock:
            old = self.models.pop(session, None)
            self.models[session] = _Kept(folder, size)
            gone = [old.folder] if old is not None else []
            gone += self._evict()
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)

    def _evict(self) -> list[Path]:
        gone, total = [], self.total()
        for session, kept in sorted(
            ((s, k) for s, k in self.models.items() if k.left is not None), key=lambda item: item[1].left
        ):
            if total <= self.max_bytes:
                break
            del self.models[session]
            total -= kept.size
            gone.append(kept.folder)
        return gone

    def left(self, session: str) -> None:
        """The visitor left: their model may go when its space is needed."""
        with self.lock:
            if session in self.models:
                self.models[session].left = time.monotonic()
            gone = self._evict()
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)

    def forget(self, folder: Path) -> None:
        """The model in `folder` goes now (its session's state was dropped)."""
        with self.lock:
            for session, kept in list(self.models.items()):
                if kept.folder == folder:
                    del self.models[session]
        shutil.rmtree(folder, ignore_errors=True)

    def full(self, session: str) -> bool:
        """Whether the models kept fill the budget (after those of visitors who left went), not counting `session`'s
        own, which its next model replaces: no new run for `session` then."""
        with self.lock:
            gone = self._evict()
            own = self.models[session].size if session in self.models else 0
            full = self.total() - own >= self.max_bytes
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return full
