"""Faults a training run survives: torn logs, empty or corrupt checkpoints, read-only and full disks, leftovers of
killed runs, two runs on one folder; and file modes that follow the user's umask.

Read-only and full disks are real tmpfs mounts in a private mount namespace (`unshare -m`, as root, which CI is);
where that is not possible they skip, and an injected ENOSPC at the checkpoint write covers the full-disk path.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, tiny_mnist_args, train

from gan import checkpoint, files
from gan.checkpoint import list_training_states, load_model, load_training_state
from gan.run_folder import STORAGE_EXIT
from gan.runlog import read_metrics

pytestmark = pytest.mark.slow


def _common(idx_dir, out, steps: int, *extra) -> list[str]:
    every = ["--log-every", "1", "--checkpoint-every", "2", "--keep-last", "0", "--sample-every", "100"]
    return tiny_mnist_args(idx_dir, out, "--steps", str(steps), *every, "--eval-every", "0", *extra)


def _steps(out: Path) -> list[int]:
    return [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss_d" in r]


def _can_mount() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(not _can_mount(), reason="needs root and `unshare -m` for a private tmpfs mount")


def _in_private_mount(script: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace: its tmpfs mounts vanish with it."""
    return subprocess.run(
        ["unshare", "-m", "sh", "-euc", script], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_a_torn_metrics_line_neither_breaks_resume_nor_repeats_steps(tmp_path, idx_dir, capsys):
    """As after a kill: steps logged after the last checkpoint, then a line torn mid-write. Resume cuts the log back
    to the resumed step, so every step appears once."""
    out = tmp_path / "run"
    assert train(_common(idx_dir, out, 5)) == 0  # checkpoints at 2, 4 and (the end) 5
    list_training_states(out / "checkpoints")[-1].unlink()  # killed before the final checkpoint: log holds step 5
    with open(out / "metrics.jsonl", "a") as log:
        log.write('{"step": 6, "loss_d": 0.6')  # torn: no end, no newline
    assert _steps(out) == [1, 2, 3, 4, 5]  # readers skip the torn line
    capsys.readouterr()
    assert train([*_common(idx_dir, out, 7), "--resume", "auto"]) == 0
    assert "metrics.jsonl: 2 line(s) after step 4 (the state resumed) removed" in capsys.readouterr().out
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert _steps(out) == [1, 2, 3, 4, 5, 6, 7]


def test_an_empty_newest_checkpoint_falls_back_to_the_one_before(tmp_path, idx_dir, capsys):
    out = tmp_path / "run"
    assert train(_common(idx_dir, out, 6)) == 0
    states = list_training_states(out / "checkpoints")
    states[-1].write_bytes(b"")  # step 6: empty
    states[-2].write_bytes(states[-2].read_bytes()[:1000])  # step 4: truncated
    capsys.readouterr()
    assert train([*_common(idx_dir, out, 8), "--resume", "auto"]) == 0
    output = capsys.readouterr().out
    assert f"warning: {states[-1]} is not a readable DCGAN Studio training state (the file is empty)" in output
    assert f"warning: {states[-2]} is not a readable" in output
    assert f"resuming from {states[-3]} (step 2)" in output
    assert load_model(out / "model").metadata["training"]["steps"] == 8
    # an explicit state that cannot be read: one line, why
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"")
    assert train([*_common(idx_dir, out, 10), "--resume", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad} is not a readable DCGAN Studio training state (the file is empty)"]
    # none readable: one line, and nothing is deleted
    for path in list_training_states(out / "checkpoints"):
        path.write_bytes(b"not a checkpoint")
    count = len(list_training_states(out / "checkpoints"))
    assert train([*_common(idx_dir, out, 10), "--resume", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: none of the {count} training states in") and "start again with a new --out" in err
    assert len(list_training_states(out / "checkpoints")) == count


def test_leftover_temporaries_are_removed_and_modes_follow_the_umask(tmp_path, idx_dir, capsys):
    out = tmp_path / "run"
    assert train(_common(idx_dir, out, 4)) == 0
    leftovers = [out / "checkpoints" / ".step_0000006.pt.k2j4.tmp", out / "model" / ".model.safetensors.x8q1.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    capsys.readouterr()
    assert train([*_common(idx_dir, out, 6), "--resume", "auto"]) == 0
    assert "removed 2 half-written file(s)" in capsys.readouterr().out
    assert not any(path.exists() for path in leftovers)
    # atomically written files get the mode any new file gets (the umask's), like the PNGs beside them
    png_mode = stat.S_IMODE((out / "model" / "samples.png").stat().st_mode)
    for path in [
        *(out / "model").glob("*.safetensors"),
        out / "model" / "config.json",
        *list_training_states(out / "checkpoints"),
    ]:
        assert stat.S_IMODE(path.stat().st_mode) == png_mode == files.FILE_MODE, path


def test_a_second_run_on_the_same_folder_is_refused_and_touches_nothing(tmp_path, idx_dir):
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "train.py"), *_common(idx_dir, out, 100000)]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not list_training_states(out / "checkpoints") and time.time() < deadline:
            time.sleep(0.1)
        live = out / "checkpoints" / ".step_9999998.pt.live.tmp"  # as the live run's atomic write would leave it
        live.write_bytes(b"being written")
        second = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), *_common(idx_dir, out, 10), "--resume", "auto"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: another training run is using --out {out}: wait for it to end, or choose another --out"
        ]
        assert live.exists()
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM


@needs_mounts
def test_a_read_only_out_is_refused_before_the_data_loads(tmp_path, idx_dir):
    mount = tmp_path / "ro"
    mount.mkdir()
    result = _in_private_mount(
        f"mount -t tmpfs -o ro,size=1m tmpfs {mount}\n"
        f"{sys.executable} train.py {' '.join(_common(idx_dir, mount / 'run', 4))}"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --out {mount / 'run'} cannot be written (Read-only file system): choose a folder you can write to"
    ]
    assert "training a" not in result.stdout


@needs_mounts
def test_a_full_disk_keeps_the_last_good_state_and_resumes_once_freed(tmp_path, idx_dir):
    """A 400 KB tmpfs fills up with checkpoints (all kept); the run stops with one line naming the last good state.
    Grown to 50 MB, the same folder resumes from it and finishes."""
    mount = tmp_path / "small"
    mount.mkdir()
    out = mount / "run"
    state_step = (
        "import sys; from pathlib import Path; from gan.checkpoint import list_training_states, "
        "load_training_state; print(load_training_state(list_training_states(Path(sys.argv[1]))[-1])['step'])"
    )
    script = (
        f"mount -t tmpfs -o size=400k tmpfs {mount}\n"
        f'set +e; {sys.executable} train.py {" ".join(_common(idx_dir, out, 100000))}; echo "rc=$?"; set -e\n'
        f'STEP=$({sys.executable} -c "{state_step}" {out / "checkpoints"})\n'
        "echo loads: $STEP\n"
        f"mount -o remount,size=50m {mount}\n"
        f"{sys.executable} train.py {' '.join(_common(idx_dir, out, 1))} --resume auto --steps $((STEP + 2))\n"
        "echo resumed-rc=$?\n"
    )
    result = _in_private_mount(script)
    assert f"rc={STORAGE_EXIT}" in result.stdout, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "(No space left on device); the last good training state is" in errors[0]
    assert errors[0].endswith(f"free some space, then continue with --out {out} --resume auto")
    last_good = int(errors[0].split("step_")[1].split(".pt")[0])
    assert f"loads: {last_good}" in result.stdout
    assert f"resuming from {out}/checkpoints/step_{last_good:07d}.pt" in result.stdout
    assert "resumed-rc=0" in result.stdout, result.stderr


def test_a_full_disk_at_a_checkpoint_is_one_line(tmp_path, idx_dir, monkeypatch, capsys):
    """Where no tmpfs can be mounted: ENOSPC injected at the checkpoint write, after two good states."""
    save = checkpoint.save_training_state
    calls = []

    def fill_up(path, state):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        save(path, state)

    monkeypatch.setattr(checkpoint, "save_training_state", fill_up)
    out = tmp_path / "run"
    assert train(_common(idx_dir, out, 10)) == STORAGE_EXIT  # not 2: nothing was wrong with the run's flags
    err = capsys.readouterr().err.strip().splitlines()[-1]
    last = list_training_states(out / "checkpoints")[-1]
    assert err == (
        f"error: could not write {calls[2]} (No space left on device); the last good training state is "
        f"{last}: free some space, then continue with --out {out} --resume auto"
    )
    assert load_training_state(last)["step"] == 4
