"""S_n-equivariant message passing on sparse graphs, one module per layer family.

Each layer keeps the constructor, parameters and ``state_dict`` of its PyG namesake and aggregates through
:mod:`gdl_graphs.nn.aggregate`.
"""

from gdl_graphs.nn.conv.edge_gcn import EdgeGCNConv
from gdl_graphs.nn.conv.gat import GATConv, GATv2Conv
from gdl_graphs.nn.conv.gated_gcn import GatedGCNConv
from gdl_graphs.nn.conv.gcn import GCNConv
from gdl_graphs.nn.conv.gin import GINConv, GINEConv
from gdl_graphs.nn.conv.mpnn import EdgeNetworkConv, MPNNConv, NNConv
from gdl_graphs.nn.conv.pna import PNAConv
from gdl_graphs.nn.conv.sage import SAGEConv

__all__ = ["EdgeGCNConv", "EdgeNetworkConv", "GATConv", "GATv2Conv", "GatedGCNConv", "GCNConv", "GINConv",
           "GINEConv", "MPNNConv", "NNConv", "PNAConv", "SAGEConv"]
