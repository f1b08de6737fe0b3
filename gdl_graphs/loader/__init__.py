"""Mini-batch loaders: neighbour sampling (PyG's ``NeighborLoader`` semantics) in pure torch, or on pyg-lib when it
is installed. See ``docs/loader.md``."""

from gdl_graphs.loader.neighbor_loader import NeighborLoader, pyg_lib_available
from gdl_graphs.loader.neighbor_sampler import CSRNeighborSampler

__all__ = ["CSRNeighborSampler", "NeighborLoader", "pyg_lib_available"]
