r"""Global invariant readouts: pool node features into one vector per graph.

Each readout is :math:`S_n`-invariant: relabelling the nodes of a graph leaves its pooled vector unchanged.

Shapes: ``x`` ``[N, C]``, ``batch`` ``[N]`` (graph of each node; ``None`` for one graph) -> ``[B, C]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from gdl_graphs.groups import PERMUTATION_INVARIANT

POOLINGS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


class Readout(nn.Module):
    r"""Sum, mean or max pooling over the nodes of each graph,
    :math:`\mathbf{h}_G = \bigoplus_{i \in G} \mathbf{x}_i` with :math:`\bigoplus \in \{\sum, \text{mean}, \max\}`.

    Args:
        reduce: ``"sum"``, ``"mean"`` or ``"max"``.
    """

    symmetry = PERMUTATION_INVARIANT

    def __init__(self, reduce: str = "mean"):
        super().__init__()
        if reduce not in POOLINGS:
            raise ValueError(f"reduce must be one of {sorted(POOLINGS)}, got {reduce!r}")
        self.reduce = reduce

    def forward(self, x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        return POOLINGS[self.reduce](x, batch, num_graphs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reduce!r})"
