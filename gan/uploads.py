"""A visitor's own training images for the app's Train tab: image files and zip archives, checked against caps before
anything is decoded or expanded, then decoded by the same safe decoder as every upload (images.py: pixel caps from the
header, modes, transparency) and fitted to 32 px as a folder dataset is (center crop, bicubic resize).

A zip's end record says how many entries its central directory lists: over MAX_ZIP_ENTRIES in all (folders and hidden
files included) is refused before the directory is read (600,000 entries of hidden files take seconds and hundreds of
MB to list). The directory is read next: more than MAX_FILES members, more than MAX_TOTAL_BYTES uncompressed in all,
or a member that would expand more than MAX_RATIO times (a zip bomb) is refused before any member is read.
Members are then read into memory, at most their declared size (a member whose data runs past it fails its check);
nothing is extracted, so no member's path can reach the file system. Members and files are decoded within a time
budget (gan.decoding: in a child process, each file within its limit, all of them within DECODE_S and
MAX_TOTAL_PIXELS); the images are written as 00000.png... by `write_images`, into a folder the trainer reads as
`--dataset folder`.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch

from .decoding import Budget, fit_files
from .errors import ImageInputError
from .images import image_to_uint8
from .sampling import to_pil

MIN_IMAGES = 64
MAX_FILES = 5000  # images per run: files uploaded, or members of the zips uploaded, in all
MAX_ZIP_ENTRIES = 4 * MAX_FILES  # entries of the zips uploaded, in all: folders, hidden files and resource forks too
MAX_TOTAL_BYTES = 256 * 2**20  # the files' sizes in all, a zip's members counted uncompressed
MAX_RATIO = 100  # a zip member may expand at most this many times (PNG and JPEG hardly compress at all)
RATIO_FROM = 2**20  # ... once it expands to more than this (tiny members compress well and are harmless)
MAX_TOTAL_PIXELS = 2**28  # decoded pixels in all (16 images at the 4096x4096 cap; a JPEG counts at its reduced scale)
DECODE_S = 30  # decoding a run's images in all at most (a run of 5000 small images takes a few seconds)
IMAGE_SIZE = 32


@dataclass
class TrainingImages:
    """The usable images fitted to IMAGE_SIZE (grey when every one is grey), and one line per file skipped."""

    images: torch.Tensor  # uint8 (N, C, IMAGE_SIZE, IMAGE_SIZE)
    skipped: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def _size(value: int) -> str:
    return f"{value / 2**20:.1f} MB" if value >= 2**20 else f"{value / 1024:.0f} KB"


def _listed(info: zipfile.ZipInfo) -> bool:
    """A zip member worth reading: a file, not hidden, not macOS's resource forks."""
    path = PurePosixPath(info.filename)
    return not info.is_dir() and not path.name.startswith(".") and "__MACOSX" not in path.parts


END_RECORD = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries in all, directory size, offset...
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 end record, disks
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # ..., entries here, entries in all, directory size, offset
SEARCHED = END_RECORD.size + 0xFFFF  # the end record sits within this many bytes of the end (a comment follows it)


def zip_entries(path: str) -> int | None:
    """How many entries a zip's central directory lists, read from its end record (zip64's where it has one) without
    reading the directory itself; None for a file without an end record (not a zip)."""
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - SEARCHED))
        tail = file.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < END_RECORD.size:
            return None
        entries = END_RECORD.unpack_from(tail, at)[3]
        locator_at = at - ZIP64_LOCATOR.size
        if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
            offset = ZIP64_LOCATOR.unpack_from(tail, locator_at)[2]
            file.seek(offset)
            record = file.read(ZIP64_END_RECORD.size)
            if len(record) == ZIP64_END_RECORD.size and record[:4] == b"PK\x06\x06":
                entries = max(entries, ZIP64_END_RECORD.unpack(record)[7])
        return entries


def _zip_members(path: str, name: str) -> list[zipfile.ZipInfo]:
    """The members of a zip worth reading, after the checks of its central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if _listed(info)]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ImageInputError(f"{name}: not a zip file that can be read ({error})") from None
    if len(members) > MAX_FILES:
        raise ImageInputError(f"{name} holds {len(members)} files, over the limit of {MAX_FILES} per run")
    total = sum(info.file_size for info in members)
    if total > MAX_TOTAL_BYTES:
        raise ImageInputError(
            f"{name} expands to {_size(total)}, over the limit of {_size(MAX_TOTAL_BYTES)} per run; zip fewer images"
        )
    for info in members:
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ImageInputError(
                f"{name}: {PurePosixPath(info.filename).name} would expand from {_size(info.compress_size)} to "
                f"{_size(info.file_size)} (over {MAX_RATIO}x): refused as a zip bomb"
            )
    return members


def _entries(paths: list[str], names: list[str]) -> Iterator[tuple[str, str | bytes | None, str | None]]:
    """(name, the file's path or a zip member's bytes, or None and the reason it cannot be read) for every image
    candidate, after the caps on their number and total size."""
    plan, count, total, entries = [], 0, 0, 0
    for path, name in zip(paths, names, strict=True):
        if zipfile.is_zipfile(path):
            entries += zip_entries(path) or 0  # every entry, counted before the directory is read
            if entries > MAX_ZIP_ENTRIES:
                raise ImageInputError(
                    f"{name}: the zips list over {MAX_ZIP_ENTRIES} entries in all (folders and hidden files "
                    f"included), the limit per run; zip only the images"
                )
            members = _zip_members(path, name)
            plan.append((path, name, members))
            count, total = count + len(members), total + sum(info.file_size for info in members)
        else:
            plan.append((path, name, None))
            count, total = count + 1, total + os.path.getsize(path)
        if count > MAX_FILES:
            raise ImageInputError(f"{count} files is over the limit of {MAX_FILES} per run; train on fewer images")
        if total > MAX_TOTAL_BYTES:
            raise ImageInputError(f"the files add up to over {_size(MAX_TOTAL_BYTES)}, the limit per run")
    for path, name, members in plan:
        if members is None:
            yield name, path, None
            continue
        with zipfile.ZipFile(path) as archive:
            for info in members:
                member = f"{name}/{PurePosixPath(info.filename).name}"
                try:
                    with archive.open(info) as stream:
                        yield member, stream.read(info.file_size + 1), None
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, ValueError) as error:
                    yield member, None, f"cannot be read from the zip ({error})"  # encrypted, corrupt, unsupported


def read_images(paths: list[str | os.PathLike], names: list[str] | None = None) -> TrainingImages:
    """The images of `paths` (image files and zips of them) fitted to IMAGE_SIZE; an ImageInputError when the caps
    are exceeded or fewer than MIN_IMAGES are usable. Unusable files are skipped, one line each."""
    paths = [str(path) for path in paths]
    names = names or [Path(path).name for path in paths]
    fitted, skipped = [], []

    def readable() -> Iterator[tuple[str, str | bytes]]:
        for name, data, problem in _entries(paths, names):
            if problem is None:
                yield name, data
            else:
                skipped.append(f"{name}: {problem}")

    for result in fit_files(readable(), IMAGE_SIZE, None, Budget(DECODE_S, MAX_TOTAL_PIXELS), upload=False):
        if result.error:
            skipped.append(result.error)
        else:
            fitted.append(result.image)
    if len(fitted) < MIN_IMAGES:
        reasons = f"; skipped: {'; '.join(skipped[:3])}" + (" ..." if len(skipped) > 3 else "") if skipped else ""
        raise ImageInputError(f"{len(fitted)} usable image(s): training needs at least {MIN_IMAGES}{reasons}")
    grey = all(image.mode == "L" or _is_grey(image) for image in fitted)
    images = torch.stack([image_to_uint8(image.convert("L" if grey else "RGB")) for image in fitted])
    return TrainingImages(images, skipped)


def _is_grey(image) -> bool:
    red, green, blue = image.split()
    return red.tobytes() == green.tobytes() == blue.tobytes()


def write_images(images: torch.Tensor, folder: Path) -> Path:
    """The images as PNG files 00000.png... in `folder` (created): what `--dataset folder` reads back unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        to_pil(image).save(folder / f"{index:05d}.png", compress_level=1)
    return folder
