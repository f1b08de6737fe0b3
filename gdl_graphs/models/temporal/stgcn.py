r"""STGCN: spatio-temporal graph convolutional network (Yu, Yin and Zhu, IJCAI 2018).

"Sandwich" blocks: gated temporal convolution -> graph convolution (Chebyshev or first-order GCN) -> ReLU -> gated
temporal convolution -> normalisation. Features are channels-last ``[B, T, N, C]`` throughout; temporal
convolutions are :class:`torch.nn.Conv2d` with a ``(k, 1)`` kernel run on the ``[B, C, T, N]`` view of that
layout, which is channels-last in memory, so no copy is made.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import DenseGCNConv, Linear
from torch_geometric.utils import coalesce, get_laplacian, to_dense_adj, to_undirected

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.models.temporal.diffusion import (
    GraphOperator, apply_operator, check_window, dense_adjacency, on_channels_last,
)
from gdl_graphs.nn.validation import check_positive_ints


def symmetrised_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> tuple[Tensor, Tensor]:
    r"""``(edge_index, edge_weight)`` of the undirected version of a directed graph.

    Chebyshev and GCN filters are defined for undirected graphs. Duplicate edges are summed (as in
    :func:`~gdl_graphs.models.temporal.diffusion.dense_adjacency`), then
    :func:`torch_geometric.utils.to_undirected` with ``reduce="mean"`` gives a two-way pair the mean of its two
    weights and a one-way edge its weight in both directions.
    """
    dense_adjacency(edge_index, edge_weight, num_nodes)  # validates the inputs
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_index, edge_weight = coalesce(edge_index.long(), edge_weight, num_nodes, reduce="sum")
    return to_undirected(edge_index, edge_weight, num_nodes=num_nodes, reduce="mean")


def scaled_laplacian(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> Tensor:
    r"""The rescaled normalised Laplacian :math:`\tilde{\mathbf{L}} = 2\mathbf{L}/\lambda_{max} - \mathbf{I}`
    ``[N, N]`` of the symmetrised graph (:func:`symmetrised_adjacency`), with :math:`\mathbf{L} = \mathbf{I} -
    \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2}` (:func:`torch_geometric.utils.get_laplacian`, which drops
    self-loops, as the STGCN code does) and the exact :math:`\lambda_{max}` (:func:`torch.linalg.eigvalsh`).
    """
    index, weight = symmetrised_adjacency(edge_index, edge_weight, num_nodes)
    index, weight = get_laplacian(index, weight, normalization="sym", num_nodes=num_nodes)
    laplacian = to_dense_adj(index, edge_attr=weight, max_num_nodes=num_nodes)[0]
    lambda_max = float(torch.linalg.eigvalsh(laplacian.double())[-1])  # >= 1: the diagonal of L is 1
    return 2.0 * laplacian / lambda_max - torch.eye(num_nodes, dtype=laplacian.dtype, device=laplacian.device)


class ChebGraphConv(nn.Module):
    r"""Chebyshev spectral graph convolution (Defferrard et al., 2016) on a rescaled Laplacian (a dense tensor or a
    :class:`~gdl_graphs.models.temporal.diffusion.GraphOperator`).

    .. math::
        \mathbf{H} = \sum_{k=0}^{K-1} T_k(\tilde{\mathbf{L}})\,\mathbf{X}\,\boldsymbol{\Theta}_k + \mathbf{b},
        \quad T_0 = \mathbf{I},\; T_1 = \tilde{\mathbf{L}},\; T_k = 2\tilde{\mathbf{L}}T_{k-1} - T_{k-2}

    (PyG's :class:`~torch_geometric.nn.ChebConv` does the same on sparse ``[N, C]`` inputs; this form applies one
    ``[N, N]`` operator to every ``(batch, time)`` slice at once.) When ``out_channels <= in_channels`` the filters
    are applied first, :math:`\mathbf{Y}_k = \mathbf{X}\boldsymbol{\Theta}_k`, and the sum is evaluated by
    Clenshaw's recurrence on the narrower :math:`\mathbf{Y}_k`:
    :math:`\mathbf{B}_k = \mathbf{Y}_k + 2\tilde{\mathbf{L}}\mathbf{B}_{k+1} - \mathbf{B}_{k+2}` down to
    :math:`k = 1`, then :math:`\mathbf{H} = \mathbf{Y}_0 + \tilde{\mathbf{L}}\mathbf{B}_1 - \mathbf{B}_2 +
    \mathbf{b}` (the same :math:`K - 1` operator products, on ``out_channels`` instead of ``in_channels``
    columns, and no ``[..., N, K * in_channels]`` concatenation). The two orders differ by rounding only.

    Shapes:
        x ``[..., N, C_in]``, laplacian ``[N, N]`` (tensor or operator) -> ``[..., N, C_out]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, out_channels: int, K: int = 3, bias: bool = True):
        super().__init__()
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        self.in_channels, self.out_channels, self.K = in_channels, out_channels, K
        self.lin = Linear(K * in_channels, out_channels, bias=bias, weight_initializer="glorot",
                          bias_initializer="zeros")

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor, laplacian: Tensor) -> Tensor:
        if self.K > 1 and self.out_channels <= self.in_channels:
            return self._filters_first(x, laplacian)
        terms = [x]
        if self.K > 1:
            terms.append(apply_operator(laplacian, x))
        for _ in range(2, self.K):
            terms.append(2 * apply_operator(laplacian, terms[-1]) - terms[-2])
        return self.lin(torch.cat(terms, dim=-1))

    def _filters_first(self, x: Tensor, laplacian: Tensor) -> Tensor:
        """Clenshaw's evaluation of the Chebyshev sum on the filtered inputs ``Y_k = X Θ_k`` (class docstring)."""
        # lin.weight is [out, K * in], term k's block in columns k*in:(k+1)*in; stack the blocks as K * out rows
        weight = self.lin.weight.view(self.out_channels, self.K, self.in_channels).transpose(0, 1)
        filtered = torch.nn.functional.linear(x, weight.reshape(self.K * self.out_channels, self.in_channels))
        y = filtered.split(self.out_channels, dim=-1)
        after, current = torch.zeros_like(y[0]), y[-1]  # B_{k+2}, B_{k+1}
        for k in range(self.K - 2, 0, -1):
            after, current = current, y[k] + 2 * apply_operator(laplacian, current) - after
        out = y[0] + apply_operator(laplacian, current) - after
        return out if self.lin.bias is None else out + self.lin.bias

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, K={self.K})"


class TemporalGatedConv(nn.Module):
    r"""Gated (GLU) temporal convolution, valid padding, shared over nodes.

    .. math::
        [\mathbf{P}, \mathbf{Q}] = \boldsymbol{\Gamma} *_{\mathcal{T}} \mathbf{X}, \qquad
        \mathbf{Y} = (\mathbf{P} + \mathbf{X}_{res}) \odot \sigma(\mathbf{Q})

    Output step :math:`t` (aligned to the last input step of its window) sees inputs :math:`t-k+1, \dots, t`
    only. :math:`\mathbf{X}_{res}` is the input at the aligned steps, through a learned ``1 x 1`` projection when
    the channel counts differ (the reference code pads with zeros or uses a ``1 x 1`` convolution). The residual is
    a tap of the convolution at the aligned step, so it is added to the kernel's last tap of the
    :math:`\mathbf{P}` half (the identity, or the projection's weight) and the layer runs as one convolution and
    :func:`torch.nn.functional.glu`: no separate residual product or sum, and no gradient concatenation of the
    two halves in the backward pass.

    Shapes:
        x ``[B, T, N, C_in]`` -> ``[B, T - k + 1, N, C_out]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, (kernel_size, 1))
        self.residual = (None if in_channels == out_channels  # the identity, added to the kernel in forward()
                         else Linear(in_channels, out_channels, bias=False, weight_initializer="glorot"))

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if self.residual is not None:
            self.residual.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) < self.kernel_size:
            raise ValueError(f"x has {x.size(1)} steps, fewer than kernel_size={self.kernel_size}")
        weight = self.conv.weight
        residual = (self.residual.weight if self.residual is not None
                    else torch.eye(self.out_channels, dtype=weight.dtype, device=weight.device))
        # [2 out, in, k, 1]: the residual on the P half of the last tap, zeros elsewhere
        tap = torch.nn.functional.pad(residual[:, :, None, None], (0, 0, self.kernel_size - 1, 0, 0, 0, 0,
                                                                   self.out_channels))
        out = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight + tap, self.conv.bias)
        return torch.nn.functional.glu(out.permute(0, 2, 3, 1), dim=-1)  # channels-last in memory: contiguous

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"


class STConvBlock(nn.Module):
    r"""Spatio-temporal block: temporal GLU conv -> graph conv -> ReLU -> temporal GLU conv -> BatchNorm -> dropout.

    The reference code normalises over ``[N, C]`` with per-node affine parameters (LayerNorm), and PyTorch Geometric
    Temporal's ``STConv`` with a BatchNorm over nodes (per-node statistics and affine parameters); both tie
    parameters to node identities. Here BatchNorm runs over channels, with statistics pooled over (batch, time,
    nodes) and per-channel affine parameters, so the block is :math:`S_n`-equivariant with no node-indexed
    parameters. (It trains like PGT's norm on Montevideo bus, where LayerNorm over each node's channels did not:
    ``docs/traffic.md``.)

    Shapes:
        x ``[B, T, N, C_in]``, graph operator ``[N, N]`` -> ``[B, T - 2(k - 1), N, C_out]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, channels: tuple[int, int, int], kernel_size: int, K: int, spatial: str,
                 dropout: float):
        super().__init__()
        temporal, hidden, out = channels
        self.temporal1 = TemporalGatedConv(in_channels, temporal, kernel_size)
        self.spatial = ChebGraphConv(temporal, hidden, K) if spatial == "cheb" else DenseGCNConv(temporal, hidden)
        self.temporal2 = TemporalGatedConv(hidden, out, kernel_size)
        self.norm = nn.BatchNorm2d(out)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        for module in (self.temporal1, self.spatial, self.temporal2, self.norm):
            module.reset_parameters()

    def forward(self, x: Tensor, operator: Tensor | GraphOperator) -> Tensor:
        x = self.temporal1(x)
        if isinstance(self.spatial, DenseGCNConv):  # adds self-loops and normalises the adjacency itself
            b, t, n, c = x.shape
            x = self.spatial(x.reshape(b * t, n, c), operator).reshape(b, t, n, -1)
        else:
            x = self.spatial(x, operator)
        x = self.temporal2(torch.relu(x))
        return self.dropout(on_channels_last(self.norm, x))


class STGCN(nn.Module):
    r"""STGCN forecaster: ``num_blocks`` :class:`STConvBlock`\ s and an output layer.

    The output layer is the reference one (a temporal GLU convolution spanning all remaining steps, LayerNorm, a
    ``1 x 1`` sigmoid convolution, a fully connected map), except that the last map emits all ``out_horizon``
    steps at once; the paper trains one single-step model per horizon. Spatial filters: ``spatial="cheb"``
    (Chebyshev of order ``K`` on :func:`scaled_laplacian`) or ``"gcn"`` (first-order
    :class:`~torch_geometric.nn.DenseGCNConv` with renormalised self-loops on the symmetrised adjacency). The
    operators are non-persistent buffers built once from ``edge_index``/``edge_weight``: the Laplacian a
    :class:`~gdl_graphs.models.temporal.diffusion.GraphOperator` (sparse or dense by density), the GCN adjacency
    dense.

    Args:
        num_nodes, in_channels, out_horizon, edge_index, edge_weight: as in
            :class:`~gdl_graphs.models.temporal.dcrnn.DCRNN`.
        in_steps: input window length :math:`T_{in}`; must exceed ``2 * num_blocks * (kernel_size - 1)``.
        channels: (temporal, spatial, temporal) channels of each block, (64, 16, 64) in the paper.
        num_blocks: ST-Conv blocks (2).
        kernel_size: temporal kernel :math:`K_t` (3).
        K: Chebyshev order :math:`K_s` (3); ignored for ``"gcn"``.
        spatial: ``"cheb"`` or ``"gcn"``.
        dropout: after each block.

    Shapes:
        x ``[B, T_in, N, F]`` -> ``[B, T_out, N]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                 edge_weight: Tensor | None = None, *, in_steps: int = 12,
                 channels: tuple[int, int, int] = (64, 16, 64), num_blocks: int = 2, kernel_size: int = 3,
                 K: int = 3, spatial: str = "cheb", dropout: float = 0.0):
        super().__init__()
        if spatial not in ("cheb", "gcn"):
            raise ValueError(f"spatial must be 'cheb' or 'gcn', got {spatial!r}")
        check_positive_ints(in_channels=in_channels, out_horizon=out_horizon, num_blocks=num_blocks,
                            kernel_size=kernel_size)
        if len(channels) != 3:
            raise ValueError(f"channels must be (temporal, spatial, temporal), got {channels!r}")
        remaining = in_steps - 2 * num_blocks * (kernel_size - 1)
        if remaining < 1:
            raise ValueError(f"in_steps={in_steps} is too short for {num_blocks} blocks with kernel_size="
                             f"{kernel_size}; need in_steps > {2 * num_blocks * (kernel_size - 1)}")
        self.num_nodes, self.in_channels, self.out_horizon = num_nodes, in_channels, out_horizon
        self.in_steps, self.spatial = in_steps, spatial
        if spatial == "cheb":  # sparse or dense by density (non-persistent buffers)
            self.operator = GraphOperator(scaled_laplacian(edge_index, edge_weight, num_nodes))
        else:  # PyG's DenseGCNConv takes the dense adjacency
            self.register_buffer("operator", dense_adjacency(*symmetrised_adjacency(edge_index, edge_weight,
                                                                                    num_nodes), num_nodes),
                                 persistent=False)
        self.blocks = nn.ModuleList(
            STConvBlock(in_channels if i == 0 else channels[2], tuple(channels), kernel_size, K, spatial, dropout)
            for i in range(num_blocks))
        out = channels[2]
        self.output_temporal = TemporalGatedConv(out, out, remaining)
        self.output_norm = nn.LayerNorm(out)
        self.output_gate = Linear(out, out, weight_initializer="glorot", bias_initializer="zeros")
        self.output_head = Linear(out, out_horizon, weight_initializer="glorot", bias_initializer="zeros")

    def reset_parameters(self) -> None:
        for module in (*self.blocks, self.output_temporal, self.output_norm, self.output_gate, self.output_head):
            module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_window(x, self.num_nodes, self.in_channels)
        if x.size(1) != self.in_steps:
            raise ValueError(f"x has {x.size(1)} steps, but the model was built with in_steps={self.in_steps}")
        for block in self.blocks:
            x = block(x, self.operator)
        x = self.output_norm(self.output_temporal(x))
        x = self.output_head(torch.sigmoid(self.output_gate(x)))
        return x[:, -1].transpose(1, 2)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_nodes={self.num_nodes}, in_channels={self.in_channels}, "
                f"out_horizon={self.out_horizon}, in_steps={self.in_steps}, num_blocks={len(self.blocks)}, "
                f"spatial={self.spatial!r})")
