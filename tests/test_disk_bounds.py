"""What the app leaves on disk: folders owned by a process (removed by the next one when that process was killed),
the trained models kept within a budget of bytes (a visitor still here never loses theirs), and the output files
and uploads in Gradio's cache bounded by bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gan.files import OWNER_NAME, OwnedFolder, prune_to_bytes, remove_abandoned
from gan.ui.assets import OutputFiles
from gan.ui.trained import KeptModels

OWNER = """
import sys, time
from gan.files import OwnedFolder
print(OwnedFolder("dcgan-test-", sys.argv[1]).path, flush=True)
time.sleep(600)
"""


def test_a_killed_processs_folders_are_removed_and_a_live_ones_are_not(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        theirs = Path(child.stdout.readline().strip())
        mine = OwnedFolder("dcgan-test-", tmp_path)
        (theirs / "run").mkdir()
        assert remove_abandoned("dcgan-test-", tmp_path) == [] and theirs.is_dir()  # alive: left alone
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    being_made = tmp_path / "dcgan-test-new"  # mkdtemp made it, its owner file not yet: not abandoned
    being_made.mkdir()
    assert remove_abandoned("dcgan-test-", tmp_path) == [theirs] and not theirs.exists()
    assert mine.path.is_dir() and being_made.is_dir()
    old = time.time() - 3600
    os.utime(being_made, (old, old))
    assert remove_abandoned("dcgan-test-", tmp_path) == [being_made]
    mine.remove()
    assert not mine.path.exists()


def _folder(path: Path, size: int) -> Path:
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(bytes(size))
    return path


def test_kept_models_of_visitors_still_here_are_never_evicted_and_leavers_go_first(tmp_path):
    kept = KeptModels(max_bytes=3500)
    for name in "abc":
        kept.keep(name, _folder(tmp_path / name, 1000))
    kept.keep("d", _folder(tmp_path / "d", 1000))  # over budget, but everyone is still here: nothing goes
    assert all((tmp_path / name).is_dir() for name in "abcd") and kept.full("e")
    assert not kept.full("a")  # a's next model replaces theirs: a may train again
    kept.left("c")
    kept.left("b")  # over the budget: the earliest departure goes first, until the rest fit
    assert not (tmp_path / "c").exists() and (tmp_path / "b").is_dir() and not kept.full("e")
    kept.keep("a", _folder(tmp_path / "a2", 500))  # a visitor's new model replaces their previous one
    assert not (tmp_path / "a").exists() and kept.total() == 2500 and not kept.full("e")
    kept.forget(tmp_path / "d")  # their session's state dropped
    assert not (tmp_path / "d").exists() and set(kept.models) == {"a", "b"}


def test_files_beyond_a_byte_budget_go_oldest_first_but_never_the_young_or_owner_files(tmp_path):
    owned = OwnedFolder("dcgan-test-", tmp_path)
    now = time.time()
    for index in range(5):
        path = owned.path / f"{index}.bin"
        path.write_bytes(bytes(100))
        os.utime(path, (now - 1000 + index, now - 1000 + index))
    (tmp_path / "upload.bin").write_bytes(bytes(100))  # young: kept whatever the budget
    assert prune_to_bytes(tmp_path, 250, min_age_s=60) == 200
    assert sorted(p.name for p in owned.path.iterdir()) == [OWNER_NAME, "4.bin"]
    assert (tmp_path / "upload.bin").exists()


def test_output_files_and_uploads_beside_them_stay_within_the_budget(tmp_path):
    outputs = OutputFiles(prune_every_s=0, parent=tmp_path, max_bytes=10_000, min_age_s=0)
    uploads = tmp_path / "0123abcd"  # how Gradio keeps an upload: a folder named by its hash
    uploads.mkdir()
    (uploads / "big.png").write_bytes(bytes(8_000))
    for _ in range(10):
        outputs.write(bytes(1_000), ".zip")
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total <= 10_000 and not (uploads / "big.png").exists()  # the oldest went first
    assert len(list(outputs.folder.glob("*.zip"))) == 10
