"""How many CPUs this process may keep busy, and torch's thread count set to that.

torch starts one thread per CPU it sees (the process's affinity), but a container's CPU quota can be lower: Hugging
Face Spaces set `CPU_CORES`; cgroups v2 write the quota in `cpu.max`, v1 in `cpu.cfs_quota_us` over
`cpu.cfs_period_us`. More busy threads than the quota lets run only take turns, and every parallel operation waits
for the slowest. `usable_cpus` is the least of the three (a quota of 1.5 CPUs counts as 2); `set_torch_threads`
lowers torch's count to it, never raises it (so `OMP_NUM_THREADS`, as the Train tab's child has, still holds).

The cgroup is read where it is mounted, `/sys/fs/cgroup`: in a container (its own cgroup namespace, as Docker and
Spaces run it) that is the container's own.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_FOLDERS = ("cpu", "cpu,cpuacct")  # where cgroups v1 mount the cpu controller
CORES_VARIABLE = "CPU_CORES"  # set on Hugging Face Spaces: the hardware's CPUs


@dataclass(frozen=True)
class CpuBudget:
    """How many CPUs may be kept busy, and what says so (for a log line)."""

    count: int
    source: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _whole_cpus(quota: str, period: str) -> float | None:
    """quota / period in CPUs; None for no quota ("max", -1) or text that is no number."""
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of the cgroup mounted at `root`, in CPUs (e.g. 1.5); None where there is none or none is read."""
    v2 = _read(root / "cpu.max")  # "max 100000", or "150000 100000"
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _whole_cpus(quota, period or "100000")
    for folder in V1_FOLDERS:
        quota = _read(root / folder / "cpu.cfs_quota_us")  # -1: none
        if quota is not None:
            return _whole_cpus(quota, _read(root / folder / "cpu.cfs_period_us") or "100000")
    return None


def _cores_variable(environ) -> float | None:
    try:
        cores = float(environ.get(CORES_VARIABLE, ""))
    except ValueError:
        return None
    return cores if math.isfinite(cores) and cores > 0 else None


def usable_cpus(root: Path = CGROUP_ROOT, environ=os.environ) -> CpuBudget:
    """The least of the CPUs this process may run on, the cgroup's quota (rounded up) and CPU_CORES when set."""
    visible = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    budget = CpuBudget(visible, f"{visible} CPU{'s' if visible != 1 else ''} visible")
    quota = cgroup_cpu_quota(root)
    if quota is not None and math.ceil(quota) < budget.count:
        budget = CpuBudget(math.ceil(quota), f"the cgroup's CPU quota, {quota:g} CPUs")
    cores = _cores_variable(environ)
    if cores is not None and math.ceil(cores) < budget.count:
        budget = CpuBudget(math.ceil(cores), f"{CORES_VARIABLE}={environ[CORES_VARIABLE]}")
    return budget


def set_torch_threads(root: Path = CGROUP_ROOT, environ=os.environ) -> CpuBudget:
    """Lower torch's thread count to the usable CPUs; the count it has then (read back), and why."""
    budget = usable_cpus(root, environ)
    if torch.get_num_threads() > budget.count:
        torch.set_num_threads(budget.count)
    threads = torch.get_num_threads()
    if threads == budget.count:
        return budget
    variable = environ.get("OMP_NUM_THREADS")
    return CpuBudget(threads, f"OMP_NUM_THREADS={variable}" if variable else "torch's default")


def describe_threads(budget: CpuBudget) -> str:
    """e.g. '1 CPU thread (CPU_CORES=1)'."""
    return f"{budget.count} CPU thread{'s' if budget.count != 1 else ''} ({budget.source})"
