"""Transformer-as-complete-graph layers: attention within each graph of a batch (fused SDPA, no O(n^2) edge list),
Graphormer-style attention biases, the GPS layer, and Laplacian / random-walk positional encodings."""

from gdl_graphs.nn.attention.bias import AddShortestPathDistance, EdgeBias, SPDBias, shortest_path_distance
from gdl_graphs.nn.attention.encodings import AddLaplacianPE, AddRandomWalkSE, LapPEEncoder, random_sign_flip
from gdl_graphs.nn.attention.gps import GPSLayer
from gdl_graphs.nn.attention.transformer import GraphMultiheadAttention, GraphTransformerLayer, graph_attention

__all__ = [
    "AddLaplacianPE", "AddRandomWalkSE", "AddShortestPathDistance", "EdgeBias", "GPSLayer",
    "GraphMultiheadAttention", "GraphTransformerLayer", "LapPEEncoder", "SPDBias", "graph_attention",
    "random_sign_flip", "shortest_path_distance",
]
