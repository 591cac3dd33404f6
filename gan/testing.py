"""What tests and benchmarks share (as diffusers keeps its testing utilities in its package): the app launched as a
user launches it, and hostile image files and zips, built in memory, each small to send and costly for a naive
reader (see gan.decoding and gan.uploads)."""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
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
