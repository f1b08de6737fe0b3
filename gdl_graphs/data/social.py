"""Social and biological graph benchmarks: TU datasets (PyG ``TUDataset``) with the Errica et al. (2020) 10-fold
protocol, Planetoid citation graphs (PyG ``Planetoid``, public split) and Zachary's karate club (networkx)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch_geometric.data import Data

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.checksums import build_dataset, known_files, verify_files
from gdl_graphs.data.splits import stratified_folds

CONSTANT_FEATURE_TU = ("REDDIT-BINARY", "REDDIT-MULTI-5K", "REDDIT-MULTI-12K")
"""Featureless TU datasets that GIN (Xu et al. 2019) gives a constant node feature; the others get one-hot degrees."""


def max_degree(dataset) -> int:
    """Largest node out-degree (``edge_index[0]`` counts, as PyG's ``OneHotDegree``) over all graphs of an
    in-memory dataset, computed on the collated storage without materialising each graph."""
    src = dataset._data.edge_index[0]
    if src.numel() == 0:
        return 0
    counts = dataset.slices["edge_index"].diff()
    graph = torch.repeat_interleave(torch.arange(len(counts)), counts)
    keys = graph * (int(src.max()) + 1) + src
    return int(torch.unique(keys, return_counts=True)[1].max())


def load_tu(root: Path, name: str, degree_features: str | None = None, num_folds: int = 10,
            val_fraction: float = 0.1, seed: int = 0, verify: bool = True) -> Benchmark:
    """A TU dataset (``<root>/<name>/raw/<name>_A.txt`` ...) with stratified ``num_folds``-fold CV and an inner
    stratified validation hold-out (Errica et al. 2020); ``train/val/test`` hold fold 0, ``Benchmark.fold(i)`` the
    others.

    Datasets without node features get ``degree_features``: ``"onehot"`` (one-hot degree up to the dataset's
    maximum degree, as GIN) or ``"constant"`` (a single 1, as GIN for REDDIT); default by dataset as GIN did.
    """
    from torch_geometric.datasets import TUDataset
    from torch_geometric.transforms import Constant, OneHotDegree

    processed = root / name / "processed" / "data.pt"
    if verify and not processed.is_file():
        verify_files(root, known_files(f"{name}/raw"))
    dataset = build_dataset(name, lambda: TUDataset(str(root), name))
    if len(dataset) == 0:
        raise ValueError(f"{name}: the TU files under {root / name / 'raw'} hold no graphs")
    info = {"split": f"stratified {num_folds}-fold CV, inner {val_fraction:.0%} stratified validation "
                     f"(Errica et al. 2020)", "seed": seed}
    if dataset.num_node_features == 0:
        mode = degree_features or ("constant" if name.upper() in CONSTANT_FEATURE_TU else "onehot")
        if mode == "onehot":
            dataset.transform = OneHotDegree(max_degree(dataset))
        elif mode == "constant":
            dataset.transform = Constant(1.0)
        else:
            raise ValueError(f"{name}: degree_features must be 'onehot' or 'constant', got {mode!r}")
        info["node_features"] = mode
    elif degree_features is not None:
        raise ValueError(f"{name} has node features; degree_features applies only to featureless TU datasets")
    y = dataset._data.y
    folds = stratified_folds(y, num_folds=num_folds, val_fraction=val_fraction, seed=seed)
    train, val, test = folds[0]
    return Benchmark(name=name, task="graph_classification", metric="accuracy", train=dataset[train],
                     val=dataset[val], test=dataset[test], num_features=dataset.num_features,
                     num_targets=int(y.max()) + 1, num_edge_features=dataset.num_edge_features, folds=folds,
                     dataset=dataset, info=info | {"fold": 0})


def load_planetoid(root: Path, name: str, normalize_features: bool = True, verify: bool = True) -> Benchmark:
    """Cora / CiteSeer / PubMed with the public Planetoid split (20 labels per class, 500 val, 1000 test).

    Features are row-normalised (``normalize_features=True``) as in GCN / GAT. ``train``, ``val`` and ``test`` are
    all the one graph; use its ``train_mask`` / ``val_mask`` / ``test_mask``.
    """
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    processed = root / name / "processed" / "data.pt"
    if verify and not processed.is_file():
        verify_files(root, known_files(f"{name}/raw"))
    transform = NormalizeFeatures() if normalize_features else None
    dataset = build_dataset(name, lambda: Planetoid(str(root), name, split="public", transform=transform))
    data = dataset[0]
    return Benchmark(name=name, task="node_classification", metric="accuracy", train=data, val=data, test=data,
                     num_features=dataset.num_features, num_targets=dataset.num_classes, dataset=dataset,
                     info={"split": "public (Yang et al. 2016)", "normalize_features": normalize_features})


def load_karate(root: Path | None = None, val_fraction: float = 0.25, seed: int = 0) -> Benchmark:
    """Zachary's karate club from networkx: 34 members, 78 friendships, 2 classes (the club each member joined).

    Features are one-hot node identities (as in GCN's karate demo). There is no official split: the two leaders
    (nodes 0 and 33) are the labelled training nodes; the rest is split stratified into ``val_fraction``
    validation and test with ``seed``. ``root`` is unused (networkx ships the graph).
    """
    import networkx as nx
    from sklearn.model_selection import train_test_split
    from torch_geometric.utils import to_undirected

    graph = nx.karate_club_graph()
    n = graph.number_of_nodes()
    clubs = sorted({graph.nodes[v]["club"] for v in graph})
    y = torch.tensor([clubs.index(graph.nodes[v]["club"]) for v in range(n)])
    edge_index = to_undirected(torch.tensor(list(graph.edges), dtype=torch.long).t(), num_nodes=n)
    train = torch.tensor([0, n - 1])
    rest = torch.tensor([v for v in range(n) if v not in (0, n - 1)])
    val, test = train_test_split(rest.numpy(), test_size=1 - val_fraction, stratify=y[rest].numpy(),
                                 random_state=seed)
    masks = {}
    for key, idx in (("train_mask", train), ("val_mask", torch.from_numpy(val)), ("test_mask", torch.from_numpy(test))):
        masks[key] = torch.zeros(n, dtype=torch.bool)
        masks[key][idx] = True
    data = Data(x=torch.eye(n), edge_index=edge_index, y=y, **masks)
    return Benchmark(name="KarateClub", task="node_classification", metric="accuracy", train=data, val=data,
                     test=data, num_features=n, num_targets=len(clubs), dataset=[data],
                     info={"split": "leaders 0 and 33 train; stratified val/test", "classes": clubs, "seed": seed})


__all__ = ["load_tu", "load_planetoid", "load_karate", "max_degree", "CONSTANT_FEATURE_TU"]
