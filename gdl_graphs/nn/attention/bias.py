r"""Additive attention biases that let graph structure enter a complete-graph attention layer (Graphormer-style).

Each bias module returns a dense ``[B, H, n_max, n_max]`` tensor in the padded layout of
:func:`~gdl_graphs.nn.attention.transformer.graph_attention`: entry ``[g, h, i, j]`` is added to the score of
query node ``i`` attending to key node ``j`` of graph ``g`` in head ``h``. Structure is read in the direction
messages flow in PyG (``edge_index[0]`` = source ``j``, ``edge_index[1]`` = target ``i``). Biases are computed
once per batch and can be shared by all layers.

* :class:`EdgeBias`: :math:`b^h_{ij} = \sum_{e = (j \to i)} \mathbf{w}_h^\top \mathbf{e}_e` over direct edges
  (0 for non-adjacent pairs).
* :class:`SPDBias`: :math:`b^h_{ij} = \beta^h_{\phi(j \to i)}`, a learned scalar per head and shortest-path
  distance :math:`\phi` (one shared value for "farther than ``max_distance``" and "unreachable").
  Distances come from :class:`AddShortestPathDistance`, a transform that caches them per graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import dijkstra
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import to_dense_adj

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn.attention.transformer import graph_layout
from gdl_graphs.nn.validation import check_edges_within_graphs


def shortest_path_distance(edge_index: Tensor, num_nodes: int, batch: Tensor | None = None,
                           max_distance: int | None = None, directed: bool = True) -> tuple[Tensor, Tensor]:
    r"""Hop distances between all pairs of nodes of each graph (BFS via :func:`scipy.sparse.csgraph.dijkstra`).

    Args:
        edge_index: LongTensor ``[2, E]``.
        num_nodes: ``N``.
        batch: LongTensor ``[N]`` of graph ids for a batch (pairs never cross graphs); ``None`` for one graph.
        max_distance: keep only pairs at most this far apart (``None``: every reachable pair).
        directed: follow edges from ``edge_index[0]`` to ``edge_index[1]`` only; ``False`` treats them as
            undirected.

    Returns:
        ``(spd_index, spd)``: LongTensor ``[2, P]`` of pairs ``(u, v)`` with a path ``u -> v`` (including
        ``u = v``) and LongTensor ``[P]`` of their distances. Storage is :math:`O(\sum_g n_g^2)` for connected graphs.
    """
    check_edges_within_graphs(edge_index, num_nodes)
    if max_distance is not None and max_distance < 0:
        raise ValueError(f"max_distance must be >= 0 or None, got {max_distance}")
    batch = torch.zeros(num_nodes, dtype=torch.long) if batch is None else batch.cpu()
    src, dst = edge_index.cpu().numpy()
    graph_of_edge = batch.numpy()[src]
    starts = np.concatenate([[0], np.cumsum(np.bincount(batch.numpy(), minlength=1))])
    limit = np.inf if max_distance is None else max_distance
    pairs, dists = [], []
    for g in range(len(starts) - 1):
        lo, n = starts[g], starts[g + 1] - starts[g]
        if n == 0:
            continue
        sel = graph_of_edge == g
        adj = scipy.sparse.csr_matrix((np.ones(int(sel.sum())), (src[sel] - lo, dst[sel] - lo)), shape=(n, n))
        dist = dijkstra(adj, directed=directed, unweighted=True, limit=limit)
        u, v = np.nonzero(np.isfinite(dist))
        pairs.append(np.stack([u, v]) + lo)
        dists.append(dist[u, v])
    if not pairs:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    spd_index = torch.from_numpy(np.concatenate(pairs, axis=1)).long().to(edge_index.device)
    spd = torch.from_numpy(np.concatenate(dists)).long().to(edge_index.device)
    return spd_index, spd


class AddShortestPathDistance(BaseTransform):
    """Store hop distances as ``data.spd_index`` ``[2, P]`` and ``data.spd`` ``[P]`` (see
    :func:`shortest_path_distance`). ``spd_index`` is offset like ``edge_index`` when graphs are batched.

    Use it as a ``pre_transform`` so distances are computed once per graph and cached with the dataset.
    """

    def __init__(self, max_distance: int | None = None, directed: bool = True):
        if max_distance is not None and max_distance < 0:
            raise ValueError(f"max_distance must be >= 0 or None, got {max_distance}")
        self.max_distance, self.directed = max_distance, directed

    def forward(self, data: Data) -> Data:
        if data.edge_index is None:
            raise ValueError("data has no edge_index to compute shortest-path distances from")
        data.spd_index, data.spd = shortest_path_distance(data.edge_index, data.num_nodes,
                                                          getattr(data, "batch", None), self.max_distance,
                                                          self.directed)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_distance={self.max_distance}, directed={self.directed})"


class EdgeBias(nn.Module):
    r"""Per-head attention bias from the features of direct edges: :math:`b^h_{ij} = \sum_{e = (j \to i)}
    \mathbf{w}_h^\top \mathbf{e}_e + c_h` for adjacent pairs, 0 otherwise (duplicate edges add up).

    Shapes: ``edge_index`` ``[2, E]``, ``edge_attr`` ``[E, edge_dim]``, ``batch`` ``[N]`` ->
    ``[B, heads, n_max, n_max]``.

    Args:
        edge_dim: size of the edge features.
        heads: number of attention heads.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, edge_dim: int, heads: int):
        super().__init__()
        if edge_dim < 1 or heads < 1:
            raise ValueError(f"edge_dim and heads must be positive, got edge_dim={edge_dim}, heads={heads}")
        self.edge_dim, self.heads = edge_dim, heads
        self.lin = nn.Linear(edge_dim, heads)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None,
                num_nodes: int | None = None) -> Tensor:
        num_nodes = _num_nodes(batch, num_nodes)
        check_edges_within_graphs(edge_index, num_nodes, batch)
        if edge_attr.dim() != 2 or edge_attr.shape != (edge_index.size(1), self.edge_dim):
            raise ValueError(f"edge_attr must have shape [num_edges, {self.edge_dim}] = "
                             f"{[edge_index.size(1), self.edge_dim]}, got {list(edge_attr.shape)}")
        batch, counts = graph_layout(batch, num_nodes)
        values = self.lin(edge_attr)
        return _to_dense_bias(edge_index, batch.to(edge_index.device), values, max(counts), len(counts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(edge_dim={self.edge_dim}, heads={self.heads})"


class SPDBias(nn.Module):
    r"""Per-head attention bias from the shortest-path distance :math:`\phi(j \to i)` (Graphormer's spatial
    encoding): :math:`b^h_{ij} = \beta^h_{\min(\phi(j \to i),\, D + 1)}` with a learned table
    :math:`\beta \in \mathbb{R}^{(D + 2) \times H}`; pairs absent from ``spd_index`` (unreachable, or dropped by
    the transform's ``max_distance``) and padding use :math:`\beta_{D + 1}`.

    Shapes: ``spd_index`` ``[2, P]``, ``spd`` ``[P]``, ``batch`` ``[N]`` -> ``[B, heads, n_max, n_max]``.

    Args:
        max_distance: :math:`D`, the largest distance with its own value.
        heads: number of attention heads.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, max_distance: int, heads: int):
        super().__init__()
        if max_distance < 0 or heads < 1:
            raise ValueError(f"max_distance must be >= 0 and heads positive, got max_distance={max_distance}, "
                             f"heads={heads}")
        self.max_distance, self.heads = max_distance, heads
        self.table = nn.Embedding(max_distance + 2, heads)

    def reset_parameters(self) -> None:
        self.table.reset_parameters()

    def forward(self, spd_index: Tensor, spd: Tensor, batch: Tensor | None = None,
                num_nodes: int | None = None) -> Tensor:
        num_nodes = _num_nodes(batch, num_nodes)
        check_edges_within_graphs(spd_index, num_nodes, batch, name="spd_index")
        if spd.shape != (spd_index.size(1),) or spd.dtype != torch.long:
            raise ValueError(f"spd must be a LongTensor of shape [{spd_index.size(1)}], got {spd.dtype} "
                             f"{list(spd.shape)}")
        if spd.numel() and int(spd.min()) < 0:
            raise ValueError("spd must be non-negative")
        batch, counts = graph_layout(batch, num_nodes)
        far = self.max_distance + 1
        # Stored as distance + 1 so that 0 marks pairs without a distance.
        code = _to_dense_bias(spd_index, batch.to(spd.device), spd.clamp(max=far) + 1, max(counts), len(counts))
        return self.table(torch.where(code == 0, far, code - 1)).permute(0, 3, 1, 2).contiguous()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_distance={self.max_distance}, heads={self.heads})"


def _to_dense_bias(pair_index: Tensor, batch: Tensor, values: Tensor, n_max: int, batch_size: int) -> Tensor:
    """Scatter per-pair values (source j, target i) to ``[B, n, n, *]`` indexed ``[g, i, j]`` (query, key);
    multi-dimensional values ``[P, H]`` come back as ``[B, H, n, n]``."""
    dense = to_dense_adj(pair_index, batch, values, max_num_nodes=n_max, batch_size=batch_size)  # [B, j, i, *]
    if values.dim() == 1:
        return dense.transpose(1, 2)
    return dense.permute(0, 3, 2, 1).contiguous()


def _num_nodes(batch: Tensor | None, num_nodes: int | None) -> int:
    if batch is not None:
        return batch.numel()
    if num_nodes is None:
        raise ValueError("num_nodes is required when batch is None")
    return num_nodes
