"""What every gdl_graphs convolution shares: its symmetry, input checks, and the graph's cached adjacency."""

from __future__ import annotations

from torch import Tensor
from torch_geometric.nn import MessagePassing

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.validation import as_edge_index, check_edge_index, check_edge_weight, check_features


class FastPathConv:
    """Mixin for message-passing layers whose aggregation goes through :mod:`gdl_graphs.nn.aggregate`.

    Combined with a PyG layer class (``class GCNConv(FastPathConv, torch_geometric.nn.GCNConv)``) it keeps that
    class's constructor, parameters and ``state_dict`` (so weights load both ways) and replaces only the forward path.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # PyG generates a specialised `propagate` from `self.propagate(...)` calls in the class source, which our
        # forward does not contain; methods defined on the class itself make PyG keep its generic implementation
        # for the paths that still use it (bipartite input, non-linear SAGE aggregators).
        cls.propagate = _generic_propagate
        cls.edge_updater = _generic_edge_updater

    def _graph(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
               in_channels: int | None = None) -> tuple[Tensor, Tensor | None, aggregate.Adjacency]:
        """Validate inputs; return ``edge_index`` (sparse inputs converted), ``edge_weight`` and the adjacency."""
        channels = self.in_channels if in_channels is None else in_channels
        check_features(x, channels[0] if isinstance(channels, (tuple, list)) else channels)
        edge_index, edge_weight = as_edge_index(edge_index, edge_weight)
        check_edge_index(edge_index, x.size(0))
        check_edge_weight(edge_weight, edge_index.size(1))
        return edge_index, edge_weight, aggregate.adjacency(edge_index, x.size(0))


def _generic_propagate(self, edge_index, size=None, **kwargs):
    """PyG's generic :meth:`MessagePassing.propagate`."""
    return MessagePassing.propagate(self, edge_index, size=size, **kwargs)


def _generic_edge_updater(self, edge_index, size=None, **kwargs):
    """PyG's generic :meth:`MessagePassing.edge_updater`."""
    return MessagePassing.edge_updater(self, edge_index, size=size, **kwargs)
