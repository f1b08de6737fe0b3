"""Models by name, built for a :class:`~gdl_graphs.data.Benchmark`, with a parameter budget that sets the width.

``build_model(name, benchmark, budget=100_000)`` picks the widest hidden size whose model stays within the budget
(as benchmarking-gnns does with its 100k / 500k budgets), so architectures are compared at equal size.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data.data import BaseData

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.groups import EN_EQUIVARIANT, PERMUTATION_EQUIVARIANT, PERMUTATION_INVARIANT
from gdl_graphs.models.graph_net import LAYERS, GraphNet, in_degree_histogram


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its family (``graph`` / ``geometric`` / ``temporal``) and a one-line summary."""

    name: str
    family: str
    summary: str


MODELS: dict[str, ModelEntry] = {e.name: e for e in [
    ModelEntry("gcn", "graph", "GCN (Kipf & Welling 2017)"),
    ModelEntry("gin", "graph", "GIN with a 2-layer MLP and learned eps (Xu et al. 2019)"),
    ModelEntry("gat", "graph", "GAT, multi-head, concatenated (Velickovic et al. 2018)"),
    ModelEntry("gatedgcn", "graph", "GatedGCN with edge gates and edge features (Bresson & Laurent 2017)"),
    ModelEntry("mpnn", "graph", "MPNN: edge network + GRU update (Gilmer et al. 2017)"),
    ModelEntry("pna", "graph", "PNA: mean/min/max/std x degree scalers (Corso et al. 2020)"),
    ModelEntry("sage", "graph", "GraphSAGE, mean aggregation (Hamilton et al. 2017)"),
    ModelEntry("transformer", "graph", "Graph Transformer: full attention within each graph"),
    ModelEntry("gps", "graph", "GPS: GINE + full attention + FFN (Rampasek et al. 2022)"),
    ModelEntry("egnn", "geometric", "EGNN, E(n)-equivariant (Satorras et al. 2021); needs pos"),
    ModelEntry("dcrnn", "temporal", "DCRNN: diffusion-convolutional GRU encoder-decoder (Li et al. 2018)"),
    ModelEntry("stgcn", "temporal", "STGCN: gated temporal conv + Chebyshev graph conv (Yu et al. 2018)"),
    ModelEntry("graph_wavenet", "temporal", "Graph WaveNet: dilated causal conv + adaptive diffusion (Wu et al. "
                                            "2019)"),
    ModelEntry("historical_average", "temporal", "baseline: mean of the input window / time-of-day slot"),
    ModelEntry("last_value", "temporal", "baseline: repeats the last observation"),
]}

GRAPH_TASKS = ("graph_classification", "graph_regression", "graph_multilabel", "node_classification")


def list_models(family: str | None = None) -> list[ModelEntry]:
    """Registered models, optionally of one family."""
    return [e for e in MODELS.values() if family is None or e.family == family]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parse_budget(budget) -> int | None:
    """``100000``, ``"100k"``, ``"0.5M"`` or ``None`` -> a parameter count (or ``None``)."""
    if budget is None or isinstance(budget, int):
        return budget
    text = str(budget).strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise ValueError(f"budget must be a parameter count like 100000, '100k' or '0.5M', got {budget!r}") from None
    if value < 1:
        raise ValueError(f"budget must be positive, got {budget!r}")
    return int(value)


def compatible(name: str, task: str) -> bool:
    """Whether model ``name`` can be trained on a task kind."""
    family = MODELS[name].family
    if family == "temporal":
        return task == "forecasting"
    if family == "geometric":
        return task in ("dynamics", "graph_regression")
    return task in GRAPH_TASKS or task == "dynamics"


def build_model(name: str, benchmark: Benchmark, budget=None, hidden_channels: int | None = None,
                **options) -> nn.Module:
    """Build model ``name`` for ``benchmark``.

    Args:
        name: a key of :data:`MODELS`.
        benchmark: the dataset bundle (its task and dimensions decide the input encoder and the head).
        budget: parameter budget; the hidden width is the largest (multiple of 8) that fits. Ignored by temporal
            models, which keep their published sizes unless ``options`` say otherwise.
        hidden_channels: a fixed width instead of a budget.
        options: passed to the model's constructor (``num_layers``, ``dropout``, ``readout``, ``virtual_node``...).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
    if not compatible(name, benchmark.task):
        raise ValueError(f"model {name!r} ({MODELS[name].family}) cannot be trained on {benchmark.name} "
                         f"({benchmark.task})")
    budget = parse_budget(budget)
    if MODELS[name].family == "temporal":
        from gdl_graphs.models.temporal import TEMPORAL_MODELS

        if hidden_channels is not None and "hidden_channels" in inspect.signature(TEMPORAL_MODELS[name]).parameters:
            options.setdefault("hidden_channels", hidden_channels)
        return _build_temporal(name, benchmark, **options)
    make = _graph_builder(name, benchmark, options)
    if hidden_channels is not None:
        return make(hidden_channels)
    if budget is None:
        return make(64)
    return make(width_for_budget(make, budget))


def width_for_budget(make, budget: int, step: int = 8) -> int:
    """Largest width (a multiple of ``step``) with ``count_parameters(make(width)) <= budget``."""
    low, high = step, step
    if count_parameters(make(low)) > budget:
        raise ValueError(f"budget {budget} is below the smallest model ({count_parameters(make(low))} parameters "
                         f"at width {low})")
    while count_parameters(make(high)) <= budget:
        low, high = high, high * 2
    while high - low > step:
        middle = (low + high) // 2 // step * step
        low, high = (middle, high) if count_parameters(make(middle)) <= budget else (low, middle)
    return low


def _graph_builder(name: str, benchmark: Benchmark, options: dict):
    if name == "egnn":
        return _egnn_builder(benchmark, options)
    options = dict(options)
    if name == "pna" and "deg" not in options:
        options["deg"] = in_degree_histogram(_graphs(benchmark.train))
    if benchmark.task == "dynamics":
        return lambda width: DynamicsGNN(GraphNet(name, benchmark.num_features + 6, 3, width, level="node",
                                                  edge_dim=benchmark.num_edge_features, **options))
    level = "node" if benchmark.task == "node_classification" else "graph"
    if LAYERS[name].heads_divide_width:
        options.setdefault("heads", 4)
    return lambda width: GraphNet(name, benchmark.num_features, benchmark.num_targets, width, level=level,
                                  edge_dim=benchmark.num_edge_features, node_vocab=benchmark.node_vocab,
                                  edge_vocab=benchmark.edge_vocab, **options)


def _graphs(split):
    return [split] if benchmark_is_single_graph(split) else split


def benchmark_is_single_graph(split) -> bool:
    """Whether a split is one graph (transductive) rather than a dataset of graphs."""
    return isinstance(split, BaseData)


def _egnn_builder(benchmark: Benchmark, options: dict):
    from gdl_graphs.nn.equivariant import EGNN

    options = dict(options)
    if benchmark.task == "dynamics":
        options.setdefault("velocity", True)
        return lambda width: EGNNOnData(EGNN(benchmark.num_features, width, 3, task="dynamics",
                                             edge_dim=benchmark.num_edge_features, **options))
    return lambda width: EGNNOnData(EGNN(benchmark.num_features, width, benchmark.num_targets, task="property",
                                         **options))


class DynamicsGNN(nn.Module):
    """Non-equivariant baseline for dynamics (the "GNN" row of Satorras et al. 2021): positions and velocities
    are fed as node features and the network predicts the displacement, so it must learn the symmetry from data."""

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, net: GraphNet):
        super().__init__()
        self.net = net

    def forward(self, data) -> Tensor:
        features = [data.pos, data.vel] + ([data.x] if "x" in data and data.x is not None else [])
        inputs = data.clone()
        inputs.x = torch.cat(features, dim=-1)
        return data.pos + self.net(inputs)


class EGNNOnData(nn.Module):
    """Calls an :class:`~gdl_graphs.nn.equivariant.EGNN` on a PyG batch: ``x`` / ``z``, ``pos``, ``edge_index``,
    ``batch``, and ``edge_attr`` / ``vel`` where the model was built to use them. Dynamics models output positions
    (E(n)-equivariant); property models one invariant vector per graph."""

    def __init__(self, egnn: nn.Module):
        super().__init__()
        self.egnn = egnn
        self.symmetry = EN_EQUIVARIANT if egnn.task == "dynamics" else PERMUTATION_INVARIANT

    def forward(self, data) -> Tensor:
        def field(key: str, wanted: bool = True):
            return getattr(data, key) if wanted and key in data else None

        return self.egnn(x=field("x"), pos=data.pos, edge_index=data.edge_index, batch=field("batch"),
                         edge_attr=field("edge_attr", self.egnn.edge_dim > 0), vel=field("vel", self.egnn.velocity),
                         z=field("z", self.egnn.num_atom_types is not None))


def _build_temporal(name: str, benchmark: Benchmark, **options) -> nn.Module:
    from gdl_graphs.models.temporal import build_temporal_model

    spec = benchmark.forecast
    if name == "stgcn":
        options.setdefault("in_steps", spec.input_len)
    return build_temporal_model(name, spec.num_nodes, benchmark.num_features, spec.horizon, spec.edge_index,
                                spec.edge_weight, **options)
