"""A suite's ``sampler:`` setting (:class:`SamplerSettings`) and the neighbour-sampled batches it asks for
(:func:`neighbour_batches`). The task kind that declares ``accepts_sampler``
(:class:`gdl_graphs.bench.tasks.NodeClassification`) trains and evaluates on them.

Evaluation (``eval``):

* ``"full"`` (default): **exact**. The model runs once over the whole graph without gradients, so every node
  aggregates its full neighbourhood at every layer (what layer-wise inference with ``num_neighbors=[-1]``
  computes, for any model); metrics are those of full-batch training, on the same masks.
* ``"sampled"``: the split's nodes are seeds of batches sampled with the training fan-outs, from a generator seeded
  afresh by the run's seed for every evaluation (the same subgraphs every epoch); an estimate, for graphs whose
  full-graph forward does not fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from gdl_graphs.loader import NeighborLoader

EVAL_MODES = ("full", "sampled")
KEYS = ("num_neighbors", "batch_size", "eval")


@dataclass(frozen=True)
class SamplerSettings:
    """A suite's ``sampler: {num_neighbors: [15, 10], batch_size: 1024, eval: full}``."""

    num_neighbors: tuple[int, ...]
    batch_size: int
    eval: str = "full"

    @classmethod
    def parse(cls, value: dict, where: str = "sampler.") -> SamplerSettings:
        """Validate a ``sampler`` mapping; raises ``ValueError`` naming the key (``where`` + key)."""
        if not isinstance(value, dict):
            raise ValueError(f"{where.rstrip('.')}: expected a mapping with num_neighbors and batch_size, got "
                             f"{value!r}")
        unknown = sorted(set(value) - set(KEYS))
        if unknown:
            raise ValueError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(KEYS)})")
        for key in ("num_neighbors", "batch_size"):
            if key not in value:
                raise ValueError(f"{where}{key}: missing")
        fanout = value["num_neighbors"]
        if (not isinstance(fanout, list) or not fanout
                or not all(isinstance(k, int) and not isinstance(k, bool) and (k == -1 or k > 0) for k in fanout)):
            raise ValueError(f"{where}num_neighbors: expected a non-empty list of positive ints or -1, got "
                             f"{fanout!r}")
        batch_size = value["batch_size"]
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{where}batch_size: expected a positive int, got {batch_size!r}")
        mode = value.get("eval", "full")
        if mode not in EVAL_MODES:
            raise ValueError(f"{where}eval: must be one of {EVAL_MODES}, got {mode!r}")
        return cls(tuple(fanout), batch_size, mode)


def neighbour_batches(data: Data, settings: SamplerSettings, mask: Tensor, generator: torch.Generator,
                      shuffle: bool) -> NeighborLoader:
    """Batches of ``settings.batch_size`` seeds (the nodes under ``mask``, on the CPU like ``data``), each the
    ``settings.num_neighbors`` fan-out subgraph around its seeds, the seeds first (``batch.batch_size`` of them)."""
    return NeighborLoader(data, num_neighbors=list(settings.num_neighbors), batch_size=settings.batch_size,
                          input_nodes=mask, shuffle=shuffle, generator=generator)
