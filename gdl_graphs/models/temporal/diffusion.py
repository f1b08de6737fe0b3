r"""Diffusion convolution on a sensor graph (Li et al., 2018), the spatial layer of DCRNN and Graph WaveNet.

A directed weighted graph :math:`\mathbf{W}` (:math:`W_{ij}` = weight of the edge :math:`i \to j`) defines two
random walks: forward, :math:`\mathbf{P}_f = \mathbf{D}_O^{-1}\mathbf{W}`, and backward,
:math:`\mathbf{P}_b = \mathbf{D}_I^{-1}\mathbf{W}^\top` (:math:`\mathbf{D}_O, \mathbf{D}_I` the out- and in-degree
matrices). A signal diffuses one step as :math:`\mathbf{X}' = \mathbf{P}^\top\mathbf{X}`, so node :math:`j`
receives from its in-neighbours along the forward walk and from its out-neighbours along the backward walk.

The operators are built once as dense ``[N, N]`` matrices (:func:`torch_geometric.utils.to_dense_adj`; sensor graphs
have :math:`N \lesssim` a few thousand) and held by :class:`GraphOperator`, which applies them to channels-last
features ``[..., N, C]`` as a CSR product on their non-zero entries when the graph is sparse enough for that to be
faster, else as one batched dense matmul.

Also holds the boundary checks shared by the forecasting models of :mod:`gdl_graphs.models.temporal`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import Linear
from torch_geometric.utils import to_dense_adj

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.validation import check_edge_index, check_edge_weight, check_positive_ints

SPARSE_MAX_DENSITY = 0.08
"""A :class:`GraphOperator` with at most this fraction of its :math:`N^2` entries non-zero is applied as a CSR
product. Measured (one hop, forward + backward, 64 x 64 features per node, 1 CPU thread, another job running):
CSR faster at N = 207 with 4% non-zero (1.6x, METR-LA's density), N = 675 with 0.3% (3.3x, Montevideo's) and
4.4% (1.6x), N = 2000 with 0.5% (7.9x); dense faster at N = 207 with 14% (1.45x)."""


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


class GraphOperator(nn.Module):
    r"""A fixed graph operator :math:`\mathbf{T}` ``[N, N]`` applied to channels-last features:
    ``op(x)`` :math:`= \mathbf{T}\mathbf{X}` for every ``[N, C]`` slice of ``x`` ``[..., N, C]``.

    Held as its non-zero entries, applied by a CSR product (:func:`gdl_graphs.nn.aggregate.spmm` on the cached
    adjacency of those entries, node axis first), when at most :data:`SPARSE_MAX_DENSITY` of the entries are
    non-zero; otherwise dense, applied by one batched matmul. Both are non-persistent buffers (the operator is
    rebuilt from the graph, never loaded from a state dict) and follow the module's device and dtype.

    Args:
        matrix: the dense operator ``[N, N]``.
    """

    def __init__(self, matrix: Tensor):
        super().__init__()
        if matrix.dim() != 2 or matrix.size(0) != matrix.size(1):
            raise ValueError(f"matrix must be a square [N, N] tensor, got shape {list(matrix.shape)}")
        self.num_nodes = matrix.size(0)
        rows, cols = matrix.nonzero(as_tuple=True)
        self.sparse = rows.numel() <= SPARSE_MAX_DENSITY * self.num_nodes ** 2
        if self.sparse:  # entry (i, j) is the message j -> i
            self.register_buffer("edge_index", torch.stack([cols, rows]), persistent=False)
            self.register_buffer("values", matrix[rows, cols], persistent=False)
        else:
            self.register_buffer("matrix", matrix.clone(), persistent=False)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.num_nodes, self.num_nodes))

    def to_dense(self) -> Tensor:
        """The operator as a dense ``[N, N]`` tensor."""
        if not self.sparse:
            return self.matrix
        dense = self.values.new_zeros(self.num_nodes, self.num_nodes)
        return dense.index_put_((self.edge_index[1], self.edge_index[0]), self.values)

    def forward(self, x: Tensor) -> Tensor:
        if not self.sparse:
            return torch.matmul(self.matrix, x)
        nodes_first = x.movedim(-2, 0)
        out = aggregate.spmm(aggregate.adjacency(self.edge_index, self.num_nodes),
                             nodes_first.reshape(self.num_nodes, -1), self.values.to(x.dtype))
        return out.view(nodes_first.shape).movedim(0, -2)

    def __repr__(self) -> str:
        held = f"sparse, {self.values.numel()} entries" if self.sparse else "dense"
        return f"{type(self).__name__}(num_nodes={self.num_nodes}, {held})"


def apply_operator(operator: Tensor | GraphOperator, x: Tensor) -> Tensor:
    """``operator @ x`` over the node axis of channels-last ``x`` ``[..., N, C]``, for a dense tensor or a
    :class:`GraphOperator`."""
    return operator(x) if isinstance(operator, GraphOperator) else torch.matmul(operator, x)


def on_channels_last(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a 2-D module expecting ``[B, C, T, N]`` (a convolution, a BatchNorm) to channels-last ``[B, T, N, C]``
    features; the permuted view is channels-last in memory, so no copy is made."""
    return module(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


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
        x ``[..., N, C_in]`` and ``supports``, :math:`S` operators ``[N, N]`` (tensors or
        :class:`GraphOperator`\ s) -> ``[..., N, C_out]``.
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
                h = apply_operator(support, h)
                terms.append(h)
        return self.lin(torch.cat(terms, dim=-1))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_supports={self.num_supports}, K={self.K})")
