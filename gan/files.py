"""The ground floor for files: writes that a crash never leaves half done, the temporaries a killed write leaves,
and the cache folder. Everything that writes files builds on these; they import nothing of the package."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    """The process's umask (os.umask can only be read by setting it: done once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; mkstemp's files are 0600


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename over path, so a crash never leaves a half-written file (only a
    `.NAME.*.tmp` beside it, which `remove_temporaries` cleans). The file gets the user's umask, like any other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the `.NAME.*.tmp` files that a killed `atomic_write` leaves in folder (not below it); only safe while
    no process writes there (training holds the run folder's lock)."""
    if not folder.is_dir():
        return []
    stale = [
        p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMPORARY_SUFFIX) and p.is_file()
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def cache_dir() -> Path:
    """Writable cache for unpacked dataset files, decoded datasets and measured verdicts (DCGAN_CACHE, else XDG
    cache)."""
    base = os.environ.get("DCGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dcgan-studio"
    )
    return Path(base)
