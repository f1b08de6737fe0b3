"""Layers: S_n-equivariant message passing (:mod:`~gdl_graphs.nn.conv`), complete-graph attention
(:mod:`~gdl_graphs.nn.attention`), E(n)-equivariant layers (:mod:`~gdl_graphs.nn.equivariant`), and the single
aggregation path they share (:mod:`~gdl_graphs.nn.aggregate`)."""

from gdl_graphs.nn.conv import GATConv, GATv2Conv, GCNConv, GINConv, GINEConv, SAGEConv

__all__ = ["GATConv", "GATv2Conv", "GCNConv", "GINConv", "GINEConv", "SAGEConv"]
