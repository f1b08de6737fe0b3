"""``gdl-bench verify``: run every exported layer of :mod:`gdl_graphs.nn` and every registered model through
:mod:`gdl_graphs.testing` and report its symmetry group and measured max error.

Layers are discovered (every public ``nn.Module`` class of a module under :mod:`gdl_graphs.nn`); each is either
certified here (:data:`LAYER_CHECKS`: how to build it and call it on the example batch) or exempt with a reason
(:data:`EXEMPT_LAYERS`), and a test fails on a layer that is neither. Coarsening layers declare "equivariant up to
a permutation of the clusters" and are checked so; each is also certified followed by a sum readout
(:data:`POOLING_LAYERS`). Models come from the registry
(:data:`gdl_graphs.models.MODELS`), built by its own builders for a small benchmark of each task kind in
:data:`MODEL_TASKS`; task kinds in :data:`EXEMPT_TASKS` say why they are not checked here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_adj, to_dense_batch

from gdl_graphs.testing import PoolThenReadout, check_symmetry

CHANNELS, EDGE_DIM = 16, 4


@dataclass(frozen=True)
class Entry:
    """A layer or model to certify: how to build it and the input it is checked on."""

    name: str
    build: Callable[[], nn.Module]
    edge_features: bool = False
    call: Callable | None = None


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(CHANNELS, CHANNELS), nn.ReLU(), nn.Linear(CHANNELS, CHANNELS))


def _edge_network() -> nn.Module:
    return nn.Sequential(nn.Linear(EDGE_DIM, 32), nn.ReLU(), nn.Linear(32, CHANNELS * CHANNELS))


def _node_and_edges(m, d):
    return m(d.x, d.edge_index, edge_attr=d.edge_attr)


def _x_and_batch(m, d):
    return m(d.x, d.batch)


def _pool_sparse(m, d):
    return m(d.x, d.edge_index, d.edge_attr, d.batch)


def _pool_weighted(m, d):  # distinct positive edge weights, so the matching has no ties
    return m(d.x, d.edge_index, d.edge_attr[:, 0].abs(), d.batch)


def _pool_dense(m, d):
    """``(x [B, N, C], adj [B, N, N], mask [B, N])`` of the sparse batch, for the dense pooling layers."""
    x, mask = to_dense_batch(d.x, d.batch)
    return m(x, to_dense_adj(d.edge_index, d.batch, max_num_nodes=x.size(1)), mask)


_C = CHANNELS
LAYER_CHECKS: dict[str, tuple[Callable[[object], nn.Module], Callable | None]] = {
    # class name -> (build(module_namespace) -> layer, call(layer, data) or None for layer(x, edge_index))
    "GCNConv": (lambda nn_: nn_.GCNConv(_C, _C), None),
    "GINConv": (lambda nn_: nn_.GINConv(_mlp()), None),
    "GINEConv": (lambda nn_: nn_.GINEConv(_mlp(), edge_dim=EDGE_DIM), _node_and_edges),
    "SAGEConv": (lambda nn_: nn_.SAGEConv(_C, _C), None),
    "GATConv": (lambda nn_: nn_.GATConv(_C, _C // 4, heads=4, edge_dim=EDGE_DIM), _node_and_edges),
    "GATv2Conv": (lambda nn_: nn_.GATv2Conv(_C, _C // 4, heads=4, edge_dim=EDGE_DIM), _node_and_edges),
    "PNAConv": (lambda nn_: nn_.PNAConv(_C, _C, aggregators=["mean", "min", "max", "std"],
                                        scalers=["identity", "amplification", "attenuation"],
                                        deg=torch.tensor([1, 2, 3, 2, 1]), edge_dim=EDGE_DIM), _node_and_edges),
    "MPNNConv": (lambda nn_: nn_.MPNNConv(_C, _C, edge_dim=EDGE_DIM), _node_and_edges),
    "NNConv": (lambda nn_: nn_.NNConv(_C, _C, nn=_edge_network(), aggr="mean", edge_dim=EDGE_DIM),
               _node_and_edges),
    "GatedGCNConv": (lambda nn_: nn_.GatedGCNConv(_C, _C, edge_dim=EDGE_DIM), _node_and_edges),
    "EdgeGCNConv": (lambda nn_: nn_.EdgeGCNConv(_C, _C, edge_dim=EDGE_DIM), _node_and_edges),
    "GraphTransformerLayer": (lambda nn_: nn_.GraphTransformerLayer(_C, heads=4), _x_and_batch),
    "GraphMultiheadAttention": (lambda nn_: nn_.GraphMultiheadAttention(_C, heads=4), _x_and_batch),
    "GPSLayer": (lambda nn_: nn_.GPSLayer(_C, heads=4, edge_dim=EDGE_DIM, norm="layer_norm"),
                 lambda m, d: m(d.x, d.edge_index, d.batch, edge_attr=d.edge_attr)),
    "LapPEEncoder": (lambda nn_: nn_.LapPEEncoder(4, _C), lambda m, d: m(d.x[:, :4], d.batch)),
    "EGNNLayer": (lambda nn_: nn_.EGNNLayer(_C, _C), lambda m, d: m(d.x, d.pos, d.edge_index, d.batch)),
    "Readout": (lambda nn_: nn_.Readout("sum"), lambda m, d: m(d.x, d.batch, d.num_graphs)),
    "Set2SetReadout": (lambda nn_: nn_.Set2SetReadout(_C, steps=3), lambda m, d: m(d.x, d.batch, d.num_graphs)),
    # coarsening: checked equivariant up to a permutation of the pooled nodes (their declared symmetry)
    "TopKPooling": (lambda nn_: nn_.TopKPooling(_C, ratio=0.5), _pool_sparse),
    "SAGPooling": (lambda nn_: nn_.SAGPooling(_C, ratio=0.5), _pool_sparse),
    "GraclusPooling": (lambda nn_: nn_.GraclusPooling("max"), _pool_weighted),
    "DiffPool": (lambda nn_: nn_.DiffPool(_C, _C, num_clusters=4), _pool_dense),
    "MinCutPool": (lambda nn_: nn_.MinCutPool(_C, num_clusters=4), _pool_dense),
}
"""Layers of :mod:`gdl_graphs.nn` certified on :func:`example_batch`, by class name."""

EXEMPT_LAYERS: dict[str, str] = {
    "EdgeBias": "returns pair-level attention biases [B, heads, N_max, N_max], which the kit does not compare; "
                "tests/test_attention.py::test_bias_modules_are_permutation_equivariant checks P b P^T through "
                "node summaries",
    "SPDBias": "returns pair-level attention biases [B, heads, N_max, N_max] (see EdgeBias)",
    "EGNN": "certified as the registered model 'egnn' (rows model:egnn (property) and (dynamics)), which calls it",
}
"""Public layers not certified here, with the reason."""

POOLING_LAYERS = ("TopKPooling", "SAGPooling", "GraclusPooling", "DiffPool", "MinCutPool")
"""The coarsening layers of :data:`LAYER_CHECKS`, also certified followed by a sum readout (invariant)."""

MODEL_TASKS = {"graph_regression": "property", "dynamics": "dynamics"}
"""Task kinds a registered model is certified on (as a graph-level invariant or a position-predicting network),
with the label of its row."""

EXEMPT_TASKS = {
    "forecasting": "the sensor graph is fixed at construction, so relabelling the sensors means building a second "
                   "model; tests/test_temporal_models.py checks them that way",
}
"""Task kinds whose models are not certified here, with the reason."""


def public_layers() -> dict[str, type[nn.Module]]:
    """Every public ``nn.Module`` class defined in a module under :mod:`gdl_graphs.nn`, by class name (an alias
    such as ``EdgeNetworkConv = NNConv`` is the same class, listed once)."""
    package = importlib.import_module("gdl_graphs.nn")
    found: dict[str, type[nn.Module]] = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (not name.startswith("_") and inspect.isclass(value) and issubclass(value, nn.Module)
                    and value.__module__ == module.__name__):
                found[value.__name__] = value
    return found


def layer_entries() -> list[Entry]:
    """The discovered layers that :data:`LAYER_CHECKS` certifies."""
    namespaces = {name: importlib.import_module(cls.__module__) for name, cls in public_layers().items()}
    entries = []
    for name in sorted(namespaces):
        if name in LAYER_CHECKS:
            build, call = LAYER_CHECKS[name]
            entries.append(Entry(name, lambda build=build, ns=namespaces[name]: build(ns), call=call or
                                 (lambda m, d: m(d.x, d.edge_index))))
    return entries


def model_entries() -> list[Entry]:
    """Every registered model at a small width, built by the registry for each of its task kinds in
    :data:`MODEL_TASKS`."""
    from gdl_graphs.data.benchmark import Benchmark
    from gdl_graphs.models.registry import build_model, list_models

    graphs = example_batch().to_data_list()
    benchmarks = {kind: Benchmark("verify", kind, "mae" if kind == "graph_regression" else "mse", graphs, graphs,
                                  graphs, num_features=CHANNELS, num_targets=3, num_edge_features=EDGE_DIM)
                  for kind in MODEL_TASKS}
    entries = []
    for model in list_models():
        depth = {"num_layers": 2} if model.layer is not None else {}  # mlp: no layers; egnn: its default depth
        for kind, label in MODEL_TASKS.items():
            if kind in model.tasks:
                entries.append(Entry(f"model:{model.name} ({label})",
                                     lambda name=model.name, b=benchmarks[kind], depth=depth: build_model(
                                         name, b, hidden_channels=16, **depth),
                                     call=lambda m, d: m(d)))
        for recipe in model.recipes:  # a paper's model as its recipe builds it, on a graph-level task
            kind = "graph_regression" if "graph_regression" in model.tasks else next(iter(MODEL_TASKS))
            entries.append(Entry(f"recipe:{recipe.name}", lambda name=recipe.name, b=benchmarks[kind]: build_model(
                name, b, hidden_channels=16), call=lambda m, d: m(d)))
    return entries


def pooling_readout_entries() -> list[Entry]:
    """Each coarsening layer of :data:`POOLING_LAYERS` followed by a sum over its pooled nodes, checked invariant
    (the layer itself is certified up to a permutation of its clusters through :data:`LAYER_CHECKS`)."""
    namespaces = {name: importlib.import_module(cls.__module__) for name, cls in public_layers().items()}
    entries = []
    for name in POOLING_LAYERS:
        build, call = LAYER_CHECKS[name]
        entries.append(Entry(f"{name} + sum readout",
                             lambda build=build, call=call, ns=namespaces[name]: PoolThenReadout(build(ns), call),
                             call=lambda m, d: m(d)))
    return entries


def all_entries() -> list[Entry]:
    return layer_entries() + pooling_readout_entries() + model_entries()


def example_batch(seed: int = 0) -> Batch:
    """Three random graphs (1, 7 and 12 nodes) with node and edge features, 3D positions and velocities, as one
    batch."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in (1, 7, 12):
        e = 3 * n
        graphs.append(Data(x=torch.randn(n, CHANNELS, generator=g),
                           edge_index=torch.randint(0, n, (2, e), generator=g),
                           edge_attr=torch.randn(e, EDGE_DIM, generator=g), pos=torch.randn(n, 3, generator=g),
                           vel=torch.randn(n, 3, generator=g)))
    return Batch.from_data_list(graphs)


def verify(entries: list[Entry] | None = None, seed: int = 0) -> list[tuple[str, str, float | None, str]]:
    """Check each entry; returns ``(name, symmetry, max_error or None, status)`` rows."""
    rows = []
    data = example_batch(seed)
    for entry in entries if entries is not None else all_entries():
        torch.manual_seed(seed)
        module = entry.build()
        call = entry.call or (None if entry.edge_features else (lambda m, d: m(d.x, d.edge_index)))
        group = getattr(module, "symmetry", "undeclared")
        try:
            error = check_symmetry(module, data, call=call, seed=seed)
            rows.append((entry.name, group, error, "ok"))
        except (AssertionError, ValueError) as exc:
            rows.append((entry.name, group, None, f"FAILED: {exc}"))
    return rows
