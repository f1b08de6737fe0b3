"""Layers: S_n-equivariant message passing (:mod:`~gdl_graphs.nn.conv`), complete-graph attention
(:mod:`~gdl_graphs.nn.attention`), E(n)-equivariant layers (:mod:`~gdl_graphs.nn.equivariant`), coarsening
(:mod:`~gdl_graphs.nn.pool`), and the single aggregation path they share (:mod:`~gdl_graphs.nn.aggregate`)."""

from gdl_graphs.nn.attention import GPSLayer, GraphTransformerLayer
from gdl_graphs.nn.conv import (EdgeGCNConv, EdgeNetworkConv, GATConv, GATv2Conv, GatedGCNConv, GCNConv, GINConv,
                                GINEConv, MPNNConv, NNConv, PNAConv, SAGEConv)
from gdl_graphs.nn.equivariant import EGNN, EGNNLayer
from gdl_graphs.nn.pool import (DiffPool, GraclusPooling, MinCutPool, SAGPooling, TopKPooling, dense_diff_pool,
                                dense_mincut_pool, graclus)

__all__ = ["DiffPool", "EdgeGCNConv", "EdgeNetworkConv", "EGNN", "EGNNLayer", "GATConv", "GATv2Conv", "GatedGCNConv",
           "GCNConv", "GINConv", "GINEConv", "GPSLayer", "GraclusPooling", "GraphTransformerLayer", "MinCutPool",
           "MPNNConv", "NNConv", "PNAConv", "SAGEConv", "SAGPooling", "TopKPooling", "dense_diff_pool",
           "dense_mincut_pool", "graclus"]
