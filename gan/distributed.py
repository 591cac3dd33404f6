"""Multi-process training under `torchrun` (DistributedDataParallel), and a no-op world of one otherwise.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; each process then trains on its own shard of the data with its
own random streams, gradients are averaged by DDP (one wrapper for G, one for D; BatchNorm statistics
stay per process, `broadcast_buffers=False`, since they are only used when sampling, from rank 0), and
rank 0 alone logs, writes checkpoints and samples, exports and pushes.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# BatchNorm statistics stay per rank (they start equal: every rank builds the nets from the same seed);
# torch renamed the option in 2.12, and the new name still syncs at init, which is harmless here.
NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.distributed:
            return module
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, **NO_BUFFER_SYNC)

    def any(self, flag: bool) -> bool:
        """True on every rank when flag is True on some rank (e.g. a signal that reached one process)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, value) -> list:
        """Every rank's value, on every rank (small picklable objects such as RNG states)."""
        if not self.distributed:
            return [value]
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.barrier()  # every rank is done with the group before any tears it down
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def leave_process(code: int) -> NoReturn:
    """End a torchrun process, its process group left, without the interpreter's teardown: with torch 2.14 and gloo
    that teardown aborted about one run in ten on a CPU ("terminate called without an active exception", SIGABRT)
    after training and the export had finished, so torchrun reported the whole run as failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def init_world(device_type: str) -> World:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1), else a world of one."""
    if not launched_by_torchrun():
        return World()
    size = int(os.environ["WORLD_SIZE"])
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(rank, size, local_rank)


def parameter_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters in state_dict order (buffers such as BatchNorm statistics left out)."""
    names = {name for name, _ in module.named_parameters()}
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if name in names:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
