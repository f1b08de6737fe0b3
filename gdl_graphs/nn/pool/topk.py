r"""Score-based sparse pooling: keep the :math:`k` best-scored nodes of each graph and the edges between them.

:class:`TopKPooling` (Gao & Ji 2019; Cangea et al. 2018) scores nodes by a learned projection, :class:`SAGPooling`
(Lee et al. 2019) by a graph convolution. Both subclass their PyG namesakes (same constructor, parameters,
``state_dict`` and ``__repr__``) and replace the forward pass with validated inputs and a deterministic selection.

Symmetry: which nodes are kept, and their order (by score), depend on the scores, not on the labels, so relabelling
the input nodes leaves the pooled graph as it is and relabels only the returned ``perm`` (the kept input nodes):
:data:`~gdl_graphs.groups.PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS` with the identity permutation of the pooled nodes.
Exact ties are the one exception: which of two equally scored nodes comes first (or survives the cut-off) then
depends on their labels (lower index first).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric import nn as pyg_nn
from torch_geometric.utils import scatter, softmax

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
from gdl_graphs.nn.validation import check_edge_features, check_edge_index, check_features

SPARSE_POOLED_OUTPUTS = ("x", "edge_index", "edge_attr", "batch", "selected", "pooled")
"""How the check of :mod:`gdl_graphs.testing.pooling` reads ``(x, edge_index, edge_attr, batch, perm, score)``."""


def check_ratio(ratio, min_score) -> None:
    """``ratio`` is a float in (0, 1) (fraction kept) or an int >= 1 (nodes kept); ignored with ``min_score``."""
    if min_score is not None:
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1] (a softmax score), got {min_score}")
        return
    if ratio is None:
        raise ValueError("at least one of 'ratio' and 'min_score' must be given")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ValueError(f"ratio must be a float in (0, 1) or an int >= 1, got {ratio!r}")
    if isinstance(ratio, int) and ratio < 1:
        raise ValueError(f"ratio={ratio}: an int ratio is the number of nodes kept and must be >= 1")
    if isinstance(ratio, float) and not 0.0 < ratio < 1.0:
        # PyG reads any ratio >= 1 as a node count, so ratio=1.0 keeps one node per graph; refuse instead.
        raise ValueError(f"ratio={ratio}: a float ratio is the fraction of nodes kept and must lie in (0, 1); "
                         f"pass an int to keep a fixed number of nodes")


def select_top_k(score: Tensor, batch: Tensor, ratio, min_score: float | None, tol: float = 1e-7) -> Tensor:
    r"""Indices of the kept nodes.

    With ``min_score`` :math:`\tilde\alpha`: every node whose score exceeds
    :math:`\min(\tilde\alpha, \max_{j \in G} y_j - \mathrm{tol})` (so no graph loses all its nodes), in node order.
    Otherwise the :math:`k_G = \lceil \mathrm{ratio} \cdot N_G \rceil` (or ``ratio`` itself, an int) best nodes of
    each graph :math:`G`, graph by graph and by descending score; ties go to the lower node index.

    Shapes: ``score`` [N], ``batch`` [N] -> LongTensor [K].
    """
    if min_score is not None:
        best = scatter(score, batch, dim=0, reduce="max").index_select(0, batch) - tol
        return (score > best.clamp(max=min_score)).nonzero().view(-1)
    num_nodes = torch.bincount(batch)
    if isinstance(ratio, int):
        k = torch.full_like(num_nodes, ratio)
    else:
        k = (float(ratio) * num_nodes.to(score.dtype)).ceil().long()
    order = torch.sort(score, descending=True, stable=True).indices
    order = order.index_select(0, torch.sort(batch.index_select(0, order), stable=True).indices)
    graph = batch.index_select(0, order)
    start = torch.cumsum(num_nodes, 0) - num_nodes
    rank = torch.arange(order.numel(), device=order.device) - start.index_select(0, graph)
    return order[rank < k.index_select(0, graph)]


def filter_edges(edge_index: Tensor, edge_attr: Tensor | None, kept: Tensor,
                 num_nodes: int) -> tuple[Tensor, Tensor | None]:
    r"""The induced subgraph :math:`\mathbf{A}_{\mathbf{i},\mathbf{i}}` on the kept nodes, relabelled
    ``0..K-1`` in the order of ``kept``; edges keep their relative order."""
    relabel = torch.full((num_nodes,), -1, dtype=torch.long, device=edge_index.device)
    relabel[kept] = torch.arange(kept.numel(), device=edge_index.device)
    ends = relabel[edge_index]
    keep = (ends >= 0).all(dim=0)
    return ends[:, keep], (None if edge_attr is None else edge_attr[keep])


class _ScorePooling:
    """The forward pass shared by :class:`TopKPooling` and :class:`SAGPooling`, given the raw node scores."""

    symmetry = PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
    pooled_outputs = SPARSE_POOLED_OUTPUTS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_ratio(self.ratio, self.min_score)

    def _inputs(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None, batch: Tensor | None,
                attn: Tensor | None) -> tuple[Tensor, Tensor]:
        check_ratio(self.ratio, self.min_score)
        check_features(x, -1)
        if not isinstance(edge_index, Tensor) or edge_index.layout != torch.strided:
            raise ValueError(f"{type(self).__name__} takes edge_index as a LongTensor [2, num_edges] "
                             f"(as PyG's), got {type(edge_index).__name__} with a sparse layout")
        check_edge_index(edge_index, x.size(0))
        if edge_attr is not None:
            check_edge_features(edge_attr, edge_index.size(1), None, False, type(self).__name__)
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        elif batch.dim() != 1 or batch.size(0) != x.size(0) or batch.dtype != torch.long:
            raise ValueError(f"batch must be a LongTensor of shape [{x.size(0)}] (one graph id per node), "
                             f"got {batch.dtype} {list(batch.shape)}")
        attn = x if attn is None else attn
        attn = attn.view(-1, 1) if attn.dim() == 1 else attn
        if attn.dim() != 2 or attn.size(0) != x.size(0):
            raise ValueError(f"attn must have one row per node ({x.size(0)}), got {list(attn.shape)}")
        if attn.size(-1) != self.in_channels:
            raise ValueError(f"{'x' if attn is x else 'attn'} has {attn.size(-1)} features, but "
                             f"{type(self).__name__} was built with in_channels={self.in_channels}")
        return batch, attn

    def _pool(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None, batch: Tensor, raw: Tensor):
        weight = self.select.weight
        score = (raw * weight).sum(dim=-1)
        if self.min_score is None:
            score = self.select.act(score / weight.norm(p=2, dim=-1))
        else:
            score = softmax(score, batch)
        perm = select_top_k(score, batch, self.ratio, self.min_score)
        score = score[perm]
        out = x[perm] * score.view(-1, 1)
        if self.multiplier != 1:
            out = self.multiplier * out
        edge_index, edge_attr = filter_edges(edge_index, edge_attr, perm, x.size(0))
        return out, edge_index, edge_attr, batch[perm], perm, score


class TopKPooling(_ScorePooling, pyg_nn.TopKPooling):
    r""":math:`\mathrm{top}_k` pooling (Gao & Ji 2019, "Graph U-Nets"; Cangea et al. 2018). With ``min_score``
    :math:`\tilde\alpha` unset:

    .. math::
        \mathbf{y} = \sigma\Big(\frac{\mathbf{X}\mathbf{p}}{\|\mathbf{p}\|}\Big), \qquad
        \mathbf{i} = \mathrm{top}_k(\mathbf{y}), \qquad
        \mathbf{X}' = (\mathbf{X} \odot \sigma(\mathbf{y}))_{\mathbf{i}}, \qquad
        \mathbf{A}' = \mathbf{A}_{\mathbf{i},\mathbf{i}},

    and with :math:`\tilde\alpha \in [0, 1]`: :math:`\mathbf{y} = \mathrm{softmax}_G(\mathbf{X}\mathbf{p})`,
    :math:`\mathbf{i} = \{i : y_i > \tilde\alpha\}`, :math:`\mathbf{X}' = (\mathbf{X} \odot \mathbf{y})_{\mathbf{i}}`.

    Drop-in for :class:`torch_geometric.nn.TopKPooling`: same constructor (``in_channels, ratio=0.5,
    min_score=None, multiplier=1.0, nonlinearity="tanh"``), ``state_dict`` (``select.weight``), ``__repr__`` and
    outputs. Differences: ties in score are broken by node index (PyG's sort is unstable), and a float
    ``ratio >= 1`` is refused (PyG silently keeps ``int(ratio)`` nodes).

    Shapes: ``x`` [N, F], ``edge_index`` [2, E], ``edge_attr`` [E, *], ``batch`` [N], ``attn`` [N, in_channels]
    (scores are computed from ``attn`` instead of ``x`` when given) -> ``(x' [K, F], edge_index' [2, E'],
    edge_attr' [E', *] or None, batch' [K], perm [K] (kept input nodes), score [K])``.
    """

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, batch: Tensor | None = None,
                attn: Tensor | None = None):
        batch, attn = self._inputs(x, edge_index, edge_attr, batch, attn)
        return self._pool(x, edge_index, edge_attr, batch, attn)


class SAGPooling(_ScorePooling, pyg_nn.SAGPooling):
    r"""Self-attention graph pooling (Lee et al. 2019): top-:math:`k` pooling whose scores come from a GNN,

    .. math::
        \mathbf{y} = \mathrm{GNN}(\mathbf{X}, \mathbf{A}), \qquad
        \mathbf{i} = \mathrm{top}_k(\mathbf{y}), \qquad
        \mathbf{X}' = (\mathbf{X} \odot \tanh(\mathbf{y}))_{\mathbf{i}}, \qquad
        \mathbf{A}' = \mathbf{A}_{\mathbf{i},\mathbf{i}}

    (with ``min_score``: :math:`\mathbf{y} = \mathrm{softmax}_G(\mathrm{GNN}(\mathbf{X}, \mathbf{A}))`, kept when
    :math:`y_i > \tilde\alpha`).

    Drop-in for :class:`torch_geometric.nn.SAGPooling`: same constructor (``in_channels, ratio=0.5,
    GNN=GraphConv, min_score=None, multiplier=1.0, nonlinearity="tanh", **kwargs`` for the GNN), ``state_dict``
    (``gnn.*``, ``select.weight``), ``__repr__`` and outputs. Any gdl_graphs convolution can be the ``GNN``
    (``GNN=gdl_graphs.nn.GCNConv``); it is called as ``GNN(attn, edge_index)``. Tie-break and ``ratio`` rules as in
    :class:`TopKPooling`.

    Shapes as in :class:`TopKPooling`.
    """

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, batch: Tensor | None = None,
                attn: Tensor | None = None):
        batch, attn = self._inputs(x, edge_index, edge_attr, batch, attn)
        return self._pool(x, edge_index, edge_attr, batch, self.gnn(attn, edge_index))
