"""Data-parallel HyperNet training under torchrun: process group, ranks and batch shards.

torchrun starts one process per device and tells each its place through the WORLD_SIZE,
RANK and LOCAL_RANK environment variables. With more than one process, training wraps
the HyperNet and its SMASH net in DistributedDataParallel; every rank samples the same
Arch and batch at each step and trains on its own shard of that batch. Without torchrun
(or with one process) none of this runs and training is the plain local loop.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from core.config import ConfigError
from engine.runtime.device import cpu_threads

DUMP_ENV = "SMASH_DDP_DUMP_DIR"  # when set, every rank saves its final weights there (tests)


def env_world_size() -> int:
    """Processes torchrun started (1 outside torchrun)."""
    if not all(k in os.environ for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK")):
        return 1
    return int(os.environ["WORLD_SIZE"])


def launched() -> bool:
    """Running as one of several torchrun processes."""
    return env_world_size() > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else int(os.environ.get("RANK", 0))


def world_size() -> int:
    return dist.get_world_size() if active() else env_world_size()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    """Rank 0: the one process that writes the store and checkpoint files."""
    return rank() == 0


def shard_size(batch_size: int, world: int) -> int:
    """Rows of the global batch each rank trains on; the batch must split evenly."""
    if world < 1:
        raise ValueError(f"world size = {world}; must be >= 1")
    if batch_size % world:
        raise ConfigError(f"[train].batch_size = {batch_size} does not split over {world} torchrun "
                          f"processes; use a multiple of {world}")
    return batch_size // world


def shard_rows(batch_size: int, rank: int, world: int) -> slice:
    """This rank's contiguous slice of a global batch."""
    n = shard_size(batch_size, world)
    return slice(rank * n, (rank + 1) * n)


def init(device: torch.device) -> tuple[torch.device, bool]:
    """Join torchrun's process group: gloo on the CPU, nccl on cuda:LOCAL_RANK.

    Returns this rank's device and whether this call created the group (then the caller
    destroys it). On the CPU, without SMASH_THREADS, the cores are split between the
    processes of this node.
    """
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    elif "SMASH_THREADS" not in os.environ:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", env_world_size()))
        torch.set_num_threads(max(1, cpu_threads() // max(local_world, 1)))
    if active():
        return device, False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, True


def barrier() -> None:
    if not active():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of `t` over all ranks (a new tensor)."""
    t = t.detach().clone()
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def destroy() -> None:
    if active():
        dist.destroy_process_group()
