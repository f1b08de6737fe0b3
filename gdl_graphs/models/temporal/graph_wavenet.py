r"""Graph WaveNet (Wu et al., IJCAI 2019): dilated causal convolutions + diffusion convolution with a learned
adaptive adjacency.

Features are channels-last ``[B, T, N, C]`` throughout: the diffusion hops are batched dense matmuls over the node
axis, and the temporal convolutions are :class:`torch.nn.Conv2d` with a ``(k, 1)`` kernel run on the
``[B, C, T, N]`` view of that layout, which is channels-last in memory, so no copy is made.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import Linear

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.models.temporal.diffusion import (
    DiffusionConv, GraphOperator, check_window, dense_adjacency, diffusion_operators, on_channels_last,
)
from gdl_graphs.nn.validation import check_positive_ints


class GatedTCN(nn.Module):
    r"""Gated dilated causal temporal convolution, shared over nodes.

    .. math::
        \mathbf{Y}_t = \tanh\Big(\sum_{i=0}^{k-1}\mathbf{X}_{t - d i}\,\boldsymbol{\Theta}^f_i + \mathbf{b}^f\Big)
        \odot \sigma\Big(\sum_{i=0}^{k-1}\mathbf{X}_{t - d i}\,\boldsymbol{\Theta}^g_i + \mathbf{b}^g\Big)

    with kernel :math:`k` and dilation :math:`d`, valid padding: output step :math:`t` (aligned to the last input
    step of its window) depends on inputs up to :math:`t` only. Filter and gate share one convolution.

    Shapes:
        x ``[B, T, N, C_in]`` -> ``[B, T - d(k - 1), N, C_out]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation = kernel_size, dilation
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, (kernel_size, 1), dilation=(dilation, 1))

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        span = self.dilation * (self.kernel_size - 1) + 1
        if x.size(1) < span:
            raise ValueError(f"x has {x.size(1)} steps, fewer than the {span} this convolution spans")
        filt, gate = on_channels_last(self.conv, x).chunk(2, dim=-1)
        return torch.tanh(filt) * torch.sigmoid(gate)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation})")


class GraphWaveNet(nn.Module):
    r"""Graph WaveNet forecaster.

    A linear encoder, then ``blocks x layers`` layers (dilations :math:`1, 2, \dots, 2^{layers-1}` in each block),
    each

    .. math::
        \mathbf{Z} = \mathrm{GatedTCN}(\mathbf{H}), \quad
        \mathbf{S} \mathrel{+}= \mathbf{Z}\mathbf{W}_{skip}, \quad
        \mathbf{H} \leftarrow \mathrm{BN}\big(\mathrm{Dropout}(\mathrm{DiffusionConv}(\mathbf{Z}; \mathbf{T}_f,
        \mathbf{T}_b, \mathbf{T}_{adp})) + \mathbf{H}\big),

    and an output head :math:`\hat{\mathbf{Y}} = \mathrm{ReLU}(\mathrm{ReLU}(\mathbf{S})\mathbf{W}_1)\mathbf{W}_2`
    read at the last step. The window is left-padded with zeros to the receptive field
    :math:`1 + \text{blocks} \cdot (k-1)(2^{layers} - 1)` (13 by default, for 12 input steps), as in the reference
    code; longer windows are read at their last step. Only the last step of the skip sum reaches the output, and
    the last layer's :math:`\mathbf{H}` update reaches nothing, so neither the rest of the skip sum nor that update
    is computed (the reference code computes and discards them: same forecast, and 7,264 fewer parameters at the
    default widths, all of which get zero gradient there).

    The adaptive operator is :math:`\mathbf{T}_{adp} = \mathrm{softmax}(\mathrm{ReLU}(\mathbf{E}_1
    \mathbf{E}_2^\top))^\top` (softmax over each row), with learned node embeddings :math:`\mathbf{E}_1,
    \mathbf{E}_2 \in \mathbb{R}^{N \times d}` (``node_emb_source``, ``node_emb_target``). These parameters are
    indexed by node identity: the model is :math:`S_n`-equivariant as a function of the input *and* these
    embeddings, i.e. :math:`f_{P\mathbf{E}_1, P\mathbf{E}_2, PWP^\top}(P\mathbf{X}) = P f_{\mathbf{E}_1,
    \mathbf{E}_2, W}(\mathbf{X})`, not for fixed trained embeddings with the sensors relabelled. With
    ``adaptive=False`` it is equivariant with no such condition.

    The fixed operators are the forward/backward random walks (:func:`diffusion_operators`), non-persistent
    :class:`GraphOperator`\ s (sparse or dense by density) built once from ``edge_index``/``edge_weight``; the
    adaptive operator is dense.

    Args:
        num_nodes, in_channels, out_horizon, edge_index, edge_weight: as in
            :class:`~gdl_graphs.models.temporal.dcrnn.DCRNN`.
        residual_channels, dilation_channels, skip_channels, end_channels: widths (32, 32, 256, 512).
        kernel_size: temporal kernel :math:`k` (2).
        blocks, layers: 4 blocks of 2 layers.
        K: diffusion hops (2).
        adaptive: add the adaptive operator.
        embedding_dim: :math:`d` (10).
        dropout: after each diffusion convolution (0.3).

    Shapes:
        x ``[B, T_in, N, F]`` -> ``[B, T_out, N]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                 edge_weight: Tensor | None = None, *, residual_channels: int = 32, dilation_channels: int = 32,
                 skip_channels: int = 256, end_channels: int = 512, kernel_size: int = 2, blocks: int = 4,
                 layers: int = 2, K: int = 2, adaptive: bool = True, embedding_dim: int = 10, dropout: float = 0.3):
        super().__init__()
        check_positive_ints(in_channels=in_channels, out_horizon=out_horizon, blocks=blocks, layers=layers,
                            kernel_size=kernel_size, embedding_dim=embedding_dim)
        self.num_nodes, self.in_channels, self.out_horizon = num_nodes, in_channels, out_horizon
        self.blocks, self.layers, self.adaptive = blocks, layers, adaptive
        self.supports = nn.ModuleList(GraphOperator(op) for op in
                                      diffusion_operators(dense_adjacency(edge_index, edge_weight, num_nodes)))
        if adaptive:
            self.node_emb_source = nn.Parameter(torch.empty(num_nodes, embedding_dim))
            self.node_emb_target = nn.Parameter(torch.empty(num_nodes, embedding_dim))
        num_supports = 3 if adaptive else 2

        self.encoder = Linear(in_channels, residual_channels, weight_initializer="kaiming_uniform")
        dilations = [2 ** i for _ in range(blocks) for i in range(layers)]
        self.receptive_field = 1 + (kernel_size - 1) * sum(dilations)
        self.tcns = nn.ModuleList(GatedTCN(residual_channels, dilation_channels, kernel_size, d) for d in dilations)
        self.skips = nn.ModuleList(Linear(dilation_channels, skip_channels, weight_initializer="kaiming_uniform")
                                   for _ in dilations)
        self.gconvs = nn.ModuleList(DiffusionConv(dilation_channels, residual_channels, num_supports, K)
                                    for _ in dilations[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm2d(residual_channels) for _ in dilations[:-1])
        self.dropout = nn.Dropout(dropout)
        self.end1 = Linear(skip_channels, end_channels, weight_initializer="kaiming_uniform")
        self.end2 = Linear(end_channels, out_horizon, weight_initializer="kaiming_uniform")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.adaptive:
            nn.init.normal_(self.node_emb_source)
            nn.init.normal_(self.node_emb_target)
        for module in (self.encoder, *self.tcns, *self.skips, *self.gconvs, *self.norms, self.end1, self.end2):
            module.reset_parameters()

    def adaptive_operator(self) -> Tensor:
        r""":math:`\mathbf{T}_{adp}` ``[N, N]`` (columns sum to 1)."""
        scores = F.relu(self.node_emb_source @ self.node_emb_target.T)
        return torch.softmax(scores, dim=1).T

    def forward(self, x: Tensor) -> Tensor:
        check_window(x, self.num_nodes, self.in_channels)
        if x.size(1) < self.receptive_field:
            x = F.pad(x, (0, 0, 0, 0, self.receptive_field - x.size(1), 0))
        supports: list = list(self.supports)
        if self.adaptive:
            supports.append(self.adaptive_operator())
        h = self.encoder(x)
        skip = 0
        for i, (tcn, to_skip) in enumerate(zip(self.tcns, self.skips)):
            z = tcn(h)
            skip = skip + to_skip(z[:, -1])
            if i < len(self.gconvs):
                h = self.dropout(self.gconvs[i](z, supports)) + h[:, -z.size(1):]
                h = on_channels_last(self.norms[i], h)
        out = self.end2(F.relu(self.end1(F.relu(skip))))
        return out.transpose(1, 2)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_nodes={self.num_nodes}, in_channels={self.in_channels}, "
                f"out_horizon={self.out_horizon}, blocks={self.blocks}, layers={self.layers}, "
                f"receptive_field={self.receptive_field}, adaptive={self.adaptive})")
