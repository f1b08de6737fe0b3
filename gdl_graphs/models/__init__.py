"""Full architectures assembled from :mod:`gdl_graphs.nn`, in one registry for the benchmark harness.

- :mod:`~gdl_graphs.models.registry`: :data:`MODELS`, one :class:`ModelEntry` per model declaring what it needs
  and supports, and :func:`build_model` (any registered model for a :class:`~gdl_graphs.data.Benchmark`, its width
  set by a parameter budget). The entries are listed in :mod:`~gdl_graphs.models.catalog`.
- :class:`GraphNet` (:mod:`~gdl_graphs.models.graph_net`): encoder -> L x [layer, norm, activation, residual,
  dropout] -> invariant readout -> head, for graph and node tasks, with a virtual-node option.
- :mod:`~gdl_graphs.models.geometric`: the EGNN on PyG batches.
- :mod:`~gdl_graphs.models.hierarchical`: coarsening models (SAGPool / TopK, DiffPool, MinCutPool); their entries
  declare their auxiliary losses, which the task kinds add to the task loss.
- :mod:`~gdl_graphs.models.temporal`: spatio-temporal forecasting models (DCRNN, STGCN, Graph WaveNet, baselines).
"""

from gdl_graphs.models.registry import (MODELS, LayerSpec, ModelEntry, Recipe, build_model, compatible,
                                        count_parameters, get_model, incompatibility, list_models, parse_budget,
                                        register, width_for_budget)
from gdl_graphs.models.graph_net import DynamicsGNN, FeatureEncoder, GraphNet, in_degree_histogram
from gdl_graphs.models.geometric import EGNNOnData
from gdl_graphs.models.hierarchical import DiffPoolNet, MinCutPoolNet, ScorePoolNet
from gdl_graphs.models import catalog  # noqa: F401  (fills MODELS)

__all__ = ["MODELS", "DiffPoolNet", "DynamicsGNN", "EGNNOnData", "FeatureEncoder", "GraphNet", "LayerSpec",
           "MinCutPoolNet", "ModelEntry", "Recipe", "ScorePoolNet", "build_model", "compatible", "count_parameters",
           "get_model", "incompatibility", "in_degree_histogram", "list_models", "parse_budget", "register",
           "width_for_budget"]
