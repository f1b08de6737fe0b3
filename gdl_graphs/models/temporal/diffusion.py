r"""Diffusion convolution on a sensor graph (Li et al., 2018), the spatial layer of DCRNN and Graph WaveNet.

A directed weighted graph :math:`\mathbf{W}` (:math:`W_{ij}` = weight of the edge :math:`i \to j`) defines two
random walks: forward, :math:`\mathbf{P}_f = \mathbf{D}_O^{-1}\mathbf{W}`, and backward,
:math:`\mathbf{P}_b = \mathbf{D}_I^{-1}\mathbf{W}^\top` (:math:`\mathbf{D}_O, \mathbf{D}_I` the out- and in-degree
matrices). A signal diffuses one step as :math:`\mathbf{X}' = \mathbf{P}^\top\mathbf{X}`, so node :math:`j`
receives from its in-neighbours along the forward walk and from its out-neighbours along the backward walk.

Sensor graphs are small (:math:`N \lesssim 1000`), so the graph is held as dense ``[N, N]`` operators built once
with :func:`torch_geometric.utils.to_dense_adj`; one hop is a batched dense matmul over the node dimension of
channels-last features ``[..., N, C]``. (On METR-LA-sized features the dense matmul measured about as fast as a CSR
SpMM, which needs the node axis first and two transposes.)

Also holds the boundary checks shared by the forecasting models of :mod:`gdl_graphs.models.temporal`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import Linear
from torch_geometric.utils import to_dense_adj

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn.validation import check_edge_index, check_edge_weight, check_positive_ints


def dense_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> Tensor:
    r"""The dense weighted adjacency :math:`\mathbf{W}` ``[N, N]``, :math:`W_{ij}` = summed weight of edges
    :math:`i \to j` (``edge_index[0]`` = sources); ``edge_weight`` ``[E]`` defaults to ones.

    Raises:
        ValueError: naming ``num_nodes``, ``edge_index`` or ``edge_weight`` when it is malformed, out of range,
            negative or not finite.
    """
    check_positive_ints(num_nodes=num_nodes)
    check_edge_index(edge_index, num_nodes)
    check_edge_weight(edge_weight, edge_index.size(1))
    if edge_weight is not None:
        if not edge_weight.is_floating_point():
            raise ValueError(f"edge_weight must be a floating-point tensor, got {edge_weight.dtype}")
        if not bool(torch.isfinite(edge_weight).all()) or bool((edge_weight < 0).any()):
            raise ValueError("edge_weight must be finite and non-negative")
    if edge_index.size(1) == 0:
        dtype = edge_weight.dtype if edge_weight is not None else torch.get_default_dtype()
        return torch.zeros(num_nodes, num_nodes, dtype=dtype, device=edge_index.device)
    return to_dense_adj(edge_index.long(), edge_attr=edge_weight, max_num_nodes=num_nodes)[0]


def diffusion_operators(adj: Tensor) -> tuple[Tensor, Tensor]:
    r"""The forward and backward one-step diffusion operators of a dense adjacency ``adj`` ``[N, N]``.

    .. math::
        \mathbf{T}_f = (\mathbf{D}_O^{-1}\mathbf{W})^\top, \qquad
        \mathbf{T}_b = (\mathbf{D}_I^{-1}\mathbf{W}^\top)^\top,

    applied as :math:`\mathbf{T}\mathbf{X}`. Nodes without out- (in-) edges get a zero row in
    :math:`\mathbf{D}_O^{-1}\mathbf{W}` (:math:`\mathbf{D}_I^{-1}\mathbf{W}^\top`), as in the reference code.
    """
    def row_normalised(w: Tensor) -> Tensor:
        degree = w.sum(dim=1, keepdim=True)
        return torch.where(degree > 0, w / degree.clamp(min=torch.finfo(w.dtype).tiny), torch.zeros_like(w))

    return row_normalised(adj).T.contiguous(), row_normalised(adj.T).T.contiguous()


def check_window(x: Tensor, num_nodes: int, in_channels: int, name: str = "x") -> None:
    """Validate an input window ``[B, T_in, N, F]`` of a forecasting model (shape, dtype, finiteness)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.size(2) != num_nodes or x.size(3) != in_channels or x.size(0) == 0 or x.size(1) == 0:
        raise ValueError(f"{name} must have shape [batch, steps, {num_nodes}, {in_channels}] "
                         f"(num_nodes={num_nodes}, in_channels={in_channels}), got {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values (encode missing readings before scaling)")


class DiffusionConv(nn.Module):
    r"""Diffusion convolution with :math:`K` hops along each of :math:`S` diffusion operators.

    .. math::
        \mathbf{H} = \mathbf{X}\boldsymbol{\Theta}_0 + \sum_{s=1}^{S}\sum_{k=1}^{K}
        \mathbf{T}_s^{k}\mathbf{X}\boldsymbol{\Theta}_{s,k} + \mathbf{b}

    With :math:`\{\mathbf{T}_f, \mathbf{T}_b\}` from :func:`diffusion_operators` this is the bidirectional
    random-walk filter of DCRNN (Li et al., 2018, eq. 2); Graph WaveNet adds a learned adaptive operator as a third
    support. Powers are plain matrix powers, as in the papers and in Graph WaveNet's code (DCRNN's reference code
    uses the Chebyshev-like recursion :math:`2\mathbf{T}\mathbf{X}_{k-1} - \mathbf{X}_{k-2}` instead). The
    :math:`1 + SK` terms are concatenated on the channel axis and mixed by one linear map.

    Args:
        in_channels: input features :math:`C_{in}`.
        out_channels: output features :math:`C_{out}`.
        num_supports: number :math:`S` of diffusion operators passed to :meth:`forward`.
        K: hops per operator.
        bias: learn :math:`\mathbf{b}`.

    Shapes:
        x ``[..., N, C_in]`` and ``supports``, :math:`S` tensors ``[N, N]`` -> ``[..., N, C_out]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, out_channels: int, num_supports: int = 2, K: int = 2, bias: bool = True):
        super().__init__()
        if num_supports < 1:
            raise ValueError(f"num_supports must be >= 1, got {num_supports}")
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_supports, self.K = num_supports, K
        self.lin = Linear((1 + num_supports * K) * in_channels, out_channels, bias=bias,
                          weight_initializer="glorot", bias_initializer="zeros")

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor, supports: Sequence[Tensor]) -> Tensor:
        if len(supports) != self.num_supports:
            raise ValueError(f"supports must hold {self.num_supports} operators, got {len(supports)}")
        if x.size(-1) != self.in_channels:
            raise ValueError(f"x has {x.size(-1)} features, but the layer was built with "
                             f"in_channels={self.in_channels}")
        if x.dim() < 2 or any(s.shape != (x.size(-2), x.size(-2)) for s in supports):
            raise ValueError(f"x must have shape [..., N, C] matching supports of shape [N, N]; got x "
                             f"{list(x.shape)} and supports {[list(s.shape) for s in supports]}")
        terms = [x]
        for support in supports:
            h = x
            for _ in range(self.K):
                h = torch.matmul(support, h)
                terms.append(h)
        return self.lin(torch.cat(terms, dim=-1))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_supports={self.num_supports}, K={self.K})")
