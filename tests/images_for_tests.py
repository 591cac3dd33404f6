"""Image files that exercise every decoding path: good, odd and hostile."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG signature and IHDR claiming width x height, with a tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def write_test_images(folder: Path) -> dict[str, Path]:
    """name -> path of each kind of upload the app and the folder dataset must handle."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    gradient = np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint8)

    def save(name: str, image: Image.Image, **kwargs) -> None:
        paths[name] = folder / name
        image.save(paths[name], **kwargs)

    save("good.png", Image.fromarray(gradient))
    save("rgb.jpg", Image.fromarray(np.stack([gradient, gradient.T, 255 - gradient], -1)))
    save("rgba.png", Image.new("RGBA", (40, 40), (255, 255, 255, 0)))  # fully transparent white -> black
    save("palette.png", Image.fromarray(gradient).convert("P"))
    save("cmyk.jpg", Image.new("CMYK", (40, 40), (0, 255, 255, 0)))
    save("tiny.png", Image.new("L", (1, 1), 255))
    sixteen = (np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)
    save("sixteen.png", Image.fromarray(sixteen))
    frames = [Image.new("L", (32, 32), value) for value in (200, 10, 90)]
    paths["animated.gif"] = folder / "animated.gif"
    frames[0].save(paths["animated.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    paths["empty.png"] = folder / "empty.png"
    paths["empty.png"].write_bytes(b"")
    paths["notes.txt"] = folder / "notes.txt"
    paths["notes.txt"].write_text("this is not an image\n")
    paths["truncated.png"] = folder / "truncated.png"
    paths["truncated.png"].write_bytes(paths["good.png"].read_bytes()[: paths["good.png"].stat().st_size // 2])
    paths["bomb.png"] = folder / "bomb.png"
    png_header_only(paths["bomb.png"], 20000, 20000)
    return paths


def blob_pngs(count: int, colour: bool = False, seed: int = 0) -> dict[str, bytes]:
    """`count` small PNGs of soft blobs (grey, or each channel its own blob), by name."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40]
    files = {}
    for index in range(count):
        channels = []
        for _ in range(3 if colour else 1):
            cy, cx, s = rng.uniform(10, 30), rng.uniform(10, 30), rng.uniform(3, 8)
            channels.append((255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))).astype(np.uint8))
        array = np.stack(channels, -1) if colour else channels[0]
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files[f"blob-{index:03d}.png"] = buffer.getvalue()
    return files


def write_zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path
