r"""Residual gated graph convnet with edge features (Bresson & Laurent 2018; Dwivedi et al. 2020's GatedGCN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.resolver import activation_resolver

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import FastPathConv
from gdl_graphs.nn.validation import check_matches_layer, optional_edge_features

GATE_EPS = 1e-6  # added to the sum of the gates, as in benchmarking-gnns


class GatedGCNConv(FastPathConv, torch.nn.Module):
    r"""GatedGCN layer of benchmarking-gnns (``GatedGCNLayer``): for each edge :math:`j \to i`

    .. math::
        \hat{\mathbf{e}}_{j,i} = \mathbf{C}\mathbf{e}_{j,i} + \mathbf{D}\mathbf{h}_j + \mathbf{E}\mathbf{h}_i,
        \qquad \boldsymbol{\sigma}_{j,i} = \mathrm{sigmoid}(\hat{\mathbf{e}}_{j,i}),

    .. math::
        \hat{\mathbf{h}}_i = \mathbf{A}\mathbf{h}_i + \frac{\sum_{j \in \mathcal{N}(i)} \boldsymbol{\sigma}_{j,i}
        \odot \mathbf{B}\mathbf{h}_j}{\sum_{j \in \mathcal{N}(i)} \boldsymbol{\sigma}_{j,i} + \epsilon},

    then :math:`\mathbf{h}'_i = \mathrm{dropout}\big(\mathbf{h}_i + \phi(\mathrm{BN}(\hat{\mathbf{h}}_i))\big)` and
    :math:`\mathbf{e}'_{j,i} = \mathrm{dropout}\big(\mathbf{e}_{j,i} + \phi(\mathrm{BN}(\hat{\mathbf{e}}_{j,i}))\big)`
    (residual terms only with ``residual``, batch norms only with ``batch_norm``), with :math:`\epsilon = 10^{-6}`,
    gates and division elementwise, and :math:`\phi` = ``act``. As in the benchmarking-gnns code, :math:`\mathbf{D}`
    acts on the source (neighbour) :math:`j` and :math:`\mathbf{E}` on the target :math:`i` (the paper names them the
    other way round), and parameter names (``A`` ... ``E``, ``bn_node_h``, ``bn_node_e``) match its ``state_dict``.

    Without edge features (``edge_dim=None``) the :math:`\mathbf{C}` term is dropped and
    :math:`\mathbf{e}'` has no residual term. ``normalize=False`` drops the denominator:
    :math:`\hat{\mathbf{h}}_i = \mathbf{A}\mathbf{h}_i + \sum_j \boldsymbol{\sigma}_{j,i} \odot \mathbf{B}\mathbf{h}_j`,
    which with ``edge_dim=None, batch_norm=False, residual=False, act=None`` is PyG's
    :class:`~torch_geometric.nn.conv.ResGatedGraphConv` (``A`` = ``lin_skip`` + ``bias``, ``B`` = ``lin_value``,
    ``D`` = ``lin_query``, ``E`` = ``lin_key``).

    Both sums (gated messages and gates) come from one incidence matmul on the graph's cached adjacency
    (:func:`~gdl_graphs.nn.aggregate.reduce_edges`).

    Args:
        in_channels: node feature size :math:`F`.
        out_channels: output size :math:`F'`.
        edge_dim: edge feature size :math:`D`, or ``None`` for a layer without edge inputs.
        dropout: dropout probability on :math:`\mathbf{h}'` and :math:`\mathbf{e}'`.
        batch_norm: batch-normalise :math:`\hat{\mathbf{h}}` (and :math:`\hat{\mathbf{e}}`).
        residual: add the input features (needs ``in_channels == out_channels``, and ``edge_dim == out_channels``
            when edge features are returned).
        act: activation :math:`\phi` (name, callable, or ``None`` for none).
        return_edge_features: also return :math:`\mathbf{e}'`.
        normalize: divide the gated sum by the sum of the gates.

    Shapes: ``x`` [N, F], ``edge_index`` [2, E] or sparse ``adj_t``, ``edge_attr`` [E, D] (iff ``edge_dim`` is set)
    -> ``h'`` [N, F'], or ``(h' [N, F'], e' [E, F'])`` with ``return_edge_features``.
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None, dropout: float = 0.0,
                 batch_norm: bool = True, residual: bool = True, act="relu", return_edge_features: bool = False,
                 normalize: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if edge_dim is not None and (not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"edge_dim must be a positive integer or None, got {edge_dim!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True adds the input to the output, so in_channels ({in_channels}) must "
                             f"equal out_channels ({out_channels}); pass residual=False otherwise")
        if residual and return_edge_features and edge_dim is not None and edge_dim != out_channels:
            raise ValueError(f"residual=True with return_edge_features=True adds the input edge features to the "
                             f"output ones, so edge_dim ({edge_dim}) must equal out_channels ({out_channels})")
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.dropout, self.residual, self.normalize = dropout, residual, normalize
        self.return_edge_features = return_edge_features
        self.A = torch.nn.Linear(in_channels, out_channels)
        self.B = torch.nn.Linear(in_channels, out_channels)
        self.C = torch.nn.Linear(edge_dim, out_channels) if edge_dim is not None else None
        self.D = torch.nn.Linear(in_channels, out_channels)
        self.E = torch.nn.Linear(in_channels, out_channels)
        self.bn_node_h = torch.nn.BatchNorm1d(out_channels) if batch_norm else None
        self.bn_node_e = torch.nn.BatchNorm1d(out_channels) if batch_norm and return_edge_features else None
        self.act = torch.nn.Identity() if act is None else activation_resolver(act)

    def reset_parameters(self) -> None:
        for module in (self.A, self.B, self.C, self.D, self.E, self.bn_node_h, self.bn_node_e):
            if module is not None:
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index, edge_attr: Tensor | None = None):
        edge_index, edge_weight, adj = self._graph(x, edge_index)
        edge_attr = optional_edge_features(edge_attr, edge_weight, edge_index.size(1), self.edge_dim, "GatedGCNConv")
        if edge_attr is not None:
            check_matches_layer(edge_attr, self, "edge_attr")
        src, dst = edge_index[0], edge_index[1]
        e_hat = self.D(x).index_select(0, src) + self.E(x).index_select(0, dst)  # [E, F']
        if self.C is not None:
            e_hat = e_hat + self.C(edge_attr)
        gate = torch.sigmoid(e_hat)
        messages = gate * self.B(x).index_select(0, src)
        if self.normalize:
            sums = aggregate.reduce_edges(torch.cat([messages, gate], dim=-1), dst, x.size(0), "sum", adj)
            gated, gates = sums.split(self.out_channels, dim=-1)
            h_hat = self.A(x) + gated / (gates + GATE_EPS)
        else:
            h_hat = self.A(x) + aggregate.reduce_edges(messages, dst, x.size(0), "sum", adj)
        h = self._update(h_hat, self.bn_node_h, x if self.residual else None)
        if not self.return_edge_features:
            return h
        edge_residual = edge_attr if self.residual and edge_attr is not None else None
        return h, self._update(e_hat, self.bn_node_e, edge_residual)

    def _update(self, value: Tensor, norm: torch.nn.Module | None, residual: Tensor | None) -> Tensor:
        """Batch norm, activation, residual, dropout (the benchmarking-gnns order)."""
        if norm is not None:
            value = norm(value)
        value = self.act(value)
        if residual is not None:
            value = residual + value
        return F.dropout(value, p=self.dropout, training=self.training)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim}, "
                f"residual={self.residual}, batch_norm={self.bn_node_h is not None})")
