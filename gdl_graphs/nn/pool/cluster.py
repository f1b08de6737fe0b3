r"""Cluster-based sparse pooling: greedy heavy-edge matching (Graclus, Dhillon, Guan & Kulis 2007, as used for
coarsening by Defferrard et al. 2016) in pure torch, and the pooling of the matched pairs.

:func:`graclus` replaces :func:`torch_geometric.nn.graclus` (which needs ``torch-cluster``). It computes the *greedy
matching*: undirected edges are ranked by weight (heaviest first, ties broken by a fixed rule) and an edge joins its
two nodes when neither is matched yet. It is computed in parallel rounds, not by a sequential scan: in each round
every unmatched node points to its best-ranked edge to an unmatched neighbour (a segmented minimum over the rows of
the graph's cached CSR :class:`~gdl_graphs.nn.aggregate.Adjacency`) and the edges picked from both ends are
matched. With a strict ranking this gives exactly the sequential greedy matching, in a few rounds on typical graphs
(worst case, a path of monotone weights, one match per round).

Symmetry: the ranking depends on the weights, not on the labels, so whenever the matching weights have no ties the
clusters are a function of the graph alone and relabelling the nodes only renumbers the clusters
(:data:`~gdl_graphs.groups.PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS`). Ties (e.g. an unweighted grid) are broken by
node index, or by a seeded random priority of the nodes: deterministic, and necessarily label-dependent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import coalesce, scatter

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.validation import check_edge_index, check_edge_weight, check_features

REDUCTIONS = ("max", "mean", "sum")


def _ranked_pairs(edge_index: Tensor, weight: Tensor | None, num_nodes: int,
                  seed: int | None) -> tuple[Tensor, Tensor]:
    """Undirected pairs ``(u < v)`` without self-loops, weights of both directions summed, sorted best first."""
    u, v = edge_index.min(dim=0).values, edge_index.max(dim=0).values
    w = torch.ones(u.numel(), dtype=torch.float64, device=u.device) if weight is None else weight.to(torch.float64)
    keep = u != v
    pairs, w = coalesce(torch.stack([u[keep], v[keep]]), w[keep], num_nodes, reduce="sum")
    if seed is None:
        priority = torch.arange(num_nodes, device=u.device)
    else:
        priority = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed)).to(u.device)
    ends = priority[pairs]
    first, second = ends.min(dim=0).values, ends.max(dim=0).values
    order = torch.argsort(second, stable=True)  # lexicographic (-w, first, second) by stable sorts, last key first
    order = order[torch.argsort(first[order], stable=True)]
    order = order[torch.argsort(-w[order], stable=True)]
    return pairs[:, order], w[order]


def graclus(edge_index: Tensor, weight: Tensor | None = None, num_nodes: int | None = None, *,
            seed: int | None = None) -> Tensor:
    r"""Greedy heavy-edge matching: the cluster of every node (its own index, or the smaller index of its pair).

    Edges :math:`u \to v` and :math:`v \to u` count as one undirected edge of weight :math:`w_{uv} + w_{vu}`
    (self-loops are ignored). Ranked heaviest first, ties by ``(min, max)`` of the two nodes' priorities — their
    indices, or a random permutation of them drawn from ``torch.Generator().manual_seed(seed)`` — an edge is taken
    when both its nodes are still free. For normalised-cut weights as in Graclus pass
    :math:`w_{uv} = a_{uv}(1/d_u + 1/d_v)` (``torch_geometric.utils.normalized_cut``).

    Same signature and output convention as :func:`torch_geometric.nn.graclus` (cluster ids are node indices, not
    consecutive; ``torch_geometric.nn.pool.consecutive.consecutive_cluster`` renumbers them), but deterministic:
    PyG's visits nodes in a random order drawn from the global RNG.

    Args:
        edge_index: LongTensor [2, E] (edges of a batch never join two graphs, so graphs are matched separately).
        weight: [E] non-negative matching weights (ones when ``None``: a maximal matching decided by the tie-break).
        num_nodes: N (default: ``edge_index.max() + 1``).
        seed: tie-break by a random node priority drawn from this seed instead of by node index.

    Returns:
        LongTensor [N].
    """
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError("edge_index must be a LongTensor [2, num_edges]")
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    check_edge_index(edge_index, num_nodes)
    check_edge_weight(weight, edge_index.size(1))
    if weight is not None and bool((weight < 0).any()):
        raise ValueError("weight must be non-negative (a heavier edge is matched first)")
    device = edge_index.device
    nodes = torch.arange(num_nodes, device=device)
    partner = nodes.clone()
    pairs, _ = _ranked_pairs(edge_index, weight, num_nodes, seed)
    if pairs.size(1) == 0:
        return partner
    # Both directions of every ranked pair, in one CSR structure: row i lists the pairs of node i.
    directed = torch.cat([pairs, pairs.flip(0)], dim=1)
    rank = torch.arange(pairs.size(1), device=device).repeat(2)
    adj = aggregate.adjacency(directed, num_nodes)
    rank_csr = rank[adj.perm].to(torch.float64)
    src, dst = directed[0][adj.perm], adj.row.long()
    free = torch.ones(num_nodes, dtype=torch.bool, device=device)
    while True:
        usable = free[src] & free[dst]
        if not bool(usable.any()):
            return torch.minimum(partner, nodes)
        best = torch.segment_reduce(torch.where(usable, rank_csr, torch.inf), "min", offsets=adj.crow.long())
        # the pair (u, v) is matched when it is the best usable pair of both u and v
        mutual = usable & (rank_csr == best[dst]) & (rank_csr == best[src])
        u, v = src[mutual], dst[mutual]
        partner[u], partner[v] = v, u
        free[u] = free[v] = False


class GraclusPooling(nn.Module):
    r"""Pool the pairs of a greedy heavy-edge matching (:func:`graclus`) into single nodes,

    .. math::
        \mathbf{x}'_c = \bigoplus_{i \in c} \mathbf{x}_i, \qquad
        w'_{cd} = \sum_{i \in c,\, j \in d} w_{ij} \quad (c \neq d),

    with :math:`\bigoplus` the ``reduce`` (``"max"``: PyG's ``max_pool``, ``"mean"``: ``avg_pool``, or ``"sum"``).
    Pooled nodes are numbered by the smallest input node of their cluster, graph by graph; the coarsened edges are
    coalesced without self-loops, their weights summed (``None`` stays ``None``). Two layers of it on a grid graph
    give 2x2 blocks, that is strided 2x2 pooling (``notebooks/05_coarsening.ipynb``). No parameters.

    Args:
        reduce: how features of a cluster combine.
        seed: tie-break of :func:`graclus` (``None``: node index).

    Shapes: ``x`` [N, F], ``edge_index`` [2, E], ``edge_weight`` [E] (the matching weights), ``batch`` [N]
    -> ``(x' [K, F], edge_index' [2, E'], edge_weight' [E'] or None, batch' [K], cluster [N])`` where
    ``cluster[i]`` is the pooled node of input node ``i``.
    """

    symmetry = PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
    pooled_outputs = ("x", "edge_index", "edge_attr", "batch", "assignment")

    def __init__(self, reduce: str = "max", seed: int | None = None):
        super().__init__()
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.reduce, self.seed = reduce, seed

    def reset_parameters(self) -> None:
        """No parameters (kept for the PyG layer interface)."""

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                batch: Tensor | None = None):
        check_features(x, -1)
        if batch is not None and (batch.dim() != 1 or batch.size(0) != x.size(0)):
            raise ValueError(f"batch must have shape [{x.size(0)}] (one graph id per node), got {list(batch.shape)}")
        matched = graclus(edge_index, edge_weight, x.size(0), seed=self.seed)
        ids, cluster = torch.unique(matched, sorted=True, return_inverse=True)
        out = scatter(x, cluster, dim=0, dim_size=ids.numel(), reduce=self.reduce)
        ends = cluster[edge_index]
        loops = ends[0] == ends[1]
        weight = None if edge_weight is None else edge_weight[~loops]
        pooled_edges, weight = coalesce(ends[:, ~loops], weight, ids.numel(), reduce="sum")
        pooled_batch = None if batch is None else batch[ids]  # ids are input nodes: one member of each cluster
        return out, pooled_edges, weight, pooled_batch, cluster

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduce={self.reduce!r})"
