"""The ground floor for files: writes that a crash never leaves half done, the temporaries a killed write leaves,
a process's own temporary folders (which the next process removes if it was killed), folders bounded by bytes, and
the cache folder. Everything that writes files builds on these; they import nothing of the package."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
OWNER_NAME = ".owner"  # in an owned folder: the file its process holds locked while it lives
UNCLAIMED_S = 60  # an owned folder without its owner file yet is being made, unless it is older than this


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


class OwnedFolder:
    """A temporary folder `PREFIX*` that this process owns: it holds OWNER_NAME locked (the kernel lets go of the lock
    when the process dies, however it dies), so `remove_abandoned` in a later process can tell it from a live
    process's folder. `remove()` deletes it; call it at exit."""

    def __init__(self, prefix: str, parent: str | Path | None = None):
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self.owner = os.open(self.path / OWNER_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.owner, fcntl.LOCK_EX)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.owner)


def remove_abandoned(prefix: str, parent: str | Path | None = None) -> list[Path]:
    """Delete the `PREFIX*` folders in `parent` (the temporary folder by default) whose process has gone: their
    OWNER_NAME is not locked. Returns them."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if not folder.is_dir() or folder.is_symlink():
                continue
            owner = os.open(folder / OWNER_NAME, os.O_RDONLY)
        except FileNotFoundError:
            try:  # just made by mkdtemp, its owner file not yet: not abandoned, unless it stayed so
                if time.time() - folder.stat().st_mtime < UNCLAIMED_S:
                    continue
            except OSError:
                continue
        except OSError:
            continue  # another user's, or unreadable: not ours to judge
        else:
            try:
                fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process lives
            finally:
                os.close(owner)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _files_below(folder: Path) -> list[tuple[float, int, Path]]:
    """(modification time, size, path) of the regular files below `folder`, symlinks and vanished files left out."""
    found = []
    for path in folder.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink():
            found.append((info.st_mtime, info.st_size, path))
    return found


def folder_bytes(folder: Path) -> int:
    return sum(size for _, size, _ in _files_below(folder))


def prune_to_bytes(folder: Path, max_bytes: int, min_age_s: float = 0) -> int:
    """Delete the oldest files below `folder` (by modification time) until the rest take at most `max_bytes`; files
    younger than `min_age_s` are kept whatever their size (a handler may be reading them), and so are owned folders'
    owner files. Returns the bytes left."""
    files = [entry for entry in _files_below(folder) if entry[2].name != OWNER_NAME]
    total, now = sum(size for _, size, _ in files), time.time()
    for mtime, size, path in sorted(files):
        if total <= max_bytes or now - mtime < min_age_s:
            break
        path.unlink(missing_ok=True)
        total -= size
    return total


def cache_dir() -> Path:
    """Writable cache for unpacked dataset files, decoded datasets and measured verdicts (DCGAN_CACHE, else XDG
    cache)."""
    base = os.environ.get("DCGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dcgan-studio"
    )
    return Path(base)
