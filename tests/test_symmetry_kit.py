"""The symmetry kit must pass correct layers and catch broken ones, naming the output and the error."""

import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, global_add_pool
from torch_geometric.utils import scatter

from gdl_graphs.testing import (
    EN_EQUIVARIANT, PERMUTATION_EQUIVARIANT, assert_en_equivariant, assert_permutation_equivariant,
    assert_permutation_invariant, check_symmetry, permute_graph, random_node_permutation, random_orthogonal,
)
from tests.conftest import random_batch, random_graph


class AddsNodeIndex(nn.Module):
    """Broken: output depends on the node's position in the tensor."""

    def forward(self, x, edge_index):
        return x + torch.arange(x.size(0), dtype=x.dtype).unsqueeze(-1)


class EdgeOrderDependent(nn.Module):
    """Broken: message weights depend on where an edge sits in the edge list."""

    def forward(self, x, edge_index):
        weight = torch.arange(edge_index.size(1), dtype=x.dtype).unsqueeze(-1)
        return scatter(x[edge_index[0]] * weight, edge_index[1], 0, dim_size=x.size(0), reduce="sum")


class FirstNodeReadout(nn.Module):
    """Broken readout: reads the first node of each graph."""

    def forward(self, x, edge_index, batch):
        first = torch.ones_like(batch, dtype=torch.bool)
        first[1:] = batch[1:] != batch[:-1]
        return x[first]


class SumReadout(nn.Module):
    def forward(self, x, edge_index, batch):
        return global_add_pool(x, batch)


class TinyEGNN(nn.Module):
    """A minimal correct E(n)-equivariant layer (messages from invariant distances)."""

    def __init__(self, channels):
        super().__init__()
        self.phi_e = nn.Sequential(nn.Linear(2 * channels + 1, channels), nn.SiLU())
        self.phi_x = nn.Linear(channels, 1)

    def forward(self, x, edge_index, pos):
        src, dst = edge_index
        diff = pos[dst] - pos[src]
        m = self.phi_e(torch.cat([x[dst], x[src], (diff ** 2).sum(-1, keepdim=True)], -1))
        pos_out = pos + scatter(diff * self.phi_x(m), dst, 0, dim_size=pos.size(0), reduce="mean")
        return x + scatter(m, dst, 0, dim_size=x.size(0), reduce="sum"), pos_out


class UsesAbsoluteCoordinates(TinyEGNN):
    """Broken: features read raw coordinates, so they change under translation and rotation."""

    def forward(self, x, edge_index, pos):
        h, pos_out = super().forward(x, edge_index, pos)
        return h + pos.norm(dim=-1, keepdim=True), pos_out


class ChiralLayer(nn.Module):
    """Rotation-equivariant but not reflection-equivariant: a cross product is a pseudo-vector."""

    def forward(self, x, edge_index, pos):
        src, dst = edge_index
        center = pos.mean(0)
        cross = torch.cross(pos[src] - center, pos[dst] - center, dim=-1) * x[src, :1]
        return x, pos + scatter(cross, dst, 0, dim_size=pos.size(0), reduce="sum")


def geometric_graph(n=7, channels=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    full = torch.ones(n, n).nonzero().T
    edge_index = full[:, full[0] != full[1]]
    return Data(x=torch.randn(n, channels, generator=g, dtype=dtype), pos=torch.randn(n, 3, generator=g,
                dtype=dtype), edge_index=edge_index)


def test_correct_layer_passes_and_returns_small_error():
    layer = GCNConv(8, 4)
    err = assert_permutation_equivariant(layer, random_graph(12, 40))
    assert 0.0 <= err < 1e-5


def test_catches_node_index_dependence():
    with pytest.raises(AssertionError, match=r"output \(node-level.*max abs error [0-9.e+]+"):
        assert_permutation_equivariant(AddsNodeIndex(), random_graph(12, 40))


def test_catches_edge_order_dependence():
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_permutation_equivariant(EdgeOrderDependent(), random_graph(12, 40))


def test_invariance_passes_sum_and_catches_first_node():
    batch = random_batch()
    assert assert_permutation_invariant(SumReadout(), batch) < 1e-5
    with pytest.raises(AssertionError, match="graph-level.*not invariant"):
        assert_permutation_invariant(FirstNodeReadout(), batch)


def test_batch_permutation_stays_within_graphs():
    batch = random_batch(sizes=(3, 4, 5))
    perm = random_node_permutation(batch, torch.Generator().manual_seed(0))
    assert torch.equal(batch.batch[perm], batch.batch)
    assert not torch.equal(perm, torch.arange(batch.num_nodes))


def test_permute_graph_relabels_edges_consistently():
    data = random_graph(6, 10, edge_dim=2)
    perm = torch.randperm(6)
    edge_perm = torch.randperm(10)
    moved = permute_graph(data, perm, edge_perm)
    # the feature of the source of each moved edge equals the original one
    assert torch.equal(moved.x[moved.edge_index[0]], data.x[data.edge_index[0, edge_perm]])
    assert torch.equal(moved.edge_attr, data.edge_attr[edge_perm])


def test_random_orthogonal_determinants():
    for reflection, det in ((False, 1.0), (True, -1.0)):
        q = random_orthogonal(3, reflection, torch.Generator().manual_seed(3))
        assert torch.allclose(q @ q.T, torch.eye(3, dtype=q.dtype), atol=1e-12)
        assert torch.linalg.det(q).item() == pytest.approx(det)


def test_en_equivariant_layer_passes_in_float64_and_float32():
    torch.manual_seed(0)
    layer = TinyEGNN(4).double()
    assert assert_en_equivariant(layer, geometric_graph()) < 1e-10
    assert assert_en_equivariant(layer.float(), geometric_graph(dtype=torch.float32)) < 1e-4


def test_en_catches_absolute_coordinates():
    layer = UsesAbsoluteCoordinates(4).double()
    with pytest.raises(AssertionError, match=r"E\(n\) x S_n symmetry violated: output\[0\] \(node-level"):
        assert_en_equivariant(layer, geometric_graph())


def test_en_includes_reflections():
    data = geometric_graph()
    with pytest.raises(AssertionError, match=r"output\[1\] \(position-level"):
        assert_en_equivariant(ChiralLayer(), data, trials=2)
    # the rotation-only trial (trial 0) passes: the failure comes from the reflection
    assert assert_en_equivariant(ChiralLayer(), data, trials=1) < 1e-8


def test_vector_outputs_rotate_without_translation():
    class Velocity(nn.Module):
        def forward(self, x, edge_index, pos, vel):
            return 2.0 * vel

    data = geometric_graph()
    data.vel = torch.randn_like(data.pos)
    assert assert_en_equivariant(Velocity(), data, output_kinds="vector") < 1e-10
    with pytest.raises(AssertionError, match="position-level"):
        assert_en_equivariant(Velocity(), data, output_kinds="position")


def test_restores_training_mode_and_checks_in_eval_mode():
    model = TinyEGNN(4).double().train()
    model.phi_e.append(nn.Dropout(0.5))
    assert_en_equivariant(model, geometric_graph())
    assert model.training


def test_check_symmetry_dispatches_on_declared_group():
    layer = GCNConv(8, 4)
    layer.symmetry = PERMUTATION_EQUIVARIANT
    assert check_symmetry(layer, random_graph(10, 30)) < 1e-5
    egnn = TinyEGNN(4).double()
    egnn.symmetry = EN_EQUIVARIANT
    assert check_symmetry(egnn, geometric_graph()) < 1e-10
    with pytest.raises(ValueError, match="declares no known symmetry"):
        check_symmetry(nn.Linear(2, 2), random_graph(3, 3))


def test_clear_errors_on_bad_use():
    with pytest.raises(ValueError, match="no 'pos'"):
        assert_en_equivariant(TinyEGNN(8), random_graph(5, 5))
    with pytest.raises(TypeError, match="needs 'pos'"):
        assert_permutation_equivariant(TinyEGNN(8), random_graph(5, 5))
    with pytest.raises(ValueError, match="unknown output kind"):
        assert_permutation_equivariant(GCNConv(8, 4), random_graph(5, 5), output_kinds="nodes")
    with pytest.raises(TypeError, match="Data or Batch"):
        assert_permutation_equivariant(GCNConv(8, 4), {"x": torch.randn(3, 8)})
