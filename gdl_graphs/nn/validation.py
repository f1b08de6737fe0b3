"""Input checks at the boundary of every layer: clear ``ValueError``\\ s naming the argument, never a kernel crash.

Also converts sparse adjacency inputs (torch sparse CSR/COO or PyG ``SparseTensor``, PyG's ``adj_t`` convention: rows
are targets) into ``edge_index`` + ``edge_weight``, so layers see one representation.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_sparse, to_edge_index

from gdl_graphs.nn import aggregate


def as_edge_index(edge_index, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Return ``(edge_index, edge_weight)`` for an ``edge_index`` tensor or a sparse adjacency ``adj_t``.

    For a sparse ``adj_t`` (``[num_dst, num_src]``), its stored values become the edge weights unless
    ``edge_weight`` is given; all-ones values (an unweighted adjacency) give ``None``.
    """
    if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
        return edge_index, edge_weight
    if isinstance(edge_index, SparseTensor) or (isinstance(edge_index, Tensor) and is_sparse(edge_index)):
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.sparse_csc:
            edge_index = edge_index.to_sparse_csr()
        index, values = to_edge_index(edge_index)
        converted = index.flip(0)  # adj_t rows are targets: edge_index[0] = source = column
        if edge_weight is None and values is not None and not bool((values == 1).all()):
            edge_weight = values
        return converted, edge_weight
    raise ValueError(f"edge_index must be a LongTensor [2, num_edges] or a sparse adjacency, "
                     f"got {type(edge_index).__name__}")


def check_edge_index(edge_index: Tensor, num_src: int, num_dst: int | None = None) -> None:
    """Validate shape, dtype and index range of ``edge_index`` (skipped for graphs already cached)."""
    num_dst = num_src if num_dst is None else num_dst
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"edge_index must be a Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"edge_index must have an integer dtype (torch.long), got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
    if torch.compiler.is_compiling() or edge_index.numel() == 0:
        return
    if aggregate._cache.get(edge_index, num_src, num_dst) is not None:
        return  # validated when it was cached
    low = int(edge_index.min())
    if low < 0:
        raise ValueError(f"edge_index contains a negative node index ({low})")
    src_max, dst_max = int(edge_index[0].max()), int(edge_index[1].max())
    if src_max >= num_src or dst_max >= num_dst:
        bad, limit = (src_max, num_src) if src_max >= num_src else (dst_max, num_dst)
        raise ValueError(f"edge_index refers to node {bad}, but x has only {limit} nodes "
                         f"(valid indices 0..{limit - 1})")


def check_features(x: Tensor, in_channels: int, name: str = "x") -> None:
    """Validate that ``x`` is a 2-D floating tensor with ``in_channels`` features (``-1``: lazy, any size)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [num_nodes, {in_channels}], got {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if in_channels > 0 and x.size(-1) != in_channels:
        raise ValueError(f"{name} has {x.size(-1)} features, but the layer was built with "
                         f"in_channels={in_channels}")


def check_edge_features(edge_attr: Tensor | None, num_edges: int, edge_dim: int | None, required: bool,
                        layer: str) -> None:
    """Validate ``edge_attr`` ([E, edge_dim]); ``required`` layers raise when it is missing."""
    if edge_attr is None:
        if required:
            raise ValueError(f"{layer} requires edge_attr of shape [num_edges, {edge_dim or 'edge_dim'}]")
        return
    if not isinstance(edge_attr, Tensor) or edge_attr.size(0) != num_edges:
        shape = list(edge_attr.shape) if isinstance(edge_attr, Tensor) else type(edge_attr).__name__
        raise ValueError(f"edge_attr must have one row per edge ({num_edges}), got {shape}")
    if edge_dim is not None and edge_attr.dim() == 2 and edge_attr.size(-1) != edge_dim:
        raise ValueError(f"edge_attr has {edge_attr.size(-1)} features, but {layer} was built with "
                         f"edge_dim={edge_dim}")


def check_edge_weight(edge_weight: Tensor | None, num_edges: int) -> None:
    if edge_weight is not None and (edge_weight.dim() != 1 or edge_weight.size(0) != num_edges):
        raise ValueError(f"edge_weight must have shape [{num_edges}], got {list(edge_weight.shape)}")


def optional_edge_features(edge_attr: Tensor | None, edge_weight: Tensor | None, num_edges: int,
                           edge_dim: int | None, layer: str) -> Tensor | None:
    """Edge features of a layer whose ``edge_dim=None`` means "no edge features": ``edge_attr`` (or the values of a
    weighted sparse adjacency) as ``[E, edge_dim]``, validated; an error if given to a layer built without them."""
    if edge_dim is None:
        if edge_attr is not None:
            raise ValueError(f"{layer} was built with edge_dim=None and takes no edge_attr; set edge_dim to use "
                             f"edge features")
        return None
    edge_attr = edge_weight if edge_attr is None else edge_attr
    if isinstance(edge_attr, Tensor) and edge_attr.dim() == 1:
        edge_attr = edge_attr.unsqueeze(-1)
    check_edge_features(edge_attr, num_edges, edge_dim, True, layer)
    return edge_attr
