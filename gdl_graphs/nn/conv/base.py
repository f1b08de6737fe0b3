"""What every gdl_graphs convolution shares: its symmetry, input checks, the graph's cached adjacency, and (for
drop-in replacements of PyG layers) the rule deciding when PyG's own path computes the answer."""

from __future__ import annotations

import copy

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.inspector import Inspector
from torch_geometric.nn import MessagePassing

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.validation import (as_edge_index, check_edge_index, check_edge_weight, check_node_input,
                                      check_same_device)

# PyG's per-instance hook registries (``register_propagate_forward_pre_hook`` and friends)
_HOOK_REGISTRIES = ("_propagate_forward_pre_hooks", "_propagate_forward_hooks", "_message_forward_pre_hooks",
                    "_message_forward_hooks", "_aggregate_forward_pre_hooks", "_aggregate_forward_hooks",
                    "_message_and_aggregate_forward_pre_hooks", "_message_and_aggregate_forward_hooks",
                    "_edge_update_forward_pre_hooks", "_edge_update_forward_hooks")


class FastPathConv:
    """Mixin for message-passing layers whose aggregation goes through :mod:`gdl_graphs.nn.aggregate`."""

    symmetry = PERMUTATION_EQUIVARIANT

    def _graph(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
               in_channels: int | None = None) -> tuple[Tensor, Tensor | None, aggregate.Adjacency]:
        """Validate inputs; return ``edge_index`` (sparse inputs converted), ``edge_weight`` and the adjacency."""
        channels = self.in_channels if in_channels is None else in_channels
        check_node_input(x, self, channels[0] if isinstance(channels, (tuple, list)) else channels)
        check_same_device(edge_index, x)
        edge_index, edge_weight = as_edge_index(edge_index, edge_weight)
        check_edge_index(edge_index, x.size(0))
        check_edge_weight(edge_weight, edge_index.size(1))
        return edge_index, edge_weight, aggregate.adjacency(edge_index, x.size(0))


class DropInConv(FastPathConv):
    """Mixin making a PyG layer class fast without changing any answer.

    Combined with a PyG layer class (``class GCNConv(DropInConv, torch_geometric.nn.GCNConv)``) it keeps that class's
    constructor, parameters, ``state_dict`` and ``__repr__``. A layer's ``forward`` takes the fast path only for the
    inputs it reproduces exactly (:meth:`_fast_path_applies`: one dense ``x`` ``[N, F]``, a plain ``edge_index``
    tensor, no ``size``, PyG's default flow, no propagate hooks, no explainer, no ``decomposed_layers``); every
    other input is passed to PyG's own ``forward``, so its answer is PyG's by construction.

    Layers that support PyG's static graphs (``x`` of shape ``[B, N, F]``) set ``static_graphs = True``.

    ``torch.jit.script`` compiles PyG's own layer (see :meth:`__prepare_scriptable__`).
    """

    static_graphs = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # PyG generates each layer's `propagate` / `edge_updater` from the argument types it finds in the layer's
        # source (`# propagate_type: ...`), looked up by class *name*, which ours shares with PyG's class. Declaring
        # the PyG class's argument types on ours makes PyG generate the very same methods for the PyG path.
        pyg_class = next((c for c in cls.__mro__ if issubclass(c, MessagePassing) and not issubclass(c, DropInConv)),
                         None)
        if pyg_class is None:  # a mixin shared by several layers (e.g. GAT and GATv2)
            return
        cls._pyg_class = pyg_class
        inspector = Inspector(pyg_class)
        for method in ("propagate", "edge_updater"):
            params = inspector.get_params_from_method_call(method, exclude=[0, "edge_index", "size"])
            if params:
                setattr(cls, f"{method}_type", {name: param.type for name, param in params.items()})

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles in place of this layer: a shallow copy whose class is the PyG class,
        sharing this layer's parameters, buffers and submodules, so the scripted module computes PyG's answer (the
        fast path is Python code TorchScript cannot compile). Like any ``__prepare_scriptable__``, torch stores the
        copy in the parent module being scripted, so a model's drop-ins run PyG's path after ``torch.jit.script``."""
        pyg_class = self._pyg_class
        # Constructing a PyG layer generates its class's TorchScript `propagate` (skipped when already generated). A
        # bare construction does it without this layer's arguments: the code depends on them only through `fuse`,
        # whose branch the default includes and which the generated code checks again at run time.
        MessagePassing.__init__(pyg_class.__new__(pyg_class))
        scripted = copy.copy(self)
        scripted._modules = dict(self._modules)  # torch replaces submodules in place while preparing them
        scripted.__class__ = pyg_class
        return scripted

    def _fast_path_applies(self, x, edge_index, size=None) -> bool:
        """Whether the fast path computes exactly what PyG's ``forward`` would for these inputs."""
        return (isinstance(x, Tensor) and x.dim() == 2 and x.layout == torch.strided and size is None
                and isinstance(edge_index, Tensor) and not isinstance(edge_index, EdgeIndex)
                and edge_index.layout == torch.strided
                and self.flow == "source_to_target" and not self.explain and self.decomposed_layers == 1
                and not any(len(getattr(self, name)) for name in _HOOK_REGISTRIES))

    @staticmethod
    def _pyg_edge_index(edge_index):
        """``edge_index`` for PyG's path: int32 index tensors as int64, since PyG's scatter reductions give wrong
        gradients for int32 indices (PyG 2.8.1, torch 2.13); other adjacency types unchanged."""
        if (isinstance(edge_index, Tensor) and not isinstance(edge_index, EdgeIndex)
                and edge_index.layout == torch.strided and edge_index.dtype == torch.int32):
            return edge_index.long()
        return edge_index

    def _check_node_input(self, x, edge_index, in_channels=None) -> None:
        """Validate ``x`` (a tensor or a bipartite pair) against the layer, on every path."""
        channels = self.in_channels if in_channels is None else in_channels
        if isinstance(x, (tuple, list)):
            widths = channels if isinstance(channels, (tuple, list)) else (channels, channels)
            for position, (part, width) in enumerate(zip(x, widths)):
                if part is not None:
                    check_node_input(part, self, width, f"x[{position}]", self.static_graphs)
                    check_same_device(edge_index, part)
            return
        width = channels[0] if isinstance(channels, (tuple, list)) else channels
        check_node_input(x, self, width, "x", self.static_graphs)
        check_same_device(edge_index, x)
