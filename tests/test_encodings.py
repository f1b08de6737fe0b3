"""Laplacian eigenvector PE (sign flips, sign-invariant encoder) and random-walk structural encodings."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import from_networkx

from gdl_graphs.nn.attention import AddLaplacianPE, AddRandomWalkSE, LapPEEncoder, random_sign_flip
from gdl_graphs.testing import check_symmetry, permute_graph, random_node_permutation
from tests.conftest import random_graph


def connected_graph(n=30, seed=0) -> Data:
    """A connected undirected graph with distinct Laplacian eigenvalues (checked)."""
    graph = nx.connected_watts_strogatz_graph(n, 4, 0.5, seed=seed)
    data = from_networkx(graph)
    eigenvalues = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(graph).toarray())
    assert np.diff(eigenvalues).min() > 1e-6, "test graph must have distinct eigenvalues"
    data.num_nodes = n
    return data


def assert_equal_up_to_column_signs(a: torch.Tensor, b: torch.Tensor, atol=1e-5):
    signs = torch.sign((a * b).sum(0))
    assert bool((signs != 0).all())
    torch.testing.assert_close(a, b * signs, atol=atol, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# AddLaplacianPE
# ---------------------------------------------------------------------------------------------------------------
def test_laplacian_pe_are_the_nontrivial_eigenvectors():
    data = connected_graph()
    pe = AddLaplacianPE(k=5)(data.clone()).lap_pe.double()
    graph = nx.Graph(data.edge_index.t().tolist())
    lap = torch.from_numpy(nx.normalized_laplacian_matrix(graph, nodelist=range(30)).toarray())
    expected_values = torch.from_numpy(np.linalg.eigvalsh(lap.numpy())[1:6])
    torch.testing.assert_close(lap @ pe, pe * expected_values, atol=1e-5, rtol=0)  # L v = lambda v
    torch.testing.assert_close(pe.T @ pe, torch.eye(5, dtype=torch.float64), atol=1e-5, rtol=0)


def test_laplacian_pe_small_graphs_are_zero_padded_and_batch():
    graphs = [AddLaplacianPE(k=4)(random_graph(n, 2 * n, seed=n)) for n in (1, 2, 3, 9)]
    assert [tuple(g.lap_pe.shape) for g in graphs] == [(1, 4), (2, 4), (3, 4), (9, 4)]
    assert torch.equal(graphs[0].lap_pe, torch.zeros(1, 4))
    assert torch.equal(graphs[2].lap_pe[:, 2:], torch.zeros(3, 2))
    assert Batch.from_data_list(graphs).lap_pe.shape == (15, 4)


def test_laplacian_pe_is_deterministic_and_equivariant_up_to_sign():
    data = connected_graph()
    transform = AddLaplacianPE(k=6)
    pe = transform(data.clone()).lap_pe
    assert torch.equal(pe, transform(data.clone()).lap_pe)
    perm = random_node_permutation(data, torch.Generator().manual_seed(0))
    moved = permute_graph(data, perm, torch.randperm(data.num_edges))
    assert_equal_up_to_column_signs(transform(moved).lap_pe, pe[perm])


def test_laplacian_pe_sparse_solver_agrees_with_dense(monkeypatch):
    data = connected_graph(n=60, seed=3)
    dense = AddLaplacianPE(k=4)(data.clone()).lap_pe
    monkeypatch.setattr(AddLaplacianPE, "DENSE_THRESHOLD", 10)
    sparse = AddLaplacianPE(k=4)(data.clone()).lap_pe
    assert_equal_up_to_column_signs(sparse, dense, atol=1e-4)


def test_laplacian_pe_symmetrises_directed_graphs():
    one_way = Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), num_nodes=4)
    both_ways = Data(edge_index=torch.tensor([[0, 1, 2, 1, 2, 3], [1, 2, 3, 0, 1, 2]]), num_nodes=4)
    assert torch.equal(AddLaplacianPE(k=2)(one_way).lap_pe, AddLaplacianPE(k=2)(both_ways).lap_pe)


# ---------------------------------------------------------------------------------------------------------------
# Sign flips and encoders
# ---------------------------------------------------------------------------------------------------------------
def test_random_sign_flip_flips_whole_columns_per_graph():
    pe = torch.randn(12, 5)
    batch = torch.tensor([0] * 4 + [1] * 8)
    flipped = random_sign_flip(pe, batch, torch.Generator().manual_seed(0))
    ratio = flipped / pe
    assert bool((ratio.abs() == 1).all())
    for g in (0, 1):
        assert bool((ratio[batch == g] == ratio[batch == g][0]).all())  # one sign per column per graph
    assert bool((ratio == -1).any()) and bool((ratio == 1).any())
    assert torch.equal(flipped, random_sign_flip(pe, batch, torch.Generator().manual_seed(0)))


def test_encoder_flips_signs_in_training_only():
    pe, batch = torch.randn(10, 4), torch.tensor([0] * 3 + [1] * 7)
    encoder = LapPEEncoder(4, 8)
    torch.manual_seed(5)
    out = encoder(pe, batch)
    torch.manual_seed(5)
    torch.testing.assert_close(out, encoder.lin(random_sign_flip(pe, batch)))
    assert not torch.allclose(out, encoder(pe, batch))  # fresh signs each call
    encoder.eval()
    torch.testing.assert_close(encoder(pe, batch), encoder.lin(pe))
    assert not torch.allclose(encoder(pe, batch), encoder(-pe, batch))  # the plain encoder sees the sign


def test_sign_invariant_encoder_ignores_every_sign_flip():
    pe, batch = torch.randn(10, 4), torch.tensor([0] * 3 + [1] * 7)
    encoder = LapPEEncoder(4, 8, sign_invariant=True)
    out = encoder(pe, batch)
    for seed in range(3):
        flipped = random_sign_flip(pe, batch, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(encoder(flipped, batch), out, atol=1e-6, rtol=0)
    assert not torch.allclose(encoder(pe.abs().sqrt(), batch), out)  # not a constant map


@pytest.mark.parametrize("sign_invariant", [False, True])
def test_encoders_are_permutation_equivariant(sign_invariant):
    graphs = [AddLaplacianPE(k=4)(random_graph(n, 3 * n, seed=n)) for n in (1, 6, 11)]
    data = Batch.from_data_list(graphs)
    encoder = LapPEEncoder(4, 8, sign_invariant=sign_invariant)
    assert encoder.symmetry == "S_n-equivariant"
    assert check_symmetry(encoder, data, call=lambda m, d: m(d.lap_pe, d.batch)) < 1e-5


# ---------------------------------------------------------------------------------------------------------------
# AddRandomWalkSE
# ---------------------------------------------------------------------------------------------------------------
def return_probabilities(edge_index, num_nodes, steps):
    """diag((D^-1 A)^t) for t = 1..steps with numpy, counting duplicate edges once."""
    adj = np.zeros((num_nodes, num_nodes))
    adj[edge_index[0].numpy(), edge_index[1].numpy()] = 1.0
    walk = adj / np.maximum(adj.sum(1, keepdims=True), 1)
    out, power = [], np.eye(num_nodes)
    for _ in range(steps):
        power = power @ walk
        out.append(np.diag(power))
    return torch.tensor(np.stack(out, 1), dtype=torch.float32)


def test_rwse_on_a_cycle():
    cycle = Data(edge_index=torch.tensor([[i, (i + 1) % 6] for i in range(6)] +
                                         [[(i + 1) % 6, i] for i in range(6)]).t(), num_nodes=6)
    rwse = AddRandomWalkSE(walk_length=4)(cycle).rwse
    torch.testing.assert_close(rwse, torch.tensor([[0.0, 0.5, 0.0, 0.375]]).expand(6, 4))


def test_rwse_counts_duplicate_edges_once():
    data = random_graph(15, 60, seed=3)  # a multigraph with duplicate edges and self-loops
    assert data.edge_index.t().unique(dim=0).size(0) < 60
    rwse = AddRandomWalkSE(walk_length=5)(data.clone()).rwse
    torch.testing.assert_close(rwse, return_probabilities(data.edge_index, 15, 5), atol=1e-6, rtol=0)


def test_rwse_is_permutation_equivariant():
    data = random_graph(20, 50, seed=1)
    transform = AddRandomWalkSE(walk_length=6)
    perm = random_node_permutation(data, torch.Generator().manual_seed(2))
    moved = permute_graph(data, perm, torch.randperm(data.num_edges))
    torch.testing.assert_close(transform(moved).rwse, transform(data.clone()).rwse[perm], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# Errors and repr
# ---------------------------------------------------------------------------------------------------------------
def test_bad_input_raises_value_errors():
    with pytest.raises(ValueError, match="k must be positive"):
        AddLaplacianPE(k=0)
    with pytest.raises(ValueError, match="normalization"):
        AddLaplacianPE(k=2, normalization="rw")
    with pytest.raises(ValueError, match="walk_length"):
        AddRandomWalkSE(walk_length=0)
    with pytest.raises(ValueError, match="edge_index"):
        AddRandomWalkSE(walk_length=2)(Data(num_nodes=3))
    with pytest.raises(ValueError, match="pe must have shape"):
        LapPEEncoder(4, 8)(torch.randn(5, 3))


def test_repr():
    assert repr(AddLaplacianPE(4)) == "AddLaplacianPE(k=4, attr_name='lap_pe', normalization='sym')"
    assert repr(AddRandomWalkSE(8)) == "AddRandomWalkSE(walk_length=8, attr_name='rwse')"
    assert repr(LapPEEncoder(4, 8, sign_invariant=True)) == "LapPEEncoder(4, 8, sign_invariant=True)"
