r"""Global invariant readouts: pool node features into one vector per graph.

Each readout is :math:`S_n`-invariant: relabelling the nodes of a graph leaves its pooled vector unchanged.

Shapes: ``x`` ``[N, C]``, ``batch`` ``[N]`` (graph of each node; ``None`` for one graph) -> ``[B, C]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import Set2Set

from gdl_graphs.groups import PERMUTATION_INVARIANT
from gdl_graphs.nn.validation import check_positive_ints

POOLINGS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def _graph_index(x: Tensor, batch: Tensor | None) -> Tensor:
    """``batch``, or every node in graph 0 when it is ``None`` (one graph)."""
    return torch.zeros(x.size(0), dtype=torch.long, device=x.device) if batch is None else batch


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
        return POOLINGS[self.reduce](x, _graph_index(x, batch), num_graphs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reduce!r})"


class Set2SetReadout(nn.Module):
    r"""Set2Set readout (Vinyals et al. 2016; the readout of Gilmer et al. 2017's MPNN): ``steps`` rounds of an LSTM
    query :math:`\mathbf{q}_t` attending over the nodes of each graph,

    .. math::
        \mathbf{q}_t = \mathrm{LSTM}(\mathbf{q}^{*}_{t-1}), \quad
        \alpha_{i,t} = \operatorname{softmax}_{i \in G}(\mathbf{x}_i^{\top}\mathbf{q}_t), \quad
        \mathbf{r}_t = \sum_{i \in G} \alpha_{i,t}\mathbf{x}_i, \quad
        \mathbf{q}^{*}_t = \mathbf{q}_t \,\Vert\, \mathbf{r}_t,

    and the readout is :math:`\mathbf{q}^{*}_{T}`, twice as wide as the node features. It is PyG's
    :class:`~torch_geometric.nn.aggr.Set2Set` called as a :class:`Readout`.

    Args:
        in_channels: node feature size :math:`C`.
        steps: processing steps :math:`T`.

    Shapes: ``x`` ``[N, C]``, ``batch`` ``[N]`` -> ``[B, 2C]``.
    """

    symmetry = PERMUTATION_INVARIANT

    def __init__(self, in_channels: int, steps: int = 3):
        super().__init__()
        check_positive_ints(steps=steps)
        self.in_channels, self.steps = in_channels, steps
        self.set2set = Set2Set(in_channels, processing_steps=steps)

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels

    def reset_parameters(self) -> None:
        self.set2set.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
        return self.set2set(x, _graph_index(x, batch), dim_size=num_graphs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, steps={self.steps})"
