"""What tests and benchmarks share (as diffusers keeps its testing utilities in its package): the app launched as a
user launches it, a generator run as ZeroGPU runs it, and hostile image files and zips, built in memory, each small to
send and costly for a naive reader (see gan.decoding and gan.uploads)."""

from __future__ import annotations

import contextvars
import io
import multiprocessing
import pickle
import socket
import struct
import subprocess
import sys
import time
import traceback
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout (or Space) holding app.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """`python app.py ARGS` on a free port, ready to answer once constructed; `cwd` holds the app.py to run (a
    downloaded Space, or this checkout)."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, str(cwd / "app.py"), *args, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{log.read_text()}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        self.process.kill()
        raise RuntimeError(f"app did not start in 90 s:\n{log.read_text()}")

    def alive(self) -> bool:
        return self.process.poll() is None and urllib.request.urlopen(self.url, timeout=5).status == 200

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


_VALUE, _ERROR, _END, _ABORTED = "value", "error", "end", "aborted"  # the kinds of item from a ZeroGPU worker


class ZeroGPUCall:
    """`fn(*args, **kwargs)`, a generator function, run as ZeroGPU's `@spaces.GPU` runs one (spaces 0.51.3,
    spaces/zero/wrappers.py, generator_function_wrapper), for tests: off ZeroGPU `spaces.GPU(fn)` is `fn` itself.
    Iterate it once; `process` is then the worker.

    As there: the arguments are pickled with ForkingPickler (fn is not: the worker inherits it); the worker is a
    process forked from this one, and runs the generator in a thread of a ThreadPoolExecutor, not its main thread (so
    `signal.signal` raises ValueError there); each value it yields crosses a pipe pickled with ForkingPickler (as
    spaces' SimpleQueue does: a torch.Tensor would cross as a shared-memory handle, see `tensors_in`); after each
    `next()` the worker checks a stop event and, when set, closes the generator at that yield and sends nothing more.
    Closing this iterator (Gradio's cancel) sets that event and waits for the worker's end (at most `close_timeout`
    seconds, then terminates it and raises). An exception from the generator, or a value that does not pickle, ends
    the call with RuntimeError("ZeroGPU worker error: <type>"), as the visitor sees it (the message is lost there; the
    worker's traceback is in the exception's notes); a worker that dies ends it with "... GPU task aborted". Unlike
    ZeroGPU, each call forks a worker of its own, and gr.Error is not passed through (this module imports no gradio).
    """

    close_timeout = 60.0

    def __init__(self, fn: Callable[..., Iterator], *args, **kwargs):
        self.fn = fn
        self.payload = bytes(ForkingPickler.dumps((args, kwargs)))  # an argument that does not pickle raises here
        self.process: multiprocessing.process.BaseProcess | None = None

    def __iter__(self) -> Iterator:
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        stop = context.Event()
        self.process = context.Process(target=_zerogpu_worker, args=(self.fn, self.payload, writer, stop), daemon=True)
        self.process.start()
        writer.close()
        ended = False
        try:
            while True:
                kind, value = _receive(reader)
                ended = kind in (_END, _ABORTED)
                if kind == _VALUE:
                    try:
                        yield value
                    except GeneratorExit:  # as spaces' gradio_handler does; the worker closes at its next yield
                        stop.set()
                        raise
                elif kind == _END:
                    return
                else:
                    error = RuntimeError(f"ZeroGPU worker error: {value[0] if kind == _ERROR else 'GPU task aborted'}")
                    if kind == _ERROR:
                        error.add_note(value[1])
                    raise error
        finally:
            deadline = time.monotonic() + self.close_timeout
            while not ended and reader.poll(max(0.0, deadline - time.monotonic())):  # values after a close: dropped
                ended = _receive(reader)[0] in (_END, _ABORTED)
            self.process.join(max(0.0, deadline - time.monotonic()))
            reader.close()
            if self.process.is_alive():
                self.process.terminate()
                self.process.join()
                raise RuntimeError(f"the ZeroGPU worker did not end within {self.close_timeout:g} s; terminated")


def _receive(reader) -> tuple[str, object]:
    try:
        return reader.recv()
    except EOFError:  # the worker died before its end marker
        return _ABORTED, None


def _failure(error: BaseException) -> tuple[str, tuple[str, str]]:
    return _ERROR, (type(error).__name__, "".join(traceback.format_exception(error)))


def _zerogpu_worker(fn: Callable[..., Iterator], payload: bytes, writer, stop) -> None:
    """The forked worker: spaces' thread_wrapper and iterate."""
    args, kwargs = pickle.loads(payload)

    def iterate() -> None:
        generator = fn(*args, **kwargs)
        while True:
            try:
                value = next(generator)
            except StopIteration:
                break
            except Exception as error:
                writer.send(_failure(error))
                break
            if stop.is_set():
                generator.close()
                break
            try:
                writer.send((_VALUE, value))
            except Exception as error:  # spaces' SimpleQueue raises any failure to pickle as a PicklingError
                writer.send(_failure(pickle.PicklingError(str(error))))
                break

    with ThreadPoolExecutor() as executor:
        executor.submit(contextvars.copy_context().run, iterate)
    writer.send((_END, None))


def tensors_in(value, where: str = "") -> list[str]:
    """Where a torch.Tensor lies in `value` (through dicts, lists and tuples), e.g. ["['files'][2]"]: what a ZeroGPU
    worker should never yield: it would cross as a handle to the worker's shared (or CUDA) memory, not as data."""
    torch = sys.modules.get("torch")  # not imported: no tensor can exist
    if torch is not None and isinstance(value, torch.Tensor):
        return [where]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in tensors_in(item, f"{where}[{key!r}]")]
    if isinstance(value, list | tuple):
        return [found for index, item in enumerate(value) for found in tensors_in(item, f"{where}[{index}]")]
    return []


def tiff_of_many_frames(frames: int = 100_000) -> bytes:
    """An 8x8 grey TIFF whose first IFD chains to `frames` IFDs of nine entries each (11.4 MB for 100,000): Pillow's
    n_frames walks them all, in time that grows faster than their count."""
    entries, ifd_size = 9, 2 + 9 * 12 + 4
    pixels_at = 8 + frames * ifd_size
    out = io.BytesIO(b"II*\0" + struct.pack("<I", 8))
    out.seek(0, io.SEEK_END)
    for index in range(frames):
        following = 8 + (index + 1) * ifd_size if index + 1 < frames else 0
        tags = [(256, 3, 1, 8), (257, 3, 1, 8), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, pixels_at)]
        tags += [(277, 3, 1, 1), (278, 3, 1, 8), (279, 4, 1, 64)]
        out.write(struct.pack("<H", entries) + b"".join(struct.pack("<HHII", *tag) for tag in tags))
        out.write(struct.pack("<I", following))
    return out.getvalue() + bytes(64)


def gif_of_many_frames(frames: int = 1_000_000) -> bytes:
    """An 8x8 GIF of `frames` 1x1 frames (15 MB for a million)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0x80, 0, 0) + bytes(6)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * frames + b"\x3b"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_many_chunks(chunks: int = 2_000_000) -> bytes:
    """An 8x8 grey PNG with `chunks` empty ancillary chunks before its pixels (24 MB for 2 million): Pillow reads each
    in Python."""
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    pixels = zlib.compress(b"".join(b"\0" + bytes(8) for _ in range(8)))
    return header + _png_chunk(b"abCd", b"") * chunks + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def bmp_of_short_runs(side: int = 3900) -> bytes:
    """A side x side 8-bit BMP compressed as run-length codes of one pixel each (30.4 MB at 3900): Pillow decodes
    BMP run lengths in Python."""
    row = struct.pack("BB", 1, 7) * side + b"\0\0"
    pixels = row * side + b"\0\1"
    palette = bytes(4 * 256)
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


def zip_of_hidden_entries(entries: int = 600_000) -> bytes:
    """A zip64 whose central directory lists `entries` empty hidden files named `.h` (28.8 MB for 600,000), all
    pointing at one local header, written with struct: listing that directory costs seconds and hundreds of MB."""
    local = b"PK\x03\x04" + struct.pack("<5H3L2H", 20, 0, 0, 0, 0, 0, 0, 0, 2, 0) + b".h"
    entry = b"PK\x01\x02" + struct.pack("<6H3L5HLL", 20, 20, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0) + b".h"
    directory = entry * entries
    start = len(local)
    end64_at = start + len(directory)
    end64 = b"PK\x06\x06" + struct.pack("<QHHLLQQQQ", 44, 45, 45, 0, 0, entries, entries, len(directory), start)
    locator = b"PK\x06\x07" + struct.pack("<LQL", 0, end64_at, 1)
    end = b"PK\x05\x06" + struct.pack("<4H2LH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return local + directory + end64 + locator + end
