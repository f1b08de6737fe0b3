"""GPS layer: equality with PyG's GPSConv, symmetry, no leakage across graphs, local-layer resolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINEConv, GPSConv

from gdl_graphs.nn.attention import GPSLayer
from gdl_graphs.testing import assert_permutation_equivariant, check_symmetry
from tests.conftest import random_batch, random_graph

SIZES = (1, 64, 2, 17, 5, 33, 8)


def gine(channels=16, edge_dim=3):
    return GINEConv(nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels)),
                    edge_dim=edge_dim)


def randomize_norms(layer):
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for bn in (m for m in layer.modules() if isinstance(m, nn.BatchNorm1d)):
            for t in (bn.running_mean, bn.weight, bn.bias):
                t.copy_(torch.randn(t.shape, generator=g))
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    return layer


def test_gps_equals_pyg_gpsconv():
    """Same weights in PyG's GPSConv (dense nn.MultiheadAttention over to_dense_batch): same output."""
    data = random_batch(SIZES, channels=16, edge_dim=3)
    ours = randomize_norms(GPSLayer(16, local=gine(), heads=4)).eval()
    pyg = GPSConv(16, conv=ours.local, heads=4, norm="batch_norm").eval()
    with torch.no_grad():
        pyg.attn.in_proj_weight.copy_(ours.attn.qkv.weight)
        pyg.attn.in_proj_bias.copy_(ours.attn.qkv.bias)
        pyg.attn.out_proj.load_state_dict(ours.attn.out.state_dict())
        pyg.mlp[0].load_state_dict(ours.ffn[0].state_dict())
        pyg.mlp[3].load_state_dict(ours.ffn[3].state_dict())
        for theirs, mine in ((pyg.norm1, ours.norm_local), (pyg.norm2, ours.norm_attn), (pyg.norm3, ours.norm_ffn)):
            theirs.module.load_state_dict(mine.state_dict())
        expected = pyg(data.x, data.edge_index, data.batch, edge_attr=data.edge_attr)
        out = ours(data.x, data.edge_index, data.batch, data.edge_attr)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("local", ["gine", "none"])
def test_gps_permutation_equivariant(local):
    layer = randomize_norms(GPSLayer(16, local=gine() if local == "gine" else None, heads=4))
    assert layer.symmetry == "S_n-equivariant"
    assert check_symmetry(layer, random_batch(SIZES, channels=16, edge_dim=3)) < 1e-4


def test_gps_changing_one_graph_leaves_the_others_bit_identical():
    layer = randomize_norms(GPSLayer(16, local=gine(), heads=4)).eval()
    others = [random_graph(9, 27, 16, edge_dim=3, seed=1), random_graph(3, 9, 16, edge_dim=3, seed=2)]
    outputs = []
    with torch.no_grad():
        for graph_a in (random_graph(5, 15, 16, edge_dim=3, seed=0), random_graph(40, 120, 16, edge_dim=3, seed=9)):
            data = Batch.from_data_list([graph_a, *others])
            out = layer(data.x, data.edge_index, data.batch, data.edge_attr)
            outputs.append(out[data.batch > 0])
    assert torch.equal(outputs[0], outputs[1])


class EdgeUpdatingConv(nn.Module):
    """A toy local layer returning (node features, updated edge features), like GatedGCN."""

    def __init__(self, channels):
        super().__init__()
        self.lin = nn.Linear(channels, channels)

    def forward(self, x, edge_index, edge_attr):
        return self.lin(x), edge_attr + (x[edge_index[0]] * x[edge_index[1]]).sum(-1, keepdim=True)


def test_gps_passes_updated_edge_features_through():
    data = random_batch(SIZES, channels=16, edge_dim=1)
    layer = GPSLayer(16, local=EdgeUpdatingConv(16), heads=2, norm="layer_norm")
    x, edge_attr = layer(data.x, data.edge_index, data.batch, data.edge_attr)
    assert x.shape == data.x.shape
    torch.testing.assert_close(edge_attr, layer.local(data.x, data.edge_index, data.edge_attr)[1])
    assert_permutation_equivariant(layer, data, output_kinds=["node", "edge"])


def test_named_local_layers_resolve_through_gdl_conv():
    conv = pytest.importorskip("gdl_graphs.nn.conv")
    data = random_batch(SIZES, channels=16, edge_dim=3)
    layer = GPSLayer(16, local="gine", edge_dim=3, heads=4)
    assert isinstance(layer.local, conv.GINEConv)
    assert check_symmetry(layer, data) < 1e-4
    with pytest.raises(ValueError, match="edge_attr is required"):
        layer(data.x, data.edge_index, data.batch)
    if not hasattr(conv, "GatedGCNConv"):
        pytest.skip("gdl_graphs.nn.conv has no GatedGCNConv yet")
    layer = GPSLayer(16, local="gatedgcn", edge_dim=3, heads=4)
    assert isinstance(layer.local, conv.GatedGCNConv)
    assert check_symmetry(layer, data) < 1e-4


def test_bad_input_raises_value_errors():
    data = random_batch((3, 4), channels=16, edge_dim=3)
    with pytest.raises(ValueError, match="local must be"):
        GPSLayer(16, local="gcn")
    with pytest.raises(ValueError, match="heads"):
        GPSLayer(16, local=None, heads=5)
    with pytest.raises(ValueError, match="x has 4 features"):
        GPSLayer(16, local=None)(data.x[:, :4], data.edge_index, data.batch)


def test_repr():
    assert repr(GPSLayer(16, local=None, heads=2)) == "GPSLayer(16, local=None, heads=2)"
