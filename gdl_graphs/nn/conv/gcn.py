r"""Graph convolution (Kipf & Welling 2017) on the CSR fast path, drop-in for PyG's ``GCNConv``."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric import nn as pyg_nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm as pyg_gcn_norm

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import DropInConv
from gdl_graphs.nn.validation import check_edge_weight_dtype


class GCNConv(DropInConv, pyg_nn.GCNConv):
    r"""Graph convolution :math:`\mathbf{X}' = \hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}\hat{\mathbf{D}}^{-1/2}
    \mathbf{X}\mathbf{\Theta} + \mathbf{b}`, with :math:`\hat{\mathbf{A}} = \mathbf{A} + \mathbf{I}` (self-loops)
    and :math:`\hat{D}_{ii} = \sum_j \hat{A}_{ij}`; per node

    .. math::
        \mathbf{x}'_i = \mathbf{\Theta}^{\top} \sum_{j \in \mathcal{N}(i) \cup \{ i \}}
        \frac{e_{j,i}}{\sqrt{\hat{d}_j \hat{d}_i}} \mathbf{x}_j + \mathbf{b}.

    Same constructor, defaults, parameters and ``state_dict`` as :class:`torch_geometric.nn.GCNConv` (``in_channels,
    out_channels, improved=False, cached=False, add_self_loops=None, normalize=True, bias=True``), and the same
    self-loop rule: existing self-loops are replaced by one loop per node, of weight 1 (or the existing loop's
    weight), or 2 with ``improved=True`` *when* ``edge_weight`` is given (as in PyG 2.8, ``improved`` has no effect
    without edge weights). The normalised adjacency is built once per graph as a CSR matrix and shared by all layers
    (:mod:`gdl_graphs.nn.aggregate`); ``cached=True`` keeps it for later calls, as in PyG (transductive use).

    Shapes: ``x`` [N, in_channels], ``edge_index`` [2, E] or a sparse ``adj_t`` [N, N], ``edge_weight`` [E]
    -> [N, out_channels].
    """

    static_graphs = True

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        self._check_node_input(x, edge_index)
        check_edge_weight_dtype(edge_weight, x)
        if not self._fast_path_applies(x, edge_index):
            return super().forward(x, self._pyg_edge_index(edge_index), edge_weight)
        if self.cached and self.normalize:
            adj, values, loop = self._cached_normalisation(x, edge_index, edge_weight)
        else:
            edge_index, edge_weight, adj = self._graph(x, edge_index, edge_weight)
            values, loop = self._normalisation(adj, edge_weight, x.dtype)
        h = self.lin(x)
        out = aggregate.spmm(adj, h, values)
        if loop is not None:
            out = out + loop.unsqueeze(-1) * h
        if self.bias is not None:
            out = out + self.bias
        return out

    def _cached_normalisation(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None):
        """``cached=True``: PyG's normalised graph of the first call, stored where PyG keeps it, so both paths
        (and a state saved by either) reuse the same graph for every later call, as in PyG."""
        if self._cached_edge_index is None:
            edge_index, edge_weight, _ = self._graph(x, edge_index, edge_weight)
            self._cached_edge_index = pyg_gcn_norm(edge_index, edge_weight, x.size(0), self.improved,
                                                   self.add_self_loops, self.flow, x.dtype)
        edge_index, values = self._cached_edge_index
        return aggregate.adjacency(edge_index, x.size(0)), values, None

    def _normalisation(self, adj: aggregate.Adjacency, edge_weight: Tensor | None,
                       dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
        """Per-edge values (edge order) and per-node self-loop values of the normalised adjacency; without edge
        weights they are computed once per graph and cached with it (compiled code reads the same cache)."""
        if edge_weight is not None or not self.normalize:
            return gcn_normalisation(adj, edge_weight, self.improved, self.add_self_loops, self.normalize, dtype)
        if torch.compiler.is_compiling():
            values, loop = torch.ops.gdl_graphs.gcn_normalisation(adj.key, adj.num_dst, self.improved,
                                                                  self.add_self_loops, dtype)
            return values, (loop if self.add_self_loops else None)
        return _unweighted_normalisation(adj, self.improved, self.add_self_loops, dtype)


def _unweighted_normalisation(adj: aggregate.Adjacency, improved: bool, add_self_loops: bool,
                              dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    key = ("gcn", improved, add_self_loops, dtype)
    if key not in adj.derived:
        adj.derived[key] = gcn_normalisation(adj, None, improved, add_self_loops, True, dtype)
    return adj.derived[key]


@torch.library.custom_op("gdl_graphs::gcn_normalisation", mutates_args=())
def _cached_gcn_normalisation(edge_index: Tensor, num_nodes: int, improved: bool, add_self_loops: bool,
                              dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The cached unweighted normalisation of ``edge_index``'s graph, for compiled code (copies: compiled code may
    reuse the memory of an operator's outputs)."""
    values, loop = _unweighted_normalisation(aggregate.adjacency(edge_index, num_nodes), improved, add_self_loops,
                                             dtype)
    return values.clone(), (values.new_zeros(0) if loop is None else loop.clone())


@_cached_gcn_normalisation.register_fake
def _(edge_index, num_nodes, improved, add_self_loops, dtype):
    return (edge_index.new_empty(edge_index.size(1), dtype=dtype),
            edge_index.new_empty(num_nodes if add_self_loops else 0, dtype=dtype))


def gcn_normalisation(adj: aggregate.Adjacency, edge_weight: Tensor | None, improved: bool, add_self_loops: bool,
                      normalize: bool, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
    r"""Symmetric normalisation :math:`w_{ji} / \sqrt{\hat d_j \hat d_i}` of the edges and of one self-loop per node.

    Returns ``(edge_values [E] or None, loop_values [N] or None)``. Existing self-loop edges get value 0 when
    self-loops are added (their weight moves to the node's single loop, as PyG's ``add_remaining_self_loops``).
    """
    edge_index = adj.edge_index
    num_nodes = adj.num_dst
    if not normalize:
        return edge_weight, None
    weight = (torch.ones(adj.num_edges, dtype=dtype, device=edge_index.device) if edge_weight is None
              else edge_weight.to(dtype))
    loop = None
    if add_self_loops:
        is_loop = edge_index[0] == edge_index[1]
        fill = 2.0 if (improved and edge_weight is not None) else 1.0
        loop = torch.full((num_nodes,), fill, dtype=dtype, device=edge_index.device)
        if edge_weight is not None:  # an existing loop keeps its weight (the last one, if repeated)
            loop = _existing_loop_weight(loop, edge_index, weight, is_loop)
        weight = weight.masked_fill(is_loop, 0.0)
    degree = aggregate.reduce_edges(weight, edge_index[1], num_nodes, "sum", adj)
    if loop is not None:
        degree = degree + loop
    inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
    values = inv_sqrt.index_select(0, edge_index[0]) * weight * inv_sqrt.index_select(0, edge_index[1])
    return values, (None if loop is None else inv_sqrt * loop * inv_sqrt)


def _existing_loop_weight(loop: Tensor, edge_index: Tensor, weight: Tensor, is_loop: Tensor) -> Tensor:
    """Replace the fill value of nodes that already have a self-loop by that loop's weight."""
    n = loop.size(0)
    target = torch.where(is_loop, edge_index[0], torch.full_like(edge_index[0], n))
    extended = torch.cat([loop, loop.new_zeros(1)])
    return extended.index_put((target,), weight)[:n]
