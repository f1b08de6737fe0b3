"""Input checks at the boundary of every layer: clear ``ValueError``\\ s naming the argument, never a kernel crash.

Also converts sparse adjacency inputs (torch sparse CSR/COO or PyG ``SparseTensor``, PyG's ``adj_t`` convention: rows
are targets) into ``edge_index`` + ``edge_weight``, so layers see one representation.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MLP
from torch_geometric.nn.dense.linear import Linear as PyGLinear
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_sparse, to_edge_index

from gdl_graphs.nn import aggregate


def check_positive_ints(allow_none: bool = False, **values) -> None:
    """Raise ``ValueError`` naming the first argument of ``values`` (name -> value) that is not an ``int`` >= 1
    (``None`` passes where ``allow_none``): ``check_positive_ints(hidden_channels=h, num_layers=L)``."""
    for name, value in values.items():
        if allow_none and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


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
    if aggregate.is_cached(edge_index, num_src, num_dst):
        return  # validated when it was cached
    lows, highs = torch.aminmax(edge_index, dim=1)
    src_min, dst_min, src_max, dst_max = torch.cat([lows, highs]).tolist()  # one device sync on a GPU, not three
    low = min(src_min, dst_min)
    if low < 0:
        raise ValueError(f"edge_index contains a negative node index ({low})")
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


# ----------------------------------------------------------------------------------------------------------------
# Layer inputs against the layer itself (dtype, device, width), for every conv layer
# ----------------------------------------------------------------------------------------------------------------
def first_parameter(module: torch.nn.Module) -> Tensor | None:
    """A parameter of ``module`` (its dtype and device stand for the layer's), or ``None`` for a parameter-free one."""
    return next(module.parameters(), None)


def check_matches_layer(tensor: Tensor, module: torch.nn.Module, name: str) -> None:
    """``tensor`` is floating point, on the layer's device and of its parameters' dtype (autocast excepted)."""
    if not isinstance(tensor, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {tensor.dtype} (convert it with "
                         f"{name}.float())")
    param = first_parameter(module)
    if param is None:
        return
    layer = type(module).__name__
    if tensor.device != param.device:
        raise ValueError(f"{name} is on {tensor.device}, but {layer}'s parameters are on {param.device}; move one "
                         f"of them (e.g. {name}.to({str(param.device)!r}))")
    if tensor.dtype != param.dtype and not torch.is_autocast_enabled(tensor.device.type):
        raise ValueError(f"{name} has dtype {tensor.dtype}, but {layer}'s parameters are {param.dtype}; convert "
                         f"one of them ({name}.to({param.dtype}) or layer.to({tensor.dtype}))")


def check_node_input(x: Tensor, module: torch.nn.Module, in_channels: int, name: str = "x",
                     static_graphs: bool = False) -> None:
    """Node features of a conv layer: ``[N, in_channels]`` (or ``[*, N, in_channels]`` for layers that support
    static graphs), floating point, matching the layer's dtype and device. ``in_channels <= 0`` skips the width."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(x).__name__}")
    if x.dim() != 2 and not (static_graphs and x.dim() > 2):
        shape = f"[num_nodes, {in_channels if in_channels > 0 else 'num_features'}]"
        extra = "" if static_graphs else f" ({type(module).__name__} does not take static-graph [B, N, F] input)"
        raise ValueError(f"{name} must have shape {shape}, got {list(x.shape)}{extra}")
    if in_channels > 0 and x.size(-1) != in_channels:
        raise ValueError(f"{name} has {x.size(-1)} features, but the layer was built with in_channels={in_channels}")
    check_matches_layer(x, module, name)


def check_edge_weight_dtype(edge_weight: Tensor | None, x: Tensor) -> None:
    """Per-edge weights must be floating point and of ``x``'s dtype (PyG would silently change the output dtype)."""
    if edge_weight is None:
        return
    if not isinstance(edge_weight, Tensor) or not edge_weight.is_floating_point():
        kind = edge_weight.dtype if isinstance(edge_weight, Tensor) else type(edge_weight).__name__
        raise ValueError(f"edge_weight must be a floating-point tensor, got {kind}")
    if edge_weight.dtype != x.dtype:
        raise ValueError(f"edge_weight has dtype {edge_weight.dtype}, but x has {x.dtype}; convert it with "
                         f"edge_weight.to({x.dtype})")
    if edge_weight.device != x.device:
        raise ValueError(f"edge_weight is on {edge_weight.device}, but x is on {x.device}")


def check_same_device(edge_index, x: Tensor) -> None:
    """``edge_index`` (or a sparse adjacency) lives on ``x``'s device."""
    if isinstance(edge_index, Tensor) and edge_index.device != x.device:
        raise ValueError(f"edge_index is on {edge_index.device}, but x is on {x.device}; move it with "
                         f"edge_index.to({str(x.device)!r})")


def input_width(nn: torch.nn.Module) -> int:
    """The input width an MLP-like ``nn`` expects (``Linear``, PyG ``Linear``/``MLP``, or a ``Sequential`` starting
    with one), or ``-1`` when it cannot be told without running it."""
    first = nn[0] if isinstance(nn, torch.nn.Sequential) and len(nn) > 0 else nn
    if isinstance(first, torch.nn.Linear):
        return first.in_features
    if isinstance(first, (PyGLinear, MLP)):
        return first.in_channels if first.in_channels > 0 else -1
    return -1


def require_edge_attr(edge_attr: Tensor | None, edge_index, layer: str) -> None:
    """Layers whose messages need edge features get them from ``edge_attr`` or, as PyG reads a sparse adjacency,
    from its ``[E, edge_dim]`` values (a torch sparse tensor with a dense dimension, or a ``SparseTensor`` value)."""
    if edge_attr is not None:
        return
    if isinstance(edge_index, SparseTensor) and edge_index.has_value():
        return
    if isinstance(edge_index, Tensor) and is_sparse(edge_index) and edge_index.dense_dim() > 0:
        return
    raise ValueError(f"{layer} requires edge_attr of shape [num_edges, edge_dim] (or a sparse adjacency whose "
                     f"values are [num_edges, edge_dim] edge features)")


def check_channels_heads(channels: int, heads: int) -> None:
    """``heads`` a positive divisor of ``channels`` (multi-head attention splits the width)."""
    if channels < 1 or heads < 1 or channels % heads:
        raise ValueError(f"heads must be a positive divisor of channels, got channels={channels}, heads={heads}")


def check_probability(name: str, p: float) -> None:
    """Raise a ValueError naming ``name`` unless ``0 <= p < 1``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")


def check_edges_within_graphs(edge_index: Tensor, num_nodes: int, batch: Tensor | None = None,
                              name: str = "edge_index") -> None:
    """A LongTensor ``[2, E]`` of indices in ``[0, num_nodes)``, each edge inside one graph of ``batch``."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
        raise ValueError(f"{name} must be a LongTensor of shape [2, E], got {edge_index.dtype} "
                         f"{list(edge_index.shape)}")
    if edge_index.numel() == 0:
        return
    if int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes:
        raise ValueError(f"{name} has node indices outside [0, {num_nodes})")
    if batch is not None:
        batch = batch.to(edge_index.device)
        if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
            raise ValueError(f"{name} connects nodes of different graphs of the batch")


def check_geometric_inputs(x: Tensor, pos: Tensor, edge_index: Tensor | None, batch: Tensor | None,
                           edge_attr: Tensor | None, vel: Tensor | None, in_channels: int, edge_dim: int) -> None:
    """Inputs of an E(n)-equivariant layer: ``x`` [N, in_channels], float ``pos`` [N, n], ``vel`` like ``pos``,
    ``batch`` [N], ``edge_index`` [2, E] in range, ``edge_attr`` [E, edge_dim] exactly when ``edge_dim`` > 0."""
    if x.dim() != 2 or x.size(1) != in_channels:
        raise ValueError(f"x must have shape [num_nodes, {in_channels}], got {tuple(x.shape)}")
    if pos.dim() != 2 or pos.size(0) != x.size(0) or not pos.is_floating_point():
        raise ValueError(f"pos must be a float tensor of shape [{x.size(0)}, n], got {tuple(pos.shape)} {pos.dtype}")
    if vel is not None and vel.shape != pos.shape:
        raise ValueError(f"vel must have the shape of pos {tuple(pos.shape)}, got {tuple(vel.shape)}")
    if batch is not None and (batch.dim() != 1 or batch.numel() != x.size(0)):
        raise ValueError(f"batch must have shape [{x.size(0)}], got {tuple(batch.shape)}")
    if edge_index is None:
        if edge_attr is not None:
            raise ValueError("edge_attr was given without edge_index; edge attributes need the edges they belong to")
        return
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype not in (torch.long, torch.int):
        raise ValueError(f"edge_index must be an int64 or int32 tensor of shape [2, E] (as the conv layers accept), "
                         f"got {tuple(edge_index.shape)} {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= x.size(0)):
        raise ValueError(f"edge_index refers to nodes outside [0, {x.size(0)})")
    if edge_dim and (edge_attr is None or edge_attr.shape != (edge_index.size(1), edge_dim)):
        got = None if edge_attr is None else tuple(edge_attr.shape)
        raise ValueError(f"edge_attr must have shape [{edge_index.size(1)}, {edge_dim}], got {got}")
    if not edge_dim and edge_attr is not None:
        raise ValueError("edge_attr was given but the layer was built with edge_dim=0")
