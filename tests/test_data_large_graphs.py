"""OGB node-property datasets (ogbn-arxiv, ogbn-products) from fixtures in OGB's exact unpacked layout, with the
official split and Evaluator; the seeded synthetic graph at ogbn-products shape, generated small."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdl_graphs.data import load_benchmark
from gdl_graphs.data.synthetic_graphs import PRODUCTS_SHAPE, products_like_graph
from tests.fixtures.formats import write_ogbn


def ogbn_fixture(tmp_path, name, num_nodes=30, num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, num_nodes, (80, 2))
    edges = edges[edges[:, 0] != edges[:, 1]]
    features = rng.standard_normal((num_nodes, 4)).round(6)
    labels = rng.integers(0, num_classes, num_nodes)
    split = {"train": list(range(0, 18)), "valid": list(range(18, 24)), "test": list(range(24, num_nodes))}
    year = rng.integers(2000, 2020, num_nodes) if name == "ogbn-arxiv" else None
    write_ogbn(tmp_path, name, edges, features, labels, split, year=year)
    return edges, features, labels, split


@pytest.mark.parametrize("name, inverse", [("ogbn-arxiv", False), ("ogbn-products", True)])
def test_ogbn_official_layout(tmp_path, name, inverse):
    edges, features, labels, split = ogbn_fixture(tmp_path, name)
    bench = load_benchmark(name, root=tmp_path, verify=False)
    data = bench.train
    assert (bench.task, bench.metric, bench.split_sizes()) == ("node_classification", "accuracy", (18, 6, 6))
    assert data.num_nodes == 30 and bench.num_features == 4 and torch.allclose(data.x, torch.tensor(features).float())
    assert data.y.view(-1).tolist() == labels.tolist()
    expected = {tuple(e) for e in edges.tolist()} | ({(v, u) for u, v in edges.tolist()} if inverse else set())
    assert {tuple(e) for e in data.edge_index.t().tolist()} == expected
    assert data.train_mask.nonzero().view(-1).tolist() == split["train"]
    if name == "ogbn-arxiv":
        assert data.node_year.view(-1).size(0) == 30
        undirected = load_benchmark(name, root=tmp_path, verify=False, to_undirected=True).train
        assert {tuple(e) for e in undirected.edge_index.t().tolist()} == expected | {(v, u) for u, v in expected}
    y_true = data.y[data.test_mask].view(-1, 1)
    assert bench.evaluator.eval({"y_true": y_true, "y_pred": y_true})["acc"] == 1.0
    wrong = (y_true + 1) % 5
    assert bench.evaluator.eval({"y_true": y_true, "y_pred": wrong})["acc"] == 0.0
    # the cache is checked like every other: a changed label file is noticed
    write_ogbn(tmp_path, name, edges, features, (labels + 1) % 5, split,
               year=np.zeros(30, dtype=int) if name == "ogbn-arxiv" else None)
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_benchmark(name, root=tmp_path, verify=False)
    assert again.train.y.view(-1).tolist() == ((labels + 1) % 5).tolist()


def test_ogbn_incomplete_folder_is_refused(tmp_path):
    folder = write_ogbn(tmp_path, "ogbn-arxiv", np.array([[0, 1]]), np.zeros((2, 1)), np.array([0, 1]),
                        {"train": [0], "valid": [1], "test": [1]}, year=np.array([2000, 2001]))
    (folder / "RELEASE_v1.txt").unlink()          # OGB itself would block on stdin asking whether to delete it
    with pytest.raises(FileNotFoundError, match="RELEASE_v1.txt is missing"):
        load_benchmark("arxiv", root=tmp_path)
    (folder / "RELEASE_v1.txt").write_text("v1\n")
    (folder / "raw/node_year.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="node_year.csv.gz is missing"):
        load_benchmark("arxiv", root=tmp_path)


def test_synthetic_products_graph_small():
    kwargs = dict(num_nodes=3000, num_edges=20000, num_features=16, num_classes=6, homophily=0.8, seed=3,
                  progress=False)
    data = products_like_graph(**kwargs)
    again = products_like_graph(**kwargs)
    assert torch.equal(data.edge_index, again.edge_index) and torch.equal(data.x, again.x)
    assert not torch.equal(products_like_graph(**{**kwargs, "seed": 4}).edge_index, data.edge_index)
    row, col = data.edge_index
    n = data.num_nodes
    keys = row * n + col
    assert (keys[1:] > keys[:-1]).all() and (row != col).all()                # coalesced, no self-loops
    assert torch.equal(torch.sort(col * n + row).values, keys)                  # symmetric
    assert 0.95 * 2 * 20000 <= data.edge_index.size(1) <= 2 * 20000
    same = (data.y[row] == data.y[col]).float().mean()
    assert 0.75 <= same <= 0.9                                                  # homophily 0.8 (+ chance)
    degree = torch.bincount(row, minlength=n).float()
    assert degree.max() > 8 * degree.mean()                                     # heavy tail
    counts = torch.bincount(data.y)
    assert counts.numel() == 6 and counts[0] > 2 * counts[-1]                  # Zipf class sizes
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(6)])
    assert torch.cdist(means, means).fill_diagonal_(1e9).min() > 0.5             # classes separable
    sizes = [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")]
    assert sum(sizes) == n and abs(sizes[0] - 0.0803 * n) <= 1 and abs(sizes[1] - 0.0161 * n) <= 1
    assert not (data.train_mask & data.test_mask).any()


def test_synthetic_products_through_the_registry():
    bench = load_benchmark("synthetic-products", num_nodes=500, num_edges=2000, num_features=8, num_classes=4,
                           progress=False)
    assert bench.num_targets == 4 and bench.num_features == 8 and sum(bench.split_sizes()) == 500
    assert bench.info["num_edges"] == bench.train.edge_index.size(1) // 2
    assert PRODUCTS_SHAPE == {"num_nodes": 2_449_029, "num_edges": 61_859_140, "num_features": 100,
                              "num_classes": 47}
    with pytest.raises(ValueError, match="homophily"):
        products_like_graph(num_nodes=10, num_edges=10, num_classes=2, homophily=1.5)
