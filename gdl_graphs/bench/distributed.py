"""Data-parallel training under ``torchrun``: DistributedDataParallel + DistributedSampler.

``torchrun --nproc_per_node 2 -m gdl_graphs.bench.cli run ...`` (or ``--nnodes N`` across machines) starts one
process per device; each trains on its shard of every epoch's mini-batches and gradients are averaged. NCCL on
GPUs, gloo on CPU. Every rank evaluates the full validation and test sets (identical weights give identical
metrics, so all ranks take the same early-stopping decisions); only rank 0 writes checkpoints and the results
store. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything runs in one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler


class DistributedContext:
    """The process's place in a data-parallel job (a single-process default when not under ``torchrun``)."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device | None = None):
        self.rank, self.world_size, self.device = rank, world_size, device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device: str = "auto") -> "DistributedContext":
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        if use_cuda:
            torch.cuda.set_device(local_rank)
        return cls(rank, world_size, torch.device("cuda", local_rank) if use_cuda else torch.device("cpu"))

    def sampler_factory(self, dataset):
        """A DistributedSampler over ``dataset`` when distributed (else ``None``: the loader shuffles)."""
        if not self.active or not hasattr(dataset, "__len__") or isinstance(dataset, torch.Tensor):
            return None
        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True)

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.active:
            return model
        ids = [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def share(self, value):
        """Rank 0's ``value`` on every rank (a picklable object; the value itself when not distributed)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (``value`` itself when not distributed); NaN when any rank's is."""
        if not self.active:
            return value
        total = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
