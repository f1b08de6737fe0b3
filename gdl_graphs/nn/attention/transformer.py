r"""A Transformer is a GNN on the complete graph: self-attention among all nodes of each graph of a batch.

Nodes are scattered into padded per-graph blocks (:func:`torch_geometric.utils.to_dense_batch`; graphs of similar
size share a block length, see :func:`graph_attention`) and attended with the fused
:func:`torch.nn.functional.scaled_dot_product_attention`; no :math:`O(n^2)` edge list is ever built. A float
``attn_mask`` carries both the padding mask and optional additive biases (:mod:`gdl_graphs.nn.attention.bias`), so
graph structure can enter a complete-graph layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.utils import to_dense_batch

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn.validation import check_channels_heads, check_features, check_probability

NORMS = ("layer_norm", "batch_norm", None)


def graph_layout(batch: Tensor | None, num_nodes: int) -> tuple[Tensor, list[int]]:
    r"""Check ``batch`` and count the nodes of each graph (two host syncs on GPU).

    Args:
        batch: LongTensor ``[N]`` of sorted graph ids, or ``None`` for a single graph.
        num_nodes: ``N``.

    Returns:
        ``(batch, counts)``: the batch vector (zeros when ``None`` was given) and the node count of each of the
        :math:`B` graphs. The dense bias layout is ``[B, H, n_max, n_max]`` with ``B = len(counts)`` and
        ``n_max = max(counts)``.
    """
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long), [num_nodes]
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [{num_nodes}] (one graph id per node), got {tuple(batch.shape)}")
    if batch.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"batch must be an integer tensor, got {batch.dtype}")
    if num_nodes == 0:
        return batch.long(), [0]
    batch = batch.long()
    unsorted, first, last = torch.stack([(batch[1:] < batch[:-1]).any().long(), batch[0], batch[-1]]).tolist()
    if unsorted or first < 0:
        raise ValueError("batch must be sorted and non-negative, as PyG's Batch produces it")
    return batch, torch.bincount(batch, minlength=last + 1).tolist()


def block_size(num_nodes: int) -> int:
    """Padded length of a graph's attention block: the smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two
    and 1.5 times powers of two) that holds ``num_nodes``. It depends on the graph alone, never on the batch."""
    power = 1 << max(num_nodes - 1, 0).bit_length()
    three_quarters = 3 * power // 4
    return three_quarters if power >= 4 and three_quarters >= num_nodes else power


def graph_attention(query: Tensor, key: Tensor, value: Tensor, batch: Tensor | None = None,
                    attn_bias: Tensor | None = None, dropout_p: float = 0.0) -> Tensor:
    r"""Scaled dot-product attention among the nodes of each graph, never across graphs.

    .. math::
        \mathbf{o}^h_i = \sum_{j \,:\, g(j) = g(i)} \operatorname{softmax}_j\Big(
        \tfrac{\langle \mathbf{q}^h_i, \mathbf{k}^h_j \rangle}{\sqrt{d}} + b^h_{ij}\Big)\, \mathbf{v}^h_j

    Graphs are grouped by :func:`block_size`; each group is padded to that size and attended by one fused
    :func:`~torch.nn.functional.scaled_dot_product_attention` call, with ``-inf`` on padded keys (no mask at all
    when a group needs no padding and there is no bias). A graph's padded length, hence its floating-point result,
    depends on that graph only: changing other graphs of the batch leaves it bit-identical. Padding is at most
    1.5x per side, and mixed-size batches waste less than padding every graph to the largest.

    Args:
        query, key, value: ``[N, H, d]`` per-node, per-head vectors (``value`` may have another last dim).
        batch: LongTensor ``[N]`` of sorted graph ids (``None``: one graph).
        attn_bias: optional ``[B, H, n_max, n_max]`` additive bias :math:`b^h_{ij}` in the padded layout of
            :func:`torch_geometric.utils.to_dense_batch`, ``n_max`` the largest graph (row ``i`` = query,
            column ``j`` = key); see :mod:`gdl_graphs.nn.attention.bias`.
        dropout_p: dropout on the attention weights.

    Returns:
        ``[N, H, d]``.
    """
    if query.dim() != 3 or key.shape != query.shape or value.dim() != 3 or value.shape[:2] != query.shape[:2]:
        raise ValueError(f"query, key and value must have shape [N, heads, dim] with matching N and heads, got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    num_nodes, heads = query.shape[:2]
    batch, counts = graph_layout(batch, num_nodes)
    batch_size, n_max = len(counts), max(counts)
    if attn_bias is not None and attn_bias.shape != (batch_size, heads, n_max, n_max):
        raise ValueError(f"attn_bias must have shape [batch_size, heads, n_max, n_max] = "
                         f"{[batch_size, heads, n_max, n_max]}, got {list(attn_bias.shape)}")
    if num_nodes == 0:
        return value.new_zeros(value.shape)
    groups: dict[int, list[int]] = {}
    for graph, count in enumerate(counts):
        if count:  # empty graphs have nothing to attend
            groups.setdefault(block_size(count), []).append(graph)
    if len(groups) == 1 and min(counts) > 0:  # one group holds every graph, in order
        return _attend_block(query, key, value, batch.to(query.device), counts, block_size(n_max), attn_bias,
                             None, dropout_p)
    device = query.device
    starts = torch.tensor([0] + counts).cumsum(0)
    out = value.new_empty(value.shape)
    for size, graphs in groups.items():
        ids = torch.tensor(graphs)
        lengths = torch.tensor([counts[g] for g in graphs])
        local = torch.repeat_interleave(torch.arange(len(graphs)), lengths)  # graph of each node, within the group
        nodes = (starts[ids][local] + torch.arange(int(lengths.sum())) - (lengths.cumsum(0) - lengths)[local])
        nodes = nodes.to(device)
        out[nodes] = _attend_block(query[nodes], key[nodes], value[nodes], local.to(device),
                                   [counts[g] for g in graphs], size, attn_bias, ids.to(device), dropout_p)
    return out


def _attend_block(query: Tensor, key: Tensor, value: Tensor, batch: Tensor, counts: list[int], size: int,
                  attn_bias: Tensor | None, graphs: Tensor | None, dropout_p: float) -> Tensor:
    """Attention for graphs padded to one common ``size``; ``graphs`` selects their rows of ``attn_bias``."""
    num_graphs = len(counts)
    padded = min(counts) < size
    if padded:
        q, mask = to_dense_batch(query, batch, batch_size=num_graphs, max_num_nodes=size)  # [G, n, H, d]
        k, _ = to_dense_batch(key, batch, batch_size=num_graphs, max_num_nodes=size)
        v, _ = to_dense_batch(value, batch, batch_size=num_graphs, max_num_nodes=size)
    else:  # every graph fills its block and nodes are sorted by graph: the blocks are views
        q, k, v = (t.view(num_graphs, size, *t.shape[1:]) for t in (query, key, value))
    attn_mask = None
    if attn_bias is not None:
        bias = attn_bias if graphs is None else attn_bias[graphs]
        bias = bias[:, :, :size, :size].to(query.dtype)
        extra = size - bias.size(-1)
        attn_mask = F.pad(bias, (0, extra, 0, extra)) if extra else bias
    if padded:
        # -inf on padded keys; every graph has >= 1 real key, so no row is fully masked (no NaN).
        pad = torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill_(~mask, float("-inf"))
        pad = pad[:, None, None, :]
        attn_mask = pad if attn_mask is None else attn_mask + pad
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=attn_mask, dropout_p=dropout_p).transpose(1, 2)  # [G, n, H, d]
    return out[mask] if padded else out.reshape(-1, *value.shape[1:])


class GraphMultiheadAttention(nn.Module):
    r"""Multi-head self-attention over the complete graph of each graph in a batch.

    .. math::
        \mathbf{x}'_i = \mathbf{W}_O \Big\Vert_{h=1}^{H} \sum_{j \,:\, g(j) = g(i)} \operatorname{softmax}_j\Big(
        \tfrac{\langle \mathbf{W}^h_Q \mathbf{x}_i, \mathbf{W}^h_K \mathbf{x}_j \rangle}{\sqrt{d}} + b^h_{ij}\Big)
        \mathbf{W}^h_V \mathbf{x}_j, \qquad d = C / H

    Shapes: ``x`` ``[N, C]``, ``batch`` ``[N]``, ``attn_bias`` ``[B, H, n_max, n_max]`` -> ``[N, C]``.

    Args:
        channels: :math:`C`, size of input and output features.
        heads: :math:`H`; must divide ``channels``.
        dropout: dropout on the attention weights (training only).
        bias: whether the projections have a bias.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, channels: int, heads: int = 1, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        check_channels_heads(channels, heads)
        check_probability("dropout", dropout)
        self.channels, self.heads, self.dropout = channels, heads, dropout
        self.qkv = nn.Linear(channels, 3 * channels, bias=bias)
        self.out = nn.Linear(channels, channels, bias=bias)

    def reset_parameters(self) -> None:
        self.qkv.reset_parameters()
        self.out.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, attn_bias: Tensor | None = None) -> Tensor:
        check_features(x, self.channels)
        q, k, v = self.qkv(x).view(x.size(0), 3, self.heads, self.channels // self.heads).unbind(1)
        out = graph_attention(q, k, v, batch, attn_bias, self.dropout if self.training else 0.0)
        return self.out(out.reshape(x.size(0), self.channels))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, heads={self.heads})"


class GraphTransformerLayer(nn.Module):
    r"""A Transformer encoder layer on the complete graph of each graph in a batch.

    Pre-norm (``norm_first=True``):

    .. math::
        \mathbf{H} = \mathbf{X} + \operatorname{Attn}(\operatorname{N}_1(\mathbf{X}), \mathbf{B}), \qquad
        \mathbf{X}' = \mathbf{H} + \operatorname{FFN}(\operatorname{N}_2(\mathbf{H}))

    post-norm: :math:`\mathbf{H} = \operatorname{N}_1(\mathbf{X} + \operatorname{Attn}(\mathbf{X}, \mathbf{B}))`,
    :math:`\mathbf{X}' = \operatorname{N}_2(\mathbf{H} + \operatorname{FFN}(\mathbf{H}))`. Attn is
    :class:`GraphMultiheadAttention`, :math:`\mathbf{B}` an optional additive bias (e.g. the sum of
    :class:`~gdl_graphs.nn.attention.bias.EdgeBias` and :class:`~gdl_graphs.nn.attention.bias.SPDBias`, computed
    once and shared by all layers, as in Graphormer), FFN is Linear-act-dropout-Linear, and dropout is applied to
    both branches before the residual sum.

    Shapes: ``x`` ``[N, C]``, ``batch`` ``[N]``, ``attn_bias`` ``[B, H, n_max, n_max]`` -> ``[N, C]``.

    Args:
        channels: :math:`C`.
        heads: number of attention heads; must divide ``channels``.
        ffn_channels: hidden size of the FFN (default ``2 * channels``).
        dropout: dropout on the attention and FFN outputs.
        attn_dropout: dropout on the attention weights.
        act: activation of the FFN (any name :func:`torch_geometric.nn.resolver.activation_resolver` knows).
        norm: ``"layer_norm"`` (per node), ``"batch_norm"`` or ``None``.
        norm_first: pre-norm (default) or post-norm.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, channels: int, heads: int = 8, ffn_channels: int | None = None, dropout: float = 0.0,
                 attn_dropout: float = 0.0, act: str = "relu", norm: str | None = "layer_norm",
                 norm_first: bool = True):
        super().__init__()
        ffn_channels = 2 * channels if ffn_channels is None else ffn_channels
        if ffn_channels < 1:
            raise ValueError(f"ffn_channels must be positive, got {ffn_channels}")
        check_probability("dropout", dropout)
        self.channels, self.heads, self.norm_first = channels, heads, norm_first
        self.attn = GraphMultiheadAttention(channels, heads, dropout=attn_dropout)
        self.ffn = feed_forward(channels, ffn_channels, act, dropout)
        self.norm1 = make_norm(norm, channels)
        self.norm2 = make_norm(norm, channels)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.attn.reset_parameters()
        for module in (*self.ffn, self.norm1, self.norm2):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, attn_bias: Tensor | None = None) -> Tensor:
        check_features(x, self.channels)
        if self.norm_first:
            x = x + self.dropout(self.attn(self.norm1(x), batch, attn_bias))
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attn(x, batch, attn_bias)))
        return self.norm2(x + self.dropout(self.ffn(x)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, heads={self.heads}, norm_first={self.norm_first})"


def feed_forward(channels: int, hidden: int, act: str, dropout: float) -> nn.Sequential:
    """The position-wise FFN ``Linear(channels, hidden) -> act -> Dropout -> Linear(hidden, channels)``."""
    return nn.Sequential(nn.Linear(channels, hidden), activation_resolver(act), nn.Dropout(dropout),
                         nn.Linear(hidden, channels))


def make_norm(norm: str | None, channels: int) -> nn.Module:
    """Per-node ``nn.LayerNorm``, ``nn.BatchNorm1d`` or ``nn.Identity`` for ``norm`` in :data:`NORMS`."""
    if norm == "layer_norm":
        return nn.LayerNorm(channels)
    if norm == "batch_norm":
        return nn.BatchNorm1d(channels)
    if norm is None:
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
