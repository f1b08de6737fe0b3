"""``gdl-bench verify``: run every registered layer and model through :mod:`gdl_graphs.testing` and report its
symmetry group and measured max error.

Spatio-temporal models are not listed: their sensor graph is fixed at construction, so relabelling the sensors
means building a second model; ``tests/test_temporal_models.py`` checks them that way."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from gdl_graphs.testing import check_symmetry

CHANNELS, EDGE_DIM = 16, 4


@dataclass(frozen=True)
class Entry:
    """A layer to certify: how to build it and the input it is checked on."""

    name: str
    build: Callable[[], nn.Module]
    edge_features: bool = False
    call: Callable | None = None


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(CHANNELS, CHANNELS), nn.ReLU(), nn.Linear(CHANNELS, CHANNELS))


def conv_entries() -> list[Entry]:
    """The message-passing layers of :mod:`gdl_graphs.nn.conv` (those present in this installation)."""
    conv = importlib.import_module("gdl_graphs.nn.conv")
    c = CHANNELS
    candidates = {
        "GCNConv": (lambda: conv.GCNConv(c, c), False),
        "GINConv": (lambda: conv.GINConv(_mlp()), False),
        "GINEConv": (lambda: conv.GINEConv(_mlp(), edge_dim=EDGE_DIM), True),
        "SAGEConv": (lambda: conv.SAGEConv(c, c), False),
        "GATConv": (lambda: conv.GATConv(c, c // 4, heads=4, edge_dim=EDGE_DIM), True),
        "GATv2Conv": (lambda: conv.GATv2Conv(c, c // 4, heads=4, edge_dim=EDGE_DIM), True),
        "PNAConv": (lambda: conv.PNAConv(c, c, aggregators=["mean", "min", "max", "std"],
                                         scalers=["identity", "amplification", "attenuation"],
                                         deg=torch.tensor([1, 2, 3, 2, 1]), edge_dim=EDGE_DIM), True),
        "MPNNConv": (lambda: conv.MPNNConv(c, c, edge_dim=EDGE_DIM), True),
        "GatedGCNConv": (lambda: conv.GatedGCNConv(c, c, edge_dim=EDGE_DIM), True),
    }
    return [Entry(name, build, edge) for name, (build, edge) in candidates.items() if hasattr(conv, name)]


def attention_entries() -> list[Entry]:
    """Complete-graph attention and GPS layers of :mod:`gdl_graphs.nn.attention`."""
    from gdl_graphs.nn import attention

    c = CHANNELS
    return [
        Entry("GraphTransformerLayer", lambda: attention.GraphTransformerLayer(c, heads=4),
              call=lambda m, d: m(d.x, d.batch)),
        Entry("GPSLayer", lambda: attention.GPSLayer(c, heads=4, edge_dim=EDGE_DIM, norm="layer_norm"),
              call=lambda m, d: m(d.x, d.edge_index, d.batch, edge_attr=d.edge_attr)),
    ]


def equivariant_entries() -> list[Entry]:
    """E(n)-equivariant layers (checked with rotations, reflections, translations and permutations)."""
    from gdl_graphs.nn import equivariant

    return [Entry("EGNNLayer", lambda: equivariant.EGNNLayer(CHANNELS, CHANNELS),
                  call=lambda m, d: m(d.x, d.pos, d.edge_index, d.batch))]


def model_entries() -> list[Entry]:
    """Every graph model of :mod:`gdl_graphs.models` at a small width, as a graph-level (invariant) network."""
    from gdl_graphs.models import LAYERS, GraphNet

    def build(name: str):
        deg = torch.tensor([1, 2, 3, 2, 1]) if name == "pna" else None
        return lambda: GraphNet(name, CHANNELS, 3, hidden_channels=16, num_layers=2, edge_dim=EDGE_DIM, deg=deg,
                                virtual_node=name == "gin")

    def egnn(task: str):
        from gdl_graphs.models.registry import EGNNOnData
        from gdl_graphs.nn.equivariant import EGNN

        return lambda: EGNNOnData(EGNN(CHANNELS, 16, 3, num_layers=2, edge_dim=EDGE_DIM, task=task,
                                       velocity=task == "dynamics"))

    def dynamics_gnn():
        from gdl_graphs.models.registry import DynamicsGNN

        return DynamicsGNN(GraphNet("gin", CHANNELS + 6, 3, hidden_channels=16, num_layers=2, level="node"))

    graph_models = [Entry(f"model:{name}", build(name), call=lambda m, d: m(d)) for name in LAYERS]
    return graph_models + [Entry("model:egnn (property)", egnn("property"), call=lambda m, d: m(d)),
                           Entry("model:egnn (dynamics)", egnn("dynamics"), call=lambda m, d: m(d)),
                           Entry("model:gin (dynamics)", dynamics_gnn, call=lambda m, d: m(d))]


def all_entries() -> list[Entry]:
    return conv_entries() + attention_entries() + equivariant_entries() + model_entries()


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
