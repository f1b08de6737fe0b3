"""The model registry and the blueprint GraphNet: every layer trains, symmetry holds at graph and node level,
encoders handle integer-coded and missing features, bad arguments are rejected."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn.aggr import Set2Set

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.models import (GraphNet, build_model, count_parameters, list_models, parse_budget,
                               width_for_budget)
from gdl_graphs.nn.readout import Set2SetReadout
from gdl_graphs.testing import assert_permutation_equivariant, assert_permutation_invariant


def molecule_batch(seed: int = 0) -> Batch:
    """Graphs with integer-coded node features (two columns) and edge features (one column)."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in (1, 4, 9):
        e = 2 * n
        graphs.append(Data(x=torch.stack([torch.randint(0, 5, (n,), generator=g),
                                          torch.randint(0, 3, (n,), generator=g)], 1),
                           edge_index=torch.randint(0, n, (2, e), generator=g),
                           edge_attr=torch.randint(0, 4, (e, 1), generator=g), y=torch.randn(1, 1, generator=g)))
    return Batch.from_data_list(graphs)


def _net(layer: str, **kw) -> GraphNet:
    deg = torch.tensor([1, 3, 4, 2, 1]) if layer == "pna" else None
    return GraphNet(layer, 2, 1, hidden_channels=16, num_layers=2, edge_dim=1, node_vocab=(5, 3), edge_vocab=(4,),
                    deg=deg, **kw)


@pytest.mark.parametrize("layer", sorted(e.name for e in list_models() if e.layer is not None))
def test_every_layer_trains_and_is_invariant(layer):
    torch.manual_seed(0)
    model, data = _net(layer, virtual_node=True), molecule_batch()
    out = model(data)
    assert out.shape == (3, 1)
    out.pow(2).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert_permutation_invariant(model, data, call=lambda m, d: m(d))


@pytest.mark.parametrize("layer", ["gcn", "gat", "transformer"])
def test_node_level_models_are_equivariant(layer):
    data = molecule_batch(1)
    model = GraphNet(layer, 2, 3, hidden_channels=16, num_layers=2, level="node", node_vocab=(5, 3))
    assert model.symmetry == "S_n-equivariant"
    assert_permutation_equivariant(model, data, call=lambda m, d: m(d))


def test_graphs_without_node_features_use_a_learned_constant():
    data = Batch.from_data_list([Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)] * 2)
    model = GraphNet("gin", 0, 2, hidden_channels=8, readout="sum")
    assert model(data).shape == (2, 2)


def test_virtual_node_changes_the_function():
    torch.manual_seed(0)
    plain = _net("gcn")
    torch.manual_seed(0)
    virtual = _net("gcn", virtual_node=True)
    virtual.load_state_dict(plain.state_dict(), strict=False)
    for mlp in virtual.virtual_mlps:
        torch.nn.init.normal_(mlp[0].weight)
    virtual.eval(), plain.eval()
    assert not torch.allclose(plain(molecule_batch()), virtual(molecule_batch()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="layer must be one of"):
        GraphNet("gcm", 2, 1)
    with pytest.raises(ValueError, match="divisible by heads"):
        GraphNet("gat", 2, 1, hidden_channels=10, heads=4)
    with pytest.raises(ValueError, match="level"):
        GraphNet("gcn", 2, 1, level="edge")
    with pytest.raises(ValueError, match="deg"):
        GraphNet("pna", 2, 1)
    with pytest.raises(ValueError, match="budget"):
        parse_budget("lots")
    assert parse_budget("0.5M") == 500_000 and parse_budget("100k") == 100_000


def test_set2set_readout_is_pygs_and_invariant():
    torch.manual_seed(0)
    data = molecule_batch()
    x = torch.randn(data.num_nodes, 6)
    readout = Set2SetReadout(6, steps=4)
    reference = Set2Set(6, processing_steps=4)
    reference.load_state_dict(readout.set2set.state_dict())
    torch.testing.assert_close(readout(x, data.batch, data.num_graphs), reference(x, data.batch))
    assert readout.out_channels == 12 and repr(readout) == "Set2SetReadout(6, steps=4)"
    data.x = x
    assert_permutation_invariant(readout, data, call=lambda m, d: m(d.x, d.batch, d.num_graphs))
    with pytest.raises(ValueError, match="steps"):
        Set2SetReadout(6, steps=0)


def test_shared_weights_and_set2set_options_are_checked():
    model = _net("gin", share_weights=True, readout="set2set")
    assert all(layer is model.layers[0] for layer in model.layers)
    assert model(molecule_batch()).shape == (3, 1)
    with pytest.raises(ValueError, match="share_weights"):
        GraphNet("gin", 2, 1, encoder=False, share_weights=True, residual=False)
    with pytest.raises(ValueError, match="set2set"):
        GraphNet("gin", 2, 1, readout="set2set", readout_over="all_layers", head="linear")


def test_xavier_embedding_init_survives_reset_parameters():
    model = _net("gine", embedding_init="xavier")
    model.reset_parameters()
    for encoder in (model.node_encoder, model.edge_encoder):
        for table in encoder.tables:
            bound = (6 / sum(table.weight.shape)) ** 0.5
            assert table.weight.abs().max() <= bound and table.weight.std() > bound / 4
    assert _net("gine").node_encoder.tables[0].weight.std() > 0.5  # nn.Embedding's N(0, 1)
    with pytest.raises(ValueError, match="embedding init"):
        _net("gine", embedding_init="uniform")


def test_budget_search_is_the_largest_fitting_width():
    def make(width):
        return GraphNet("gin", 2, 1, hidden_channels=width, num_layers=3, node_vocab=(5, 3))

    width = width_for_budget(make, 20_000)
    assert count_parameters(make(width)) <= 20_000 < count_parameters(make(width + 8))
    with pytest.raises(ValueError, match="below the smallest model"):
        width_for_budget(make, 10)


def test_build_model_reads_the_benchmark_dimensions():
    graphs = list(molecule_batch().to_data_list())
    bench = Benchmark("toy", "graph_regression", "mae", graphs, graphs, graphs, num_features=2, num_targets=1,
                      num_edge_features=1, node_vocab=(5, 3), edge_vocab=(4,))
    for name in ("gin", "gatedgcn", "pna", "gps"):
        model = build_model(name, bench, budget="20k")
        assert count_parameters(model) <= 20_000
        assert model(molecule_batch()).shape == (3, 1)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", bench)
