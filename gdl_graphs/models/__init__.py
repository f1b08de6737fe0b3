"""Full architectures assembled from :mod:`gdl_graphs.nn`, registered by name for the benchmark harness.

- :class:`GraphNet` (:mod:`~gdl_graphs.models.graph_net`): encoder -> L x [layer, norm, activation, residual,
  dropout] -> invariant readout -> head, for graph and node tasks, with a virtual-node option.
- :mod:`~gdl_graphs.models.temporal`: spatio-temporal forecasting models (DCRNN, STGCN, Graph WaveNet, baselines).
- :func:`build_model` (:mod:`~gdl_graphs.models.registry`): any registered model for a
  :class:`~gdl_graphs.data.Benchmark`, its width set by a parameter budget.
"""

from gdl_graphs.models.graph_net import LAYERS, FeatureEncoder, GraphNet, in_degree_histogram
from gdl_graphs.models.registry import (MODELS, ModelEntry, build_model, compatible, count_parameters, list_models,
                                        parse_budget, width_for_budget)

__all__ = ["LAYERS", "MODELS", "FeatureEncoder", "GraphNet", "ModelEntry", "build_model", "compatible",
           "count_parameters", "in_degree_histogram", "list_models", "parse_budget", "width_for_budget"]
