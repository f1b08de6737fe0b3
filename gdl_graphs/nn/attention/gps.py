r"""The GPS layer (Rampášek et al. 2022, "Recipe for a General, Powerful, Scalable Graph Transformer").

A local message-passing layer and global attention over each graph run side by side on the same input, each with
a residual and a norm; their sum goes through an FFN with a residual and a norm.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn.attention.transformer import GraphMultiheadAttention, feed_forward, make_norm
from gdl_graphs.nn.validation import check_features, check_probability

LOCAL_LAYERS = ("gine", "gatedgcn")


def resolve_local(local: str | nn.Module | None, channels: int, edge_dim: int | None) -> nn.Module | None:
    """Return ``local`` itself if it is a module (or ``None``), else build the named layer from
    :mod:`gdl_graphs.nn.conv`: ``"gine"`` (``GINEConv`` with a Linear-ReLU-Linear MLP, as in GraphGPS) or
    ``"gatedgcn"`` (``GatedGCNConv`` without its own residual and batch norm, which the GPS layer adds; it returns
    node features only: pass ``GatedGCNConv(..., return_edge_features=True)`` yourself to update edge features).
    """
    if local is None or isinstance(local, nn.Module):
        return local
    if local not in LOCAL_LAYERS:
        raise ValueError(f"local must be an nn.Module, None or one of {LOCAL_LAYERS}, got {local!r}")
    from gdl_graphs.nn import conv  # imported here: conv layers are optional for attention-only users

    if local == "gine":
        mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))
        return conv.GINEConv(mlp, edge_dim=edge_dim)
    return conv.GatedGCNConv(channels, channels, edge_dim=edge_dim, residual=False, batch_norm=False)


class GPSLayer(nn.Module):
    r"""One GPS layer: local message passing + global attention + FFN.

    .. math::
        \mathbf{X}_M = \operatorname{N}_M\big(\mathbf{X} + \operatorname{MPNN}(\mathbf{X}, \mathbf{E}, A)\big),
        \quad
        \mathbf{X}_T = \operatorname{N}_T\big(\mathbf{X} + \operatorname{Attn}(\mathbf{X})\big),
        \quad
        \mathbf{X}' = \operatorname{N}_F\big(\mathbf{X}_M + \mathbf{X}_T
        + \operatorname{FFN}(\mathbf{X}_M + \mathbf{X}_T)\big)

    Attn is :class:`~gdl_graphs.nn.attention.transformer.GraphMultiheadAttention` (within each graph only).
    Dropout is applied to the MPNN and attention outputs before their residuals and inside the FFN.

    Shapes: ``x`` ``[N, C]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]``, ``edge_attr`` ``[E, *]`` -> ``[N, C]``,
    or ``([N, C], [E, *])`` when the local layer returns updated edge features as a tuple ``(x, edge_attr)``.

    Args:
        channels: :math:`C`.
        local: the MPNN: any module called as ``local(x, edge_index)`` or ``local(x, edge_index,
            edge_attr=edge_attr)`` (when ``edge_attr`` is given), a name (``"gine"``, ``"gatedgcn"``; built with
            ``channels`` and ``edge_dim`` by :func:`resolve_local`), or ``None`` for attention only.
        heads: attention heads; must divide ``channels``.
        edge_dim: size of the edge features for a named local layer (``None``: already ``channels``).
        dropout: dropout on the branch outputs and in the FFN.
        attn_dropout: dropout on the attention weights.
        act: FFN activation.
        norm: ``"batch_norm"`` (as in the paper; mixes graphs in training mode), ``"layer_norm"`` or ``None``.
        ffn_channels: FFN hidden size (default ``2 * channels``).
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, channels: int, local: str | nn.Module | None = "gine", heads: int = 4,
                 edge_dim: int | None = None, dropout: float = 0.0, attn_dropout: float = 0.0, act: str = "relu",
                 norm: str | None = "batch_norm", ffn_channels: int | None = None):
        super().__init__()
        check_probability("dropout", dropout)
        self.channels, self.heads, self.dropout = channels, heads, dropout
        self.local_needs_edge_attr = local == "gine" or (local == "gatedgcn" and edge_dim is not None)
        self.local = resolve_local(local, channels, edge_dim)
        self.attn = GraphMultiheadAttention(channels, heads, dropout=attn_dropout)
        self.ffn = feed_forward(channels, 2 * channels if ffn_channels is None else ffn_channels, act, dropout)
        self.norm_local = make_norm(norm, channels) if self.local is not None else None
        self.norm_attn = make_norm(norm, channels)
        self.norm_ffn = make_norm(norm, channels)

    def reset_parameters(self) -> None:
        for module in (self.local, self.attn, *self.ffn, self.norm_local, self.norm_attn, self.norm_ffn):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None,
                edge_attr: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        check_features(x, self.channels)
        h = self.norm_attn(x + F.dropout(self.attn(x, batch), self.dropout, self.training))
        edge_out = None
        if self.local is not None:
            if edge_attr is None and self.local_needs_edge_attr:
                raise ValueError("edge_attr is required by the local layer (GINE / GatedGCN use edge features)")
            m = self.local(x, edge_index) if edge_attr is None else self.local(x, edge_index, edge_attr=edge_attr)
            if isinstance(m, tuple):
                m, edge_out = m
            h = h + self.norm_local(x + F.dropout(m, self.dropout, self.training))
        out = self.norm_ffn(h + self.ffn(h))
        return out if edge_out is None else (out, edge_out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, local={self.local}, heads={self.heads})"
