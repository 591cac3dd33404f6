"""Noto emoji (colour): every glyph of the colour bitmap strike (the CBDT table) of Debian's `fonts-noto-color-emoji`,
as white-backed RGB images.

The font's cmap reaches only 1,446 of the 3,926 bitmaps; the others are reached through GSUB ligatures (ZWJ
sequences, skin tones, flags, keycaps), so every glyph of the strike is read, whatever reaches it. The bitmaps are
136x128 PNGs, nearly all palette images with a transparency chunk: each is converted to RGBA, padded to a square on
white (centred, the aspect kept) and composited on white, then resized with Lanczos antialiasing. Byte-identical
bitmaps are kept once (the first in the strike's order): the skin tones of the snowboarder, whose skin never shows,
and four families drawn twice.

fontTools reads the font; it is imported only here, and only when the decoded set is not cached. The images of each
size, the glyphs they come from, their groups and the credit (the font's and the Debian package's versions) are cached
under `files.cache_dir()`, keyed by the font file's path, size and modification time, so a second load reads one
array and never opens the font.

`base_sequences` gives one group per image: the emoji sequence of its glyph without skin-tone modifiers, so that a
split by group keeps an emoji's skin-tone siblings on one side.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from ..files import atomic_write, cache_dir

NOTO_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # Debian's fonts-noto-color-emoji
FONT_ENV = "DCGAN_NOTO_EMOJI_FONT"  # another copy of the font (the tests point it at a missing file)
FONT_NAME = NOTO_EMOJI_FONT.name  # what --data-dir DIR is searched for
PACKAGE = "fonts-noto-color-emoji"
PACKAGE_DOC = Path("/usr/share/doc") / PACKAGE  # its changelog.Debian.gz names the package version
DPKG_STATUS = Path("/var/lib/dpkg/status")
SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))  # the Fitzpatrick modifiers U+1F3FB..U+1F3FF
BACKGROUND = (255, 255, 255)
CACHE_VERSION = 1  # bump when the decoding changes: older caches are then ignored


@dataclass(frozen=True)
class Glyphs:
    """The strike's unique bitmaps, in its order: each glyph's name, its group (`base_sequences`) and its PNG."""

    names: list[str]
    groups: list[str]
    pngs: list[bytes]
    read: int  # bitmaps in the strike, duplicates included
    credit: str


def font_path(data_dir: Path | None = None) -> Path:
    """The font to read: --data-dir (the font file, or a folder holding NotoColorEmoji.ttf), else the file
    $DCGAN_NOTO_EMOJI_FONT names, else Debian's."""
    if data_dir is not None:
        return data_dir if data_dir.suffix.lower() in (".ttf", ".otf") else data_dir / FONT_NAME
    return Path(os.environ.get(FONT_ENV) or NOTO_EMOJI_FONT)


def noto_emoji_here() -> bool:
    """Whether the font is on this machine."""
    return font_path().is_file()


def _missing(path: Path) -> DataError:
    return DataError(f"noto-emoji reads the font {path}, which is not there: apt install {PACKAGE}")


# -- reading the font (fontTools) ------------------------------------------------------------------------------------
def _open_font(path: Path):
    try:
        from fontTools.ttLib import TTFont  # the one place fontTools is imported
    except ImportError:
        raise DataError("noto-emoji reads the font with fontTools: pip install -r requirements.txt") from None
    if not path.is_file():
        raise _missing(path)
    try:
        font = TTFont(str(path), lazy=True)
        font["CBDT"].strikeData  # noqa: B018 (decompiles the table: a font without colour bitmaps fails here)
    except Exception as error:
        raise DataError(f"{path} is not a colour bitmap (CBDT) font fontTools can read ({error})") from None
    return font


def read_strike(font) -> dict[str, bytes]:
    """Every glyph of the font's first CBDT strike -> its PNG, in the strike's order."""
    strikes = font["CBDT"].strikeData
    if not strikes:
        raise DataError("the font has no colour bitmap strike")
    pngs = {}
    for name, bitmap in strikes[0].items():
        if "imageData" not in bitmap.__dict__:  # fontTools decompiles a bitmap when first asked
            bitmap.decompile()
        pngs[name] = bytes(bitmap.imageData)
    return pngs


def _sequences(font) -> dict[str, set[tuple[int, ...]]]:
    """Each glyph -> the code point sequences that reach it: the cmap's single code points, and GSUB ligatures of
    glyphs whose sequences are known (repeated until nothing new: a ligature's component may be a ligature)."""
    sequences: dict[str, set[tuple[int, ...]]] = {}
    for code, glyph in font.getBestCmap().items():
        sequences.setdefault(glyph, set()).add((code,))
    ligatures = []
    if "GSUB" in font and font["GSUB"].table.LookupList is not None:
        for lookup in font["GSUB"].table.LookupList.Lookup:
            for table in lookup.SubTable:
                table = getattr(table, "ExtSubTable", table)  # an extension lookup wraps its subtable
                for first, entries in (getattr(table, "ligatures", None) or {}).items():
                    ligatures += [((first, *entry.Component), entry.LigGlyph) for entry in entries]
    for _ in range(8):  # ligatures of ligatures, a few levels at most
        added = False
        for components, glyph in ligatures:
            if all(c in sequences for c in components):
                sequence = tuple(code for c in components for code in min(sequences[c]))
                if sequence not in sequences.setdefault(glyph, set()):
                    sequences[glyph].add(sequence)
                    added = True
        if not added:
            break
    return sequences


def sequence_id(codes: tuple[int, ...]) -> str:
    """A code point sequence as Noto names its files: u1F469_200D_2764."""
    return "u" + "_".join(f"{code:04X}" for code in codes)


def _groups(names: list[str], sequences: dict[str, set[tuple[int, ...]]], same: list[list[str]]) -> list[str]:
    """One group per glyph of `names`: glyphs sharing a base sequence (a sequence without skin tones), or listed
    together in `same`, are one group, named by its least base sequence (a glyph nothing reaches: its own name)."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = key = parent[parent[key]]
        return key

    def union(a: str, b: str) -> None:
        parent[root(a)] = root(b)

    for glyph, found in sequences.items():
        for sequence in found:
            union("glyph:" + glyph, sequence_id(tuple(c for c in sequence if c not in SKIN_TONES)))
    for glyphs in same:
        for other in glyphs[1:]:
            union("glyph:" + glyphs[0], "glyph:" + other)
    members: dict[str, list[str]] = {}
    for key in list(parent):
        members.setdefault(root(key), []).append(key)
    name = {
        top: min((k for k in keys if not k.startswith("glyph:")), default=min(keys)[len("glyph:") :])
        for top, keys in members.items()
    }
    return [name[root("glyph:" + glyph)] for glyph in names]


def _version(font) -> str:
    """The font's version, as its name table says it (`2.042`, and the upstream release `noto-emoji:20231129`)."""
    text = str(font["name"].getDebugName(5) or "") if "name" in font else ""
    version = re.match(r"Version\s+([\w.]+)", text)
    release = re.search(r"noto-emoji:(\d{8})", text)
    if version is None:
        return f"{font['head'].fontRevision:.3f}"
    return version.group(1) + (f", upstream noto-emoji {release.group(1)}" if release else "")


def debian_version(path: Path) -> str | None:
    """The version of the Debian package that installed the font at `path` (its changelog, else dpkg's status), or
    None for a font from elsewhere."""
    if path.resolve() != NOTO_EMOJI_FONT.resolve():
        return None
    try:
        with gzip.open(PACKAGE_DOC / "changelog.Debian.gz", "rt", encoding="utf-8") as changelog:
            found = re.match(rf"{re.escape(PACKAGE)} \(([^)\s]+)\)", changelog.readline())
        if found:
            return found.group(1)
    except OSError:
        pass
    try:
        for stanza in DPKG_STATUS.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            if re.search(rf"^Package: {re.escape(PACKAGE)}$", stanza, re.M):
                found = re.search(r"^Version: (\S+)$", stanza, re.M)
                return found.group(1) if found else None
    except OSError:
        pass
    return None


def read_glyphs(path: Path) -> Glyphs:
    """The strike of the font at `path`: its unique bitmaps, their groups and the credit naming the versions."""
    font = _open_font(path)
    try:
        pngs = read_strike(font)
        sequences = _sequences(font)
        version = _version(font)
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"could not read the colour bitmaps of {path} ({error})") from None
    finally:
        font.close()
    kept: dict[bytes, list[str]] = {}  # digest -> the glyphs of that bitmap, the first one kept
    for name, png in pngs.items():
        kept.setdefault(hashlib.sha256(png).digest(), []).append(name)
    names = [glyphs[0] for glyphs in kept.values()]
    package = debian_version(path)
    credit = f"Noto Color Emoji by Google (font {version}" + (f"; Debian's {PACKAGE} {package})" if package else ")")
    return Glyphs(
        names=names,
        groups=_groups(names, sequences, [glyphs for glyphs in kept.values() if len(glyphs) > 1]),
        pngs=[pngs[name] for name in names],
        read=len(pngs),
        credit=credit,
    )


# -- decoding ----------------------------------------------------------------------------------------------------------
def decode_glyph(png: bytes, image_size: int) -> np.ndarray:
    """One bitmap as uint8 (3, image_size, image_size): padded to a square and composited on white, then resized with
    Lanczos antialiasing."""
    with Image.open(io.BytesIO(png), formats=["PNG"]) as opened:
        rgba = opened.convert("RGBA")
    side = max(rgba.size)
    square = Image.new("RGB", (side, side), BACKGROUND)
    square.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2), mask=rgba)
    if side != image_size:
        square = square.resize((image_size, image_size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)


# -- the cache ---------------------------------------------------------------------------------------------------------
def _cache_folder(path: Path) -> Path:
    stat = path.stat()
    key = f"{CACHE_VERSION}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return cache_dir() / "noto-emoji" / hashlib.sha1(key.encode()).hexdigest()[:16]


def _write_json(path: Path, value: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value)))


def _cached_glyphs(path: Path) -> tuple[dict, Glyphs | None]:
    """The glyph list of the font at `path` ({names, groups, read, credit}), from the cache or read and cached; with
    the Glyphs when the font was read."""
    listing = _cache_folder(path) / "glyphs.json"
    try:
        cached = json.loads(listing.read_text())
        if len(cached["names"]) == len(cached["groups"]) and isinstance(cached["credit"], str):
            return cached, None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    glyphs = read_glyphs(path)
    cached = {"names": glyphs.names, "groups": glyphs.groups, "read": glyphs.read, "credit": glyphs.credit}
    _write_json(listing, cached)
    return cached, glyphs


def _check_font(data_dir: Path | None) -> Path:
    path = font_path(data_dir)
    if not path.is_file():
        raise _missing(path)
    return path


def base_sequences(data_dir: Path | None = None) -> list[str]:
    """One group per image of the set, in its order: the emoji sequence of the image's glyph without its skin-tone
    modifiers (U+1F3FB..U+1F3FF), as `u1F44D` or `u1F469_200D_2764_200D_1F468`; glyphs of byte-identical bitmaps are
    one group. Reads the cache where the set was loaded, else the font's cmap and GSUB ligatures."""
    return list(_cached_glyphs(_check_font(data_dir))[0]["groups"])


def load_noto_emoji(
    data_dir: Path | None, image_size: int, channels: int, download: bool, split: str
) -> tuple[torch.Tensor, None, str, str]:
    """The unique glyphs as uint8 (N, 3, image_size, image_size), no labels, the font's path and the credit (the
    font's and the Debian package's versions). Nothing is downloaded: a missing font names the package."""
    path = _check_font(data_dir)
    listing, glyphs = _cached_glyphs(path)
    array = _cache_folder(path) / f"images-{image_size}.npy"
    images = None
    if glyphs is None:
        try:
            images = np.load(array, allow_pickle=False)
        except (OSError, ValueError):
            pass
    if images is None or images.dtype != np.uint8 or images.shape != (len(listing["names"]), 3, image_size, image_size):
        glyphs = glyphs or read_glyphs(path)
        if glyphs.names != listing["names"]:  # the cache disagrees with the font: start over from the font
            listing = {"names": glyphs.names, "groups": glyphs.groups, "read": glyphs.read, "credit": glyphs.credit}
            _write_json(_cache_folder(path) / "glyphs.json", listing)
            for stale in _cache_folder(path).glob("images-*.npy"):
                stale.unlink(missing_ok=True)
        images = np.stack([decode_glyph(png, image_size) for png in glyphs.pngs])

        def save(tmp: str) -> None:
            with open(tmp, "wb") as file:
                np.save(file, images, allow_pickle=False)

        atomic_write(array, save)
    return torch.from_numpy(np.ascontiguousarray(images)), None, str(path), listing["credit"]
