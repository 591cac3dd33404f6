"""torch's threads from the CPUs a container may use (gan.cpus): cgroup quota files (v2 and v1) written in a folder
standing for /sys/fs/cgroup, CPU_CORES, the app's first line and the trainer's, in real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, tiny_mnist_args, train

from gan.cpus import cgroup_cpu_quota, usable_cpus

VISIBLE = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),  # cgroups v2
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu.max": "max 100000\n"}, None),  # no quota
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),  # cgroups v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "25000\n", "cpu,cpuacct/cpu.cfs_period_us": "50000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_the_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_the_usable_cpus_are_the_least_of_affinity_quota_and_cpu_cores(tmp_path):
    assert usable_cpus(tmp_path, {}).count == VISIBLE  # no quota: every CPU this process may run on
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: one thread
    assert usable_cpus(tmp_path, {}) == usable_cpus(tmp_path, {"CPU_CORES": "64"})
    assert usable_cpus(tmp_path, {}).count == 1
    (tmp_path / "cpu.max").write_text(f"{100000 * VISIBLE + 1} 100000\n")  # a quota above the CPUs: rounded up
    assert usable_cpus(tmp_path, {}).count == VISIBLE
    assert usable_cpus(tmp_path, {"CPU_CORES": "1"}).count == 1
    assert usable_cpus(tmp_path, {"CPU_CORES": "zero"}).count == VISIBLE  # not a number: not a limit


def _first_line(process: subprocess.Popen) -> str:
    try:
        return process.stdout.readline()
    finally:
        process.kill()
        process.wait()


def test_the_app_sets_torch_threads_from_cpu_cores_and_says_so_first(tiny_run):
    env = {**os.environ, "CPU_CORES": "1"}
    env.pop("OMP_NUM_THREADS", None)
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--checkpoint", str(tiny_run / "model"), "--port", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = _first_line(app)  # printed before gradio loads: the app need not start serving
    assert re.fullmatch(r"serving \S+ from .+, on 1 CPU thread \((CPU_CORES=1|1 CPU visible)\)\n", line), line


def test_the_trainer_sets_torch_threads_from_cpu_cores(idx_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CPU_CORES", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    try:
        assert train(tiny_mnist_args(idx_dir, tmp_path / "run", "--steps", "1")) == 0
    finally:
        torch.set_num_threads(threads)  # this process's, for the tests after
    assert ", 1 thread, " in capsys.readouterr().out.splitlines()[0]
