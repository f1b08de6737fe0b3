r"""Dense learned clustering: every node is softly assigned to :math:`C` clusters, and the pooled graph is

.. math::
    \mathbf{S} = \mathrm{softmax}(\mathbf{S}_{\text{logits}}), \qquad
    \mathbf{X}' = \mathbf{S}^\top \mathbf{X} \in \mathbb{R}^{B \times C \times F}, \qquad
    \mathbf{A}' = \mathbf{S}^\top \mathbf{A}\, \mathbf{S} \in \mathbb{R}^{B \times C \times C}.

:func:`dense_diff_pool` (DiffPool, Ying et al. 2018) adds a link-prediction and an entropy loss,
:func:`dense_mincut_pool` (MinCutPool, Bianchi et al. 2020) a cut and an orthogonality loss; both equal PyG's
namesakes (tested to 1e-6) and check their inputs. :class:`DiffPool` and :class:`MinCutPool` are the layers: they
compute the assignment logits from the graph and call the function.

Inputs are dense batches, as ``torch_geometric.utils.to_dense_batch`` / ``to_dense_adj`` make them: ``x``
[B, N, F] (or [N, F]), ``adj`` [B, N, N], ``mask`` [B, N] (True for real nodes, False for padding).

Symmetry: with an assignment computed equivariantly from the nodes (a GNN or an MLP), relabelling the nodes of a
graph leaves :math:`\mathbf{X}'`, :math:`\mathbf{A}'` and the losses unchanged; the clusters are numbered by the
assignment's output channels, so the permutation of the clusters in
:data:`~gdl_graphs.groups.PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS` is the identity here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import DenseSAGEConv

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS

DENSE_POOLED_OUTPUTS = ("x", "adj", "graph", "graph")
"""How the check of :mod:`gdl_graphs.testing.pooling` reads ``(x', adj', loss_1, loss_2)``."""

EPS = 1e-15


def _dense_inputs(x: Tensor, adj: Tensor, s: Tensor,
                  mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Add the batch dimension to [N, *] inputs and check that the shapes agree."""
    for name, value in (("x", x), ("adj", adj), ("s", s)):
        if not isinstance(value, Tensor) or value.dim() not in (2, 3):
            shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a dense tensor [B, N, *] (or [N, *] for one graph), got {shape}")
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
    x = x.unsqueeze(0) if x.dim() == 2 else x
    adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
    s = s.unsqueeze(0) if s.dim() == 2 else s
    batch_size, num_nodes = x.shape[:2]
    if adj.shape != (batch_size, num_nodes, num_nodes):
        raise ValueError(f"adj must have shape [{batch_size}, {num_nodes}, {num_nodes}] to match x "
                         f"{list(x.shape)}, got {list(adj.shape)}")
    if s.shape[:2] != (batch_size, num_nodes):
        raise ValueError(f"s must have shape [{batch_size}, {num_nodes}, num_clusters] to match x "
                         f"{list(x.shape)}, got {list(s.shape)}")
    if mask is not None:
        if mask.numel() != batch_size * num_nodes:
            raise ValueError(f"mask must have shape [{batch_size}, {num_nodes}] to match x {list(x.shape)}, "
                             f"got {list(mask.shape)}")
        mask = mask.reshape(batch_size, num_nodes, 1).to(x.dtype)
    return x, adj, s, mask


def _pool(x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Masked assignment and the pooled ``S^T X``, ``S^T A S``."""
    if mask is not None:
        x, s = x * mask, s * mask
    st = s.transpose(1, 2)
    return s, st @ x, st @ adj @ s


def dense_diff_pool(x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None = None,
                    normalize: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Differentiable pooling (Ying et al. 2018, "Hierarchical Graph Representation Learning with
    Differentiable Pooling"), :math:`\mathbf{X}' = \mathbf{S}^\top\mathbf{X}`,
    :math:`\mathbf{A}' = \mathbf{S}^\top\mathbf{A}\mathbf{S}` with :math:`\mathbf{S} = \mathrm{softmax}(\mathbf{s})`,
    and its two auxiliary losses, the link-prediction loss and the entropy of the assignments,

    .. math::
        \mathcal{L}_{\mathrm{LP}} = \big\| \mathbf{A} - \mathbf{S}\mathbf{S}^\top \big\|_F
        \;\big(/\, B N^2 \text{ if normalize}\big), \qquad
        \mathcal{L}_{\mathrm{E}} = \frac{1}{BN} \sum_{b, n} H(\mathbf{S}_{b,n}).

    Equals :func:`torch_geometric.nn.dense_diff_pool`, including its conventions: the Frobenius norm runs over the
    whole batch, and padded nodes (``mask`` False) count in the :math:`BN` of the entropy mean.

    Args:
        x: node features [B, N, F] (or [N, F]).
        adj: adjacency [B, N, N].
        s: assignment logits [B, N, C] (the softmax over the :math:`C` clusters is taken here).
        mask: [B, N], True for real nodes.
        normalize: divide the link-prediction loss by ``adj.numel()``.

    Returns:
        ``(x' [B, C, F], adj' [B, C, C], link_loss [], entropy_loss [])``.
    """
    x, adj, s, mask = _dense_inputs(x, adj, s, mask)
    s, out, out_adj = _pool(x, adj, torch.softmax(s, dim=-1), mask)
    link_loss = torch.linalg.vector_norm(adj - s @ s.transpose(1, 2))
    if normalize:
        link_loss = link_loss / adj.numel()
    entropy_loss = (-s * torch.log(s + EPS)).sum(dim=-1).mean()
    return out, out_adj, link_loss, entropy_loss


def dense_mincut_pool(x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None = None,
                      temp: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""MinCut pooling (Bianchi et al. 2020, "Spectral Clustering with Graph Neural Networks for Graph Pooling"):
    :math:`\mathbf{S} = \mathrm{softmax}(\mathbf{s}/T)`, :math:`\mathbf{X}' = \mathbf{S}^\top\mathbf{X}`, the
    coarsened adjacency with its diagonal zeroed and symmetrically normalised,
    :math:`\mathbf{A}' = \tilde{\mathbf{D}}^{-1/2}\tilde{\mathbf{A}}\tilde{\mathbf{D}}^{-1/2}` with
    :math:`\tilde{\mathbf{A}} = \mathbf{S}^\top\mathbf{A}\mathbf{S} - \mathrm{diag}(\cdot)`, and two losses
    (averaged over the batch):

    .. math::
        \mathcal{L}_c = -\frac{\mathrm{Tr}(\mathbf{S}^\top\mathbf{A}\mathbf{S})}
                              {\mathrm{Tr}(\mathbf{S}^\top\mathbf{D}\mathbf{S})}, \qquad
        \mathcal{L}_o = \Big\| \frac{\mathbf{S}^\top\mathbf{S}}{\|\mathbf{S}^\top\mathbf{S}\|_F}
                               - \frac{\mathbf{I}_C}{\sqrt{C}} \Big\|_F,

    with :math:`\mathbf{D}` the degree matrix of :math:`\mathbf{A}`. Equals
    :func:`torch_geometric.nn.dense_mincut_pool`.

    Args:
        x, adj, s, mask: as in :func:`dense_diff_pool`.
        temp: softmax temperature :math:`T` (> 0).

    Returns:
        ``(x' [B, C, F], adj' [B, C, C], mincut_loss [], ortho_loss [])``.
    """
    if not temp > 0:
        raise ValueError(f"temp must be > 0, got {temp}")
    x, adj, s, mask = _dense_inputs(x, adj, s, mask)
    num_clusters = s.size(-1)
    s, out, out_adj = _pool(x, adj, torch.softmax(s / temp if temp != 1.0 else s, dim=-1), mask)
    cut = torch.diagonal(out_adj, dim1=-2, dim2=-1).sum(-1)
    volume = (adj.sum(-1) * (s * s).sum(-1)).sum(-1)  # Tr(S^T D S) without forming D
    mincut_loss = (-(cut / volume)).mean()
    gram = s.transpose(1, 2) @ s
    identity = torch.eye(num_clusters, dtype=gram.dtype, device=gram.device) / num_clusters ** 0.5
    ortho_loss = torch.linalg.matrix_norm(gram / torch.linalg.matrix_norm(gram, keepdim=True) - identity).mean()
    out_adj = out_adj * (1 - torch.eye(num_clusters, dtype=out_adj.dtype, device=out_adj.device))
    degree = out_adj.sum(-1).sqrt().unsqueeze(1) + EPS
    out_adj = out_adj / degree / degree.transpose(1, 2)
    return out, out_adj, mincut_loss, ortho_loss


class _DensePool(nn.Module):
    """Shared by :class:`DiffPool` and :class:`MinCutPool`: symmetry, output layout and channel checks."""

    symmetry = PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
    pooled_outputs = DENSE_POOLED_OUTPUTS

    def __init__(self, in_channels: int, num_clusters: int):
        super().__init__()
        if in_channels < 1 or num_clusters < 1:
            raise ValueError(f"in_channels and num_clusters must be >= 1, got {in_channels} and {num_clusters}")
        self.in_channels, self.num_clusters = in_channels, num_clusters

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.size(-1) != self.in_channels:
            shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [B, N, {self.in_channels}] (in_channels={self.in_channels}), "
                             f"got {shape}")


class DiffPool(_DensePool):
    r"""A DiffPool layer (Ying et al. 2018): an embedding GNN and an assignment GNN on the same dense graph,

    .. math::
        \mathbf{Z} = \mathrm{GNN}_{\text{embed}}(\mathbf{X}, \mathbf{A}), \quad
        \mathbf{S} = \mathrm{softmax}\big(\mathrm{GNN}_{\text{pool}}(\mathbf{X}, \mathbf{A})\big), \quad
        \mathbf{X}' = \mathbf{S}^\top\mathbf{Z}, \quad \mathbf{A}' = \mathbf{S}^\top\mathbf{A}\mathbf{S},

    returning the link-prediction and entropy losses of :func:`dense_diff_pool` to add to the training loss.
    Both GNNs default to one :class:`torch_geometric.nn.DenseSAGEConv` (GraphSAGE, as in the paper, whose GNNs are
    3-layer stacks: pass your own ``embed`` / ``assign`` modules, called as ``module(x, adj, mask)``).

    Args:
        in_channels: node features :math:`F`.
        out_channels: features of :math:`\mathbf{Z}` (ignored when ``embed`` is given).
        num_clusters: :math:`C`, the number of pooled nodes.
        normalize: as in :func:`dense_diff_pool`.
        embed, assign: replacement GNNs (``assign`` must output ``num_clusters`` channels).

    Shapes: ``x`` [B, N, F], ``adj`` [B, N, N], ``mask`` [B, N] -> ``(x' [B, C, out_channels], adj' [B, C, C],
    link_loss [], entropy_loss [])``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_clusters: int, normalize: bool = True,
                 embed: nn.Module | None = None, assign: nn.Module | None = None):
        super().__init__(in_channels, num_clusters)
        self.out_channels, self.normalize = out_channels, normalize
        self.embed = DenseSAGEConv(in_channels, out_channels) if embed is None else embed
        self.assign = DenseSAGEConv(in_channels, num_clusters) if assign is None else assign
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.embed, self.assign):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None):
        self._check(x)
        s = self.assign(x, adj, mask)
        if s.size(-1) != self.num_clusters:
            raise ValueError(f"the assign GNN returned {s.size(-1)} channels, but num_clusters={self.num_clusters}")
        return dense_diff_pool(self.embed(x, adj, mask), adj, s, mask, self.normalize)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_clusters={self.num_clusters})")


class MinCutPool(_DensePool):
    r"""A MinCutPool layer (Bianchi et al. 2020): the assignment is an MLP of the node features,
    :math:`\mathbf{S} = \mathrm{softmax}(\mathrm{MLP}(\mathbf{X}))`, then :func:`dense_mincut_pool`. The MLP is one
    ``Linear(in_channels, num_clusters)`` (PyG's example), or ``Linear -> ReLU -> Linear`` with
    ``hidden_channels`` (the paper's). The cut and orthogonality losses are returned to add to the training loss.

    Args:
        in_channels: node features :math:`F`.
        num_clusters: :math:`C`.
        hidden_channels: hidden width of a two-layer MLP (``None``: one linear map).
        temp: softmax temperature.

    Shapes: ``x`` [B, N, F], ``adj`` [B, N, N], ``mask`` [B, N] -> ``(x' [B, C, F], adj' [B, C, C],
    mincut_loss [], ortho_loss [])``.
    """

    def __init__(self, in_channels: int, num_clusters: int, hidden_channels: int | None = None, temp: float = 1.0):
        super().__init__(in_channels, num_clusters)
        if not temp > 0:
            raise ValueError(f"temp must be > 0, got {temp}")
        self.hidden_channels, self.temp = hidden_channels, temp
        self.assign = (nn.Linear(in_channels, num_clusters) if hidden_channels is None else
                       nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.ReLU(),
                                     nn.Linear(hidden_channels, num_clusters)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.assign.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None):
        self._check(x)
        return dense_mincut_pool(x, adj, self.assign(x), mask, self.temp)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, num_clusters={self.num_clusters})"
