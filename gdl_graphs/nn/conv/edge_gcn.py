r"""GCN with edge features: OGB's molecular GCN layer (Hu et al. 2020, ``examples/graphproppred/mol/conv.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import FastPathConv
from gdl_graphs.nn.validation import check_matches_layer, check_positive_ints, optional_edge_features


class EdgeGCNConv(FastPathConv, torch.nn.Module):
    r"""The GCN layer of OGB's molecule examples (their ``GCNConv``): GCN-normalised messages that add an edge
    embedding to the transformed neighbour, and a root term in place of the self-loop:

    .. math::
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} \frac{1}{\sqrt{\hat{d}_j \hat{d}_i}}
        \mathrm{ReLU}\big(\mathbf{W}\mathbf{x}_j + \mathbf{b} + \mathbf{W}_e \mathbf{e}_{j,i} + \mathbf{b}_e\big)
        + \frac{1}{\hat{d}_i} \mathrm{ReLU}\big(\mathbf{W}\mathbf{x}_i + \mathbf{b} + \mathbf{r}\big),

    with :math:`\hat{d}_i = 1 + \deg(i)` and :math:`\mathbf{r}` a learned root vector (initialised standard
    normal, as OGB's ``root_emb``). Degrees count the edges into each node (PyG's ``gcn_norm`` convention); OGB's
    code counts the edges out of each node, which is the same on the undirected graphs it is used on.

    The layer maps given edge features of width ``edge_dim`` with :math:`\mathbf{W}_e + \mathbf{b}_e`; with
    ``edge_map=False`` it adds them as given (:math:`\mathbf{W}_e = \mathbf{I}`, no :math:`\mathbf{b}_e`;
    ``edge_dim`` must then be ``out_channels``), as OGB's layer adds the output of its own ``BondEncoder`` (in a
    :class:`~gdl_graphs.models.GraphNet`, ``edge_embedding="per_layer"``). ``edge_dim=None`` drops the edge term.

    The neighbour sum goes through the graph's cached adjacency (:func:`~gdl_graphs.nn.aggregate.reduce_edges`).

    Args:
        in_channels: node feature size :math:`F`.
        out_channels: output size :math:`F'`.
        edge_dim: edge feature size :math:`D`, or ``None`` for a layer without edge inputs.
        edge_map: map the edge features with :math:`\mathbf{W}_e` (``True``) or add them as given (``False``).

    Shapes: ``x`` [N, F], ``edge_index`` [2, E] or sparse ``adj_t``, ``edge_attr`` [E, D] (iff ``edge_dim`` is set)
    -> [N, F'].
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None, edge_map: bool = True):
        super().__init__()
        check_positive_ints(in_channels=in_channels, out_channels=out_channels)
        check_positive_ints(allow_none=True, edge_dim=edge_dim)
        if not edge_map and edge_dim is not None and edge_dim != out_channels:
            raise ValueError(f"edge_map=False adds the edge features to the messages as given: edge_dim must be "
                             f"out_channels={out_channels}, got {edge_dim}")
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.lin = torch.nn.Linear(in_channels, out_channels)
        self.lin_edge = torch.nn.Linear(edge_dim, out_channels) if edge_dim is not None and edge_map else None
        self.root = torch.nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        torch.nn.init.normal_(self.root)

    def forward(self, x: Tensor, edge_index, edge_attr: Tensor | None = None) -> Tensor:
        edge_index, edge_weight, adj = self._graph(x, edge_index)
        edge_attr = optional_edge_features(edge_attr, edge_weight, edge_index.size(1), self.edge_dim, "EdgeGCNConv")
        if edge_attr is not None:
            check_matches_layer(edge_attr, self, "edge_attr")
        src, dst = edge_index[0], edge_index[1]
        h = self.lin(x)
        degree = 1.0 + torch.zeros(x.size(0), dtype=h.dtype, device=h.device).index_add_(
            0, dst, torch.ones_like(dst, dtype=h.dtype))
        inv_sqrt = degree.rsqrt()
        messages = h.index_select(0, src)
        if edge_attr is not None:
            messages = messages + (self.lin_edge(edge_attr) if self.lin_edge is not None else edge_attr)
        messages = F.relu(messages) * (inv_sqrt.index_select(0, src) * inv_sqrt.index_select(0, dst)).unsqueeze(-1)
        neighbours = aggregate.reduce_edges(messages, dst, x.size(0), "sum", adj)
        return neighbours + F.relu(h + self.root) / degree.unsqueeze(-1)

    def __repr__(self) -> str:
        edge_map = "" if self.lin_edge is not None or self.edge_dim is None else ", edge_map=False"
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim}{edge_map})"
