"""Decoding untrusted image files within a time limit: a web visitor's uploads and a Hub dataset's images.

`images.decode_image` bounds what a file may claim (its pixels, its format, one frame), but Pillow still walks a file's
structure in Python (PNG chunks, JPEG markers, BMP run-length codes...), and a hostile file of a few MB can make that
take seconds or minutes: 2 million empty PNG chunks, a BMP of one-pixel runs. No check of a file's structure can list
every such trick, so the files are decoded in a child process, one at a time, and a file that takes longer than
FILE_LIMIT_S gets its child killed: that file is refused in one line, and the next one gets a fresh child. A request's
files also share a `Budget`: seconds of decoding and decoded pixels in all, beyond which the request is refused.

Each child is `python -m gan.decoding`, which loads Pillow and numpy only (not torch, nor the app's main module as a
multiprocessing child would), so a fresh one is ready in a fraction of a second; idle children are kept for the next
files. They run at a lower priority than the app (CHILD_NICENESS), so that decoding one visitor's uploads slows
another visitor's samples as little as the CPU allows. They talk over a socket pair. What crosses back is the image
already fitted to the model's size (`fit_upload` or `fit_image`), never a full-size image.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from PIL import Image

from .errors import ImageInputError
from .images import decode_image, fit_image, fit_upload

FILE_LIMIT_S = 3.0  # one file's decoding at most: several times what a file at the pixel cap takes
KEPT_CHILDREN = 4  # idle children kept for the next files
CHILD_NICENESS = 10  # children yield the CPU to the app's own work (another visitor's samples)


@dataclass(frozen=True)
class Budget:
    """What one request's files may cost in all: seconds of decoding, and pixels decoded (None: no bound)."""

    seconds: float | None
    pixels: int | None


# What one app request's uploads (Score, Saliency, Project) may cost to decode in all: well under the 5 s that no
# request should hold a worker past, and 4 full-size images' pixels (a JPEG counts as decoded: at a reduced scale)
UPLOAD_BUDGET = Budget(seconds=4.0, pixels=64 * 2**20)


@dataclass(frozen=True)
class Fitted:
    """One file's outcome: the image fitted to the model and the notes on its conversions, or the error line."""

    name: str
    image: Image.Image | None
    notes: list[str]
    error: str | None = None


def _fit_in_child(connection: Connection) -> None:
    """The child's loop: (name, file path or bytes, size, channels, upload rule) in; ("ok", mode, size, pixels,
    notes, decoded pixels) or ("error", line) out. `channels` None keeps grey images grey and the others RGB."""
    while True:
        try:
            name, source, size, channels, upload = connection.recv()
        except EOFError:
            return
        try:
            image, notes = decode_image(source, name, fitted_to=size)
            decoded = image.width * image.height
            fit = fit_upload if upload else fit_image
            fitted = fit(image, size, channels or (1 if image.mode == "L" else 3), notes)
            connection.send(("ok", fitted.mode, fitted.size, fitted.tobytes(), notes, decoded))
        except ImageInputError as error:
            connection.send(("error", str(error)))


class _Child:
    """`python -m gan.decoding` and our end of its socket."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])  # the folder holding `gan` (a checkout, a Space)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gan.decoding", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self.connection = Connection(ours.detach())

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.connection.close()


class _Children:
    """Idle children, handed to one caller at a time (thread-safe: Gradio's workers decode at once)."""

    def __init__(self):
        self.idle: list[_Child] = []
        self.lock = threading.Lock()

    def take(self) -> _Child:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return _Child()

    def give_back(self, child: _Child) -> None:
        with self.lock:
            if len(self.idle) < KEPT_CHILDREN:
                self.idle.append(child)
                return
        child.kill()


_children = _Children()


def fit_files(
    files: Iterable[tuple[str, str | Path | bytes]],
    size: int,
    channels: int | None,
    budget: Budget,
    upload: bool = True,
    file_limit_s: float = FILE_LIMIT_S,
) -> Iterator[Fitted]:
    """Each (name, file path or encoded bytes) decoded and fitted to `size` x `size` with `channels` (None: grey
    images grey, others RGB), by `fit_upload` (`upload`) or `fit_image`, in order. A file that cannot be used, or
    takes over `file_limit_s`, yields its error line; going over the `budget` raises ImageInputError."""
    deadline = None if budget.seconds is None else time.monotonic() + budget.seconds
    decoded, child = 0, None
    try:
        for name, source in files:
            child = child or _children.take()
            left = file_limit_s if deadline is None else min(file_limit_s, deadline - time.monotonic())
            child.connection.send((name, source if isinstance(source, bytes) else str(source), size, channels, upload))
            answer = child.connection.recv() if child.connection.poll(max(left, 0)) else None
            if answer is None:  # too slow: the child is killed mid-file
                child.kill()
                child = None
                if deadline is not None and time.monotonic() >= deadline:
                    raise ImageInputError(
                        f"decoding the images took over {budget.seconds:g} s in all (at {name}): send fewer or "
                        "smaller images"
                    )
                yield Fitted(name, None, [], f"{name}: took over {file_limit_s:g} s to decode: refused as malformed")
                continue
            if answer[0] == "error":
                yield Fitted(name, None, [], answer[1])
                continue
            _, mode, fitted_size, pixels, notes, count = answer
            decoded += count
            if budget.pixels is not None and decoded > budget.pixels:
                raise ImageInputError(
                    f"the images hold over {budget.pixels / 1e6:.0f} megapixels in all (at {name}), the limit per "
                    "request: send fewer or smaller images"
                )
            yield Fitted(name, Image.frombytes(mode, fitted_size, pixels), notes)
    except (EOFError, OSError):  # the child died (out of memory, killed): none of its answers can be trusted
        if child is not None:
            child.kill()
            child = None
        raise ImageInputError("the image decoder stopped unexpectedly: try fewer or smaller images") from None
    finally:
        if child is not None:
            _children.give_back(child)


if __name__ == "__main__":  # a child: serve files on the socket whose descriptor is the argument
    os.nice(CHILD_NICENESS)
    _fit_in_child(Connection(int(sys.argv[1])))
