r"""Spatio-temporal forecasting models on a fixed sensor graph.

Every model is built as ``Model(num_nodes, in_channels, out_horizon, edge_index, edge_weight, **options)`` (its
entry in :data:`gdl_graphs.models.MODELS` says what it declares) and maps
an input window ``x [B, T_in, N, F]`` (scaled units, feature 0 the target signal) to ``y_hat [B, T_out, N]``. The
layers are :math:`S_n`-equivariant in space (relabel the sensors in ``x`` and the graph together and the forecast
is relabelled the same way) and shift-equivariant in time (convolutions and recurrences shared over steps).

=====================  ==============================================================================
name                   model
=====================  ==============================================================================
``dcrnn``              :class:`DCRNN` (Li et al., 2018): diffusion-convolutional GRU encoder-decoder
``stgcn``              :class:`STGCN` (Yu et al., 2018): gated temporal conv + Chebyshev/GCN blocks
``graph_wavenet``      :class:`GraphWaveNet` (Wu et al., 2019): dilated causal conv + adaptive diffusion
``historical_average`` :class:`HistoricalAverage`: mean of the same time-of-day slot (or of the window)
``last_value``         :class:`LastValue`: repeats the last observation
=====================  ==============================================================================
"""

from __future__ import annotations

from torch import Tensor, nn

from gdl_graphs.models.registry import list_models
from gdl_graphs.models.temporal.baselines import HistoricalAverage, LastValue
from gdl_graphs.models.temporal.dcrnn import DCGRUCell, DCRNN, scheduled_sampling_probability
from gdl_graphs.models.temporal.diffusion import DiffusionConv, GraphOperator, dense_adjacency, diffusion_operators
from gdl_graphs.models.temporal.graph_wavenet import GatedTCN, GraphWaveNet
from gdl_graphs.models.temporal.stgcn import ChebGraphConv, STConvBlock, STGCN, TemporalGatedConv, scaled_laplacian

def build_temporal_model(name: str, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                         edge_weight: Tensor | None = None, **kwargs) -> nn.Module:
    """Build the forecasting model registered as ``name`` (see the table above); ``kwargs`` go to its constructor."""
    modules = {entry.name: entry.module for entry in list_models("temporal")}
    if name not in modules:
        raise ValueError(f"name must be one of {sorted(modules)}, got {name!r}")
    return modules[name](num_nodes, in_channels, out_horizon, edge_index, edge_weight, **kwargs)


__all__ = [
    "build_temporal_model",
    "DCRNN", "DCGRUCell", "scheduled_sampling_probability",
    "STGCN", "STConvBlock", "ChebGraphConv", "TemporalGatedConv", "scaled_laplacian",
    "GraphWaveNet", "GatedTCN",
    "DiffusionConv", "GraphOperator", "dense_adjacency", "diffusion_operators",
    "HistoricalAverage", "LastValue",
]
