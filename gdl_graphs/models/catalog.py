"""Every registered model, in one table: what it is, what it trains on and needs, and how it is built.

To add a model, add its :class:`~gdl_graphs.models.registry.ModelEntry` here; a model on the blueprint
:class:`~gdl_graphs.models.GraphNet` only needs a :class:`~gdl_graphs.models.registry.LayerSpec` (how its hidden
layer is built and called). To add a paper recipe, add a :class:`~gdl_graphs.models.registry.Recipe` to the entry's
``recipes``.
"""

from __future__ import annotations

from torch import nn

from gdl_graphs.data.benchmark import Benchmark, benchmark_is_single_graph
from gdl_graphs.models.geometric import EGNNOnData
from gdl_graphs.models.graph_net import DynamicsGNN, GraphNet, in_degree_histogram
from gdl_graphs.models.hierarchical import build_diffpool, build_mincut, build_sagpool, build_topkpool
from gdl_graphs.models.recipes import RECIPES
from gdl_graphs.models.registry import LayerSpec, ModelEntry, register
from gdl_graphs.models.temporal import DCRNN, STGCN, GraphWaveNet, HistoricalAverage, LastValue
from gdl_graphs.nn import conv
from gdl_graphs.nn.attention import GPSLayer, GraphTransformerLayer
from gdl_graphs.nn.equivariant import EGNN

GRAPH_TASKS = frozenset({"graph_classification", "graph_regression", "graph_multilabel", "node_classification",
                         "dynamics"})
"""Task kinds of the blueprint :class:`GraphNet` (on ``dynamics`` it is the non-equivariant baseline)."""

GRAPH_LEVEL_TASKS = frozenset({"graph_classification", "graph_regression", "graph_multilabel"})
"""Task kinds of the hierarchical (coarsening) models: one prediction per graph."""


def _mlp(in_channels: int, out_channels: int, factor: int = 1) -> nn.Sequential:
    """GIN's update MLP: Linear -> BatchNorm -> ReLU -> Linear, hidden width ``factor x out_channels`` (OGB: 2)."""
    hidden = factor * out_channels
    return nn.Sequential(nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, out_channels))


def _pna(i: int, o: int, deg, **options) -> nn.Module:
    return conv.PNAConv(i, o, **{"aggregators": ["mean", "min", "max", "std"],
                                 "scalers": ["identity", "amplification", "attenuation"], "deg": deg, "edge_dim": i,
                                 **options})


def _mpnn(i: int, o: int, edge_hidden: int | None = 32, **options) -> nn.Module:
    # the edge network reads the embedded edge features (width i); edge_hidden=None: one linear map, as DeepChem's
    edge_network = (nn.Linear(i, i * o) if edge_hidden is None else
                    nn.Sequential(nn.Linear(i, edge_hidden), nn.ReLU(), nn.Linear(edge_hidden, i * o)))
    return conv.MPNNConv(i, o, edge_dim=i, nn=edge_network, **{"aggr": "mean", **options})


def _gin(i: int, o: int, mlp_factor: int = 1, train_eps: bool = True, **options) -> nn.Module:
    return conv.GINConv(_mlp(i, o, mlp_factor), train_eps=train_eps, **options)


def _gine(i: int, o: int, mlp_factor: int = 1, train_eps: bool = True, edge_map: bool = True,
          **options) -> nn.Module:
    # edge_map: a per-layer linear map of the edge embedding (edge_dim=i); False: the edge embedding is added as
    # given, as OGB's layer adds its own BondEncoder's output (GraphNet's edge_embedding="per_layer")
    return conv.GINEConv(_mlp(i, o, mlp_factor), train_eps=train_eps, edge_dim=i if edge_map else None, **options)


def _edge_gcn(i: int, o: int, edge_map: bool = True, **options) -> nn.Module:
    return conv.EdgeGCNConv(i, o, edge_dim=i if edge_map else o, edge_map=edge_map, **options)


def _gat(i: int, o: int, heads: int, concat: bool = True, **options) -> nn.Module:
    return conv.GATConv(i, o // heads if concat else o, heads=heads, concat=concat, **options)


def _gatedgcn(i: int, o: int, **options) -> nn.Module:
    return conv.GatedGCNConv(i, o, edge_dim=i, return_edge_features=True,
                             **{"residual": False, "batch_norm": False, **options})


def _graph_net(entry: ModelEntry, benchmark: Benchmark, options: dict):
    """A :class:`GraphNet` with ``entry.layer`` sized to the benchmark (node or graph level), or on dynamics the
    :class:`DynamicsGNN` baseline around one."""
    options = dict(options)
    if entry.layer.needs_degree and "deg" not in options:
        train = benchmark.train
        options["deg"] = in_degree_histogram([train] if benchmark_is_single_graph(train) else train)
    if benchmark.task == "dynamics":
        return lambda width: DynamicsGNN(entry.name, benchmark.num_features, width, dim=benchmark.num_targets,
                                         edge_dim=benchmark.num_edge_features, **options)
    level = "node" if benchmark.task == "node_classification" else "graph"
    if entry.layer.heads:
        options.setdefault("heads", 4)
    return lambda width: GraphNet(entry.name, benchmark.num_features, benchmark.num_targets, width, level=level,
                                  edge_dim=benchmark.num_edge_features, node_vocab=benchmark.node_vocab,
                                  edge_vocab=benchmark.edge_vocab, **options)


def _no_messages(entry: ModelEntry, benchmark: Benchmark, options: dict):
    """A :class:`GraphNet` without layers (``layer=None``): the readout of the encoded node features, then the
    head."""
    options = {"num_layers": 0, **options}
    level = "node" if benchmark.task == "node_classification" else "graph"
    return lambda width: GraphNet(None, benchmark.num_features, benchmark.num_targets, width, level=level,
                                  node_vocab=benchmark.node_vocab, **options)


def _egnn(entry: ModelEntry, benchmark: Benchmark, options: dict):
    """An :class:`EGNN` predicting positions (dynamics, with velocities) or one invariant vector per graph."""
    options = dict(options)
    if benchmark.task == "dynamics":
        options.setdefault("velocity", True)
        return lambda width: EGNNOnData(EGNN(benchmark.num_features, width, benchmark.num_targets, task="dynamics",
                                             edge_dim=benchmark.num_edge_features, **options))
    return lambda width: EGNNOnData(EGNN(benchmark.num_features, width, benchmark.num_targets, task="property",
                                         **options))


def _forecaster(entry: ModelEntry, benchmark: Benchmark, options: dict):
    """``entry.module(num_nodes, in_channels, horizon, edge_index, edge_weight, **options)`` on the sensor graph."""
    spec = benchmark.forecast
    if entry.takes_input_len:
        options = {"in_steps": spec.input_len, **options}
    return lambda _width: entry.module(spec.num_nodes, benchmark.num_features, spec.horizon, spec.edge_index,
                                       spec.edge_weight, **options)


def _graph(name: str, summary: str, layer: LayerSpec) -> ModelEntry:
    return ModelEntry(name, "graph", summary, GRAPH_TASKS, _graph_net, layer=layer,
                      uses_edge_features=layer.takes_edge_attr, recipes=RECIPES.get(name, ()))


def _hierarchical(name: str, summary: str, build, **declared) -> ModelEntry:
    return ModelEntry(name, "hierarchical", summary, GRAPH_LEVEL_TASKS, build, recipes=RECIPES.get(name, ()),
                      **declared)


def _temporal(name: str, summary: str, module: type[nn.Module], **declared) -> ModelEntry:
    return ModelEntry(name, "temporal", summary, frozenset({"forecasting"}), _forecaster, module=module,
                      sized_by_budget=False, **declared)


ENTRIES = [
    _graph("gcn", "GCN (Kipf & Welling 2017)", LayerSpec(sized=lambda i, o, **kw: conv.GCNConv(i, o, **kw))),
    _graph("gin", "GIN with a 2-layer MLP and learned eps (Xu et al. 2019)", LayerSpec(sized=_gin)),
    _graph("edge_gcn", "GCN with edge features, ReLU(W x_j + e_ji) messages and a root term (Hu et al. 2020, "
           "OGB's GCN)", LayerSpec(sized=_edge_gcn, takes_edge_attr=True)),
    _graph("gine", "GIN with edge features, ReLU(x_j + e_ji) messages (Hu et al. 2020, OGB's GIN)",
           LayerSpec(sized=_gine, takes_edge_attr=True)),
    _graph("gat", "GAT, multi-head, concatenated (Velickovic et al. 2018)", LayerSpec(sized=_gat, heads=True)),
    _graph("gatedgcn", "GatedGCN with edge gates and edge features (Bresson & Laurent 2017)",
           LayerSpec(sized=_gatedgcn, takes_edge_attr=True)),
    _graph("mpnn", "MPNN: edge network + GRU update (Gilmer et al. 2017)",  # its GRU is the residual
           LayerSpec(sized=_mpnn, takes_edge_attr=True, whole_block=True)),
    _graph("pna", "PNA: mean/min/max/std x degree scalers (Corso et al. 2020)",
           LayerSpec(sized=_pna, takes_edge_attr=True, needs_degree=True)),
    _graph("sage", "GraphSAGE, mean aggregation (Hamilton et al. 2017)",
           LayerSpec(sized=lambda i, o, **kw: conv.SAGEConv(i, o, **kw))),
    _graph("transformer", "Graph Transformer: full attention within each graph",
           LayerSpec(sized=lambda i, o, heads, **kw: GraphTransformerLayer(i, heads=heads, **kw),
                     takes_edge_index=False, takes_batch=True, whole_block=True, heads=True)),
    _graph("gps", "GPS: GINE + full attention + FFN (Rampasek et al. 2022)",  # GINE local layer, as in GraphGPS
           LayerSpec(sized=lambda i, o, heads, **kw: GPSLayer(i, **{"local": "gine", "heads": heads, "edge_dim": i,
                                                                    **kw}),
                     takes_batch=True, takes_edge_attr=True, whole_block=True, heads=True)),
    ModelEntry("mlp", "graph", "structure-agnostic baseline: readout of the node features, then an MLP (Errica et "
               "al. 2020)", GRAPH_TASKS - {"dynamics"}, _no_messages, module=GraphNet,
               recipes=RECIPES.get("mlp", ())),
    ModelEntry("egnn", "geometric", "EGNN, E(n)-equivariant (Satorras et al. 2021); needs pos",
               frozenset({"dynamics", "graph_regression"}), _egnn, needs_pos=True, uses_edge_features=True),
    _hierarchical("sagpool", "SAGPool_h: 3 x [GCN, SAGPooling(0.5)], readouts summed (Lee et al. 2019)",
                  build_sagpool),
    _hierarchical("topkpool", "3 x [GCN, TopKPooling(0.8)], readouts summed (Cangea et al. 2018)", build_topkpool),
    _hierarchical("diffpool", "DiffPool: GraphSAGE + DiffPool to 25% of max nodes (Ying et al. 2018)",
                  build_diffpool, aux_losses=("link_prediction", "entropy")),
    _hierarchical("mincut", "MinCutPool: GCN + 2 MinCut levels halving avg nodes (Bianchi et al. 2020)",
                  build_mincut, aux_losses=("mincut", "orthogonality")),
    _temporal("dcrnn", "DCRNN: diffusion-convolutional GRU encoder-decoder (Li et al. 2018)", DCRNN,
              width_option="hidden_channels", teacher_forcing=True),
    _temporal("stgcn", "STGCN: gated temporal conv + Chebyshev graph conv (Yu et al. 2018)", STGCN,
              takes_input_len=True),
    _temporal("graph_wavenet", "Graph WaveNet: dilated causal conv + adaptive diffusion (Wu et al. 2019)",
              GraphWaveNet),
    _temporal("historical_average", "baseline: mean of the input window / time-of-day slot", HistoricalAverage,
              fits_training_series=True),
    _temporal("last_value", "baseline: repeats the last observation", LastValue),
]

for _entry in ENTRIES:
    register(_entry)
