"""Layers: S_n-equivariant message passing (:mod:`~gdl_graphs.nn.conv`), complete-graph attention
(:mod:`~gdl_graphs.nn.attention`), E(n)-equivariant layers (:mod:`~gdl_graphs.nn.equivariant`), and the single
aggregation path they share (:mod:`~gdl_graphs.nn.aggregate`)."""

from gdl_graphs.nn.attention import GPSLayer, GraphTransformerLayer
from gdl_graphs.nn.conv import (EdgeNetworkConv, GATConv, GATv2Conv, GatedGCNConv, GCNConv, GINConv, GINEConv,
                                MPNNConv, NNConv, PNAConv, SAGEConv)
from gdl_graphs.nn.equivariant import EGNN, EGNNLayer

__all__ = ["EdgeNetworkConv", "EGNN", "EGNNLayer", "GATConv", "GATv2Conv", "GatedGCNConv", "GCNConv", "GINConv",
           "GINEConv", "GPSLayer", "GraphTransformerLayer", "MPNNConv", "NNConv", "PNAConv", "SAGEConv"]
