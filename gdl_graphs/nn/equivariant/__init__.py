"""E(n) x S_n-equivariant layers and models: EGNN (Satorras et al. 2021), with the velocity variant."""

from gdl_graphs.nn.equivariant.egnn import EGNN, EGNNLayer, complete_graph

__all__ = ["EGNN", "EGNNLayer", "complete_graph"]
