r"""Positional and structural encodings for graph Transformers, as PyG transforms plus their encoders.

* :class:`AddLaplacianPE`: the :math:`k` eigenvectors of the graph Laplacian with the smallest eigenvalues,
  after the trivial first one. An eigenvector is defined only up to sign (and, for repeated eigenvalues, up to a
  rotation of its eigenspace), so a model must not rely on the sign: either flip signs at random during training
  (:func:`random_sign_flip`, done by :class:`LapPEEncoder` in training mode) or use a sign-invariant encoder
  (``LapPEEncoder(..., sign_invariant=True)``).
* :class:`AddRandomWalkSE`: random-walk structural encodings (RWSE), the return probabilities
  :math:`[(\mathbf{D}^{-1}\mathbf{A})^t]_{ii}` for :math:`t = 1..T`; permutation equivariant and sign-free.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.csgraph import laplacian
from scipy.sparse.linalg import eigsh
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.transforms import AddRandomWalkPE, BaseTransform
from torch_geometric.utils import coalesce, remove_self_loops, to_scipy_sparse_matrix

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT


class AddLaplacianPE(BaseTransform):
    r"""Store the Laplacian eigenvector positional encoding in ``data[attr_name]`` ``[N, k]``.

    With :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` (``"sym"``) or
    :math:`\mathbf{D} - \mathbf{A}` (``None``) of the graph made undirected (:math:`\max(\mathbf{A},
    \mathbf{A}^\top)`, self-loops dropped, duplicate edges summed), column :math:`c` is the eigenvector of the
    :math:`(c+1)`-th smallest eigenvalue (the first, trivial one is skipped). Graphs with at most :math:`k` nodes
    are zero-padded to :math:`k` columns. Signs are left as the eigensolver returns them (deterministic for a
    given graph); randomise them during training with :class:`LapPEEncoder`.

    Differences from PyG's :class:`~torch_geometric.transforms.AddLaplacianEigenvectorPE`: that transform fails on
    graphs with at most ``k`` nodes, draws one random sign per call from the global RNG (fixed forever when used
    as a ``pre_transform``) and uses the directed adjacency as given. Small graphs use dense ``numpy.linalg.eigh``,
    larger ones ``scipy.sparse.linalg.eigsh`` with a fixed start vector (deterministic).

    Args:
        k: number of eigenvectors.
        attr_name: attribute to store them in.
        normalization: ``"sym"`` or ``None``.
    """

    DENSE_THRESHOLD: int = 500
    """Graphs with fewer nodes use the dense eigensolver."""

    def __init__(self, k: int, attr_name: str = "lap_pe", normalization: str | None = "sym"):
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if normalization not in ("sym", None):
            raise ValueError(f"normalization must be 'sym' or None, got {normalization!r}")
        self.k, self.attr_name, self.normalization = k, attr_name, normalization

    def forward(self, data: Data) -> Data:
        if data.edge_index is None:
            raise ValueError("data has no edge_index to build the Laplacian from")
        n = data.num_nodes
        edge_index, weight = remove_self_loops(data.edge_index, getattr(data, "edge_weight", None))
        adj = to_scipy_sparse_matrix(edge_index, weight, n).tocsr()
        adj = adj.maximum(adj.T)
        lap = laplacian(adj, normed=self.normalization == "sym").astype(np.float64)
        num = min(self.k + 1, n)
        if n < self.DENSE_THRESHOLD or num >= n - 1:
            values, vectors = np.linalg.eigh(lap.toarray())
        else:
            v0 = np.random.default_rng(0).uniform(size=n)
            values, vectors = eigsh(lap, k=num, which="SA", v0=v0)
        vectors = vectors[:, np.argsort(values, kind="stable")[1:num]]
        pe = torch.zeros(n, self.k)
        pe[:, :vectors.shape[1]] = torch.from_numpy(vectors).float()
        data[self.attr_name] = pe
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, attr_name={self.attr_name!r}, normalization={self.normalization!r})"


class AddRandomWalkSE(AddRandomWalkPE):
    r"""Store random-walk structural encodings :math:`[(\mathbf{D}^{-1}\mathbf{A})^t]_{ii}`, :math:`t = 1..T`, in
    ``data[attr_name]`` ``[N, T]``.

    PyG's :class:`~torch_geometric.transforms.AddRandomWalkPE` does the computation; this subclass validates the
    input and coalesces duplicate edges first (summing ``edge_weight``): PyG writes the dense transition matrix by
    assignment, so a duplicate edge would otherwise count once in the matrix but twice in the degree.

    Args:
        walk_length: :math:`T`, number of steps.
        attr_name: attribute to store the encodings in.
    """

    def __init__(self, walk_length: int, attr_name: str = "rwse"):
        if walk_length < 1:
            raise ValueError(f"walk_length must be positive, got {walk_length}")
        super().__init__(walk_length, attr_name)

    def forward(self, data: Data) -> Data:
        if data.edge_index is None:
            raise ValueError("data has no edge_index to walk on")
        walk = Data(num_nodes=data.num_nodes)
        weight = getattr(data, "edge_weight", None)
        if weight is None:
            walk.edge_index = coalesce(data.edge_index, num_nodes=data.num_nodes)
        else:
            walk.edge_index, walk.edge_weight = coalesce(data.edge_index, weight, num_nodes=data.num_nodes)
        data[self.attr_name] = super().forward(walk)[self.attr_name]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(walk_length={self.walk_length}, attr_name={self.attr_name!r})"


def random_sign_flip(pe: Tensor, batch: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Multiply each eigenvector column of each graph by an independent random sign :math:`\pm 1`.

    Args:
        pe: ``[N, k]`` Laplacian eigenvectors.
        batch: LongTensor ``[N]`` of graph ids (``None``: one graph).
        generator: random generator (default: the global one, seeded by ``torch.manual_seed``).

    Returns:
        ``[N, k]``.
    """
    if pe.dim() != 2:
        raise ValueError(f"pe must have shape [num_nodes, k], got {tuple(pe.shape)}")
    if batch is None:
        batch = torch.zeros(pe.size(0), dtype=torch.long, device=pe.device)
    num_graphs = int(batch.max()) + 1 if batch.numel() else 1
    signs = torch.randint(0, 2, (num_graphs, pe.size(1)), generator=generator).to(pe.device, pe.dtype) * 2 - 1
    return pe * signs[batch]


class LapPEEncoder(nn.Module):
    r"""Encode Laplacian eigenvectors :math:`\mathbf{V} \in \mathbb{R}^{N \times k}` into node features.

    * ``sign_invariant=False``: :math:`\mathbf{V}\mathbf{W} + \mathbf{b}`, with every eigenvector's sign flipped at
      random per graph in training mode (:func:`random_sign_flip`), so the model learns not to depend on it.
    * ``sign_invariant=True`` (the MLP variant of SignNet, Lim et al. 2022, as in GraphGPS):
      :math:`\rho\big(\Vert_{c=1}^{k} [\phi(v_{ic}) + \phi(-v_{ic})]\big)` with MLPs
      :math:`\phi: \mathbb{R} \to \mathbb{R}^{h}` and :math:`\rho: \mathbb{R}^{kh} \to \mathbb{R}^{C}`; invariant to
      every sign flip by construction (no random flips needed).

    Shapes: ``pe`` ``[N, k]``, ``batch`` ``[N]`` -> ``[N, out_channels]``.

    Args:
        k: number of eigenvectors.
        out_channels: :math:`C`.
        sign_invariant: use the sign-invariant encoder.
        hidden_channels: :math:`h` of :math:`\phi` (sign-invariant encoder only).
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, k: int, out_channels: int, sign_invariant: bool = False, hidden_channels: int = 16):
        super().__init__()
        if k < 1 or out_channels < 1 or hidden_channels < 1:
            raise ValueError(f"k, out_channels and hidden_channels must be positive, got k={k}, "
                             f"out_channels={out_channels}, hidden_channels={hidden_channels}")
        self.k, self.out_channels, self.sign_invariant = k, out_channels, sign_invariant
        if sign_invariant:
            self.phi = nn.Sequential(nn.Linear(1, hidden_channels), nn.ReLU(),
                                     nn.Linear(hidden_channels, hidden_channels))
            self.rho = nn.Linear(k * hidden_channels, out_channels)
        else:
            self.lin = nn.Linear(k, out_channels)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, pe: Tensor, batch: Tensor | None = None) -> Tensor:
        if pe.dim() != 2 or pe.size(1) != self.k:
            raise ValueError(f"pe must have shape [num_nodes, {self.k}], got {tuple(pe.shape)}")
        if not self.sign_invariant:
            return self.lin(random_sign_flip(pe, batch) if self.training else pe)
        v = pe.unsqueeze(-1)  # [N, k, 1]
        return self.rho((self.phi(v) + self.phi(-v)).flatten(1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.k}, {self.out_channels}, sign_invariant={self.sign_invariant})"
