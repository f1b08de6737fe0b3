"""Social and biological graph benchmarks: TU datasets (PyG ``TUDataset``) with the Errica et al. (2020) 10-fold
protocol, Planetoid citation graphs (PyG ``Planetoid``, public split) and Zachary's karate club (networkx)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch_geometric.data import Data

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.cache import open_cached, write_record
from gdl_graphs.data.checksums import build_dataset, known_files
from gdl_graphs.data.root import check_dataset_name
from gdl_graphs.data.splits import holdout, random_holdouts, stratified_folds

CONSTANT_FEATURE_TU = ("REDDIT-BINARY", "REDDIT-MULTI-5K", "REDDIT-MULTI-12K")
"""Featureless TU datasets that GIN (Xu et al. 2019) gives a constant node feature; the others get one-hot degrees."""

PLANETOID_FILES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
"""Raw files of a Planetoid dataset: ``ind.<name>.<kind>``."""


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


TU_REQUIRED = ("A", "graph_indicator", "graph_labels")
"""TU files every graph-classification dataset needs (``NAME_<kind>.txt``)."""

SPLITS = ("errica", "gin", "random")
"""Split rules of a TU dataset: ``errica`` (stratified CV with an inner hold-out), ``gin`` (the GIN repository's
folds, GIN-format data only), ``random`` (repeated random hold-outs, see :func:`computed_folds`)."""


def _check_split(name: str, split: str, fractions: list[float] | None) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {SPLITS}, got {split!r}")
    if fractions is not None and split != "random":
        raise ValueError(f"fractions: only split='random' takes fractions, got split={split!r}")


def computed_folds(y: torch.Tensor, split: str, num_folds: int, val_fraction: float, seed: int,
                   fractions: list[float] | None, stratified: bool) -> tuple[list, str]:
    """The ``(train, val, test)`` folds of the computed split rules and their description.

    ``errica``: stratified ``num_folds``-fold CV with a stratified inner ``val_fraction`` hold-out
    (``val_fraction=0``: validation = the test fold, Xu et al. 2019). ``random``: ``num_folds`` independent random
    ``fractions`` (train, val, test) splits, the k-th with seed ``seed + k``, ``stratified`` or not
    (:func:`~gdl_graphs.data.splits.random_holdouts`; the papers that average over random splits)."""
    if split == "random":
        fractions = fractions or [0.8, 0.1, 0.1]
        folds = random_holdouts(y, num_folds, fractions, stratified, seed)
        kind = "stratified" if stratified else "unstratified"
        return folds, (f"{num_folds} random {kind} {'/'.join(f'{f:g}' for f in fractions)} train/val/test splits "
                       f"(seeds {seed}..{seed + num_folds - 1})")
    folds = stratified_folds(y, num_folds=num_folds, val_fraction=val_fraction, seed=seed)
    return folds, (f"stratified {num_folds}-fold CV, inner {val_fraction:.0%} stratified validation (Errica et al. "
                   f"2020)" if val_fraction else f"stratified {num_folds}-fold CV, validation = the test fold "
                   f"(Xu et al. 2019)")


def tu_raw_files(root: Path, name: str) -> list[str]:
    """Raw files (relative to ``root``) a TU dataset is built from and that must all be present: its known staged
    files (see :data:`~gdl_graphs.data.checksums.KNOWN_SHA256`), the required ``A`` / ``graph_indicator`` /
    ``graph_labels`` files, and whatever else is in its ``raw/`` folder (PyG reads every ``NAME_*.txt``)."""
    raw_dir = root / name / "raw"
    present = [p.relative_to(root).as_posix() for p in raw_dir.iterdir() if p.is_file()] if raw_dir.is_dir() else []
    required = [f"{name}/raw/{name}_{kind}.txt" for kind in TU_REQUIRED]
    return sorted(set(known_files(f"{name}/raw")) | set(required) | set(present))


def _staged_or_download(what: str, root: Path, raw_files, processed_dir: Path, build, verify: bool, hint: str):
    """Open a PyG dataset through its checked cache when any of its raw files (``raw_files()``, relative to
    ``root``) is staged; with none staged, let PyG download the official files (online) and record what it got."""
    raw = raw_files()
    if any((root / rel).is_file() for rel in raw):
        return open_cached(what, root, raw, processed_dir, ["data.pt"], build, verify=verify, hint=hint)
    dataset = build_dataset(what, lambda: build(False))
    write_record(processed_dir, root, [rel for rel in raw_files() if (root / rel).is_file()], ["data.pt"])
    return dataset


def load_tu(root: Path, name: str, degree_features: str | None = None, num_folds: int = 10,
            val_fraction: float = 0.1, seed: int = 0, verify: bool = True, use_node_attr: bool = False,
            split: str = "errica", source: str = "auto", fractions: list[float] | None = None,
            stratified: bool = True) -> Benchmark:
    """A TU dataset (``<root>/<name>/raw/<name>_A.txt`` ...) with stratified ``num_folds``-fold CV and an inner
    stratified validation hold-out (Errica et al. 2020); ``train/val/test`` hold fold 0, ``Benchmark.fold(i)`` the
    others.

    Datasets without node features get ``degree_features``: ``"onehot"`` (one-hot degree up to the dataset's
    maximum degree, as GIN) or ``"constant"`` (a single 1, as GIN for REDDIT); default by dataset as GIN did.
    ``use_node_attr=True`` puts the continuous node attributes (``NAME_node_attributes.txt``) before the one-hot
    node labels in ``x``, as PyG's ``TUDataset(use_node_attr=True)``.

    ``source``: ``"tu"`` (the TU Dortmund files), ``"gin"`` (the GIN repository's text format, see
    :mod:`~gdl_graphs.data.gin_format`) or ``"auto"`` (TU files if staged, else a GIN-format copy, else PyG's
    download). ``split``: ``"errica"`` (above) or ``"gin"`` (the GIN repository's ``10fold_idx`` folds; GIN-format
    data only), see :func:`load_gin_format`, or ``"random"`` (``num_folds`` random ``fractions`` splits,
    ``stratified`` or not, as papers that average over random splits; see :func:`computed_folds`).
    """
    from torch_geometric.datasets import TUDataset

    from gdl_graphs.data.gin_format import GIN_DIR

    check_dataset_name(name)
    _check_split(name, split, fractions)
    if source not in ("auto", "tu", "gin"):
        raise ValueError(f"{name}: source must be 'auto', 'tu' or 'gin', got {source!r}")
    if source == "auto":
        staged_tu = (root / name / "raw").is_dir()
        staged_gin = (root / GIN_DIR / f"{name}.zip").is_file() or (root / GIN_DIR / name / f"{name}.txt").is_file()
        source = "gin" if staged_gin and not staged_tu else "tu"
    if source == "gin":
        return load_gin_format(root, name, degree_features=degree_features, val_fraction=val_fraction, seed=seed,
                               verify=verify, use_node_attr=use_node_attr, split=split, num_folds=num_folds,
                               fractions=fractions, stratified=stratified)
    if split == "gin":
        raise ValueError(f"{name}: split='gin' needs the GIN repository's fold files (source='gin'); the TU "
                         f"files have no official folds, use split='errica' or 'random'")
    dataset = _staged_or_download(
        name, root, lambda: tu_raw_files(root, name), root / name / "processed",
        lambda force: TUDataset(str(root), name, use_node_attr=use_node_attr, force_reload=force), verify,
        hint=f"Copy the TU Dortmund files of {name} into {root / name / 'raw'} "
             f"(`gdl-bench data prepare {name} --from DIR`) or load it online.")
    folds, described = computed_folds(_labels(dataset, name, root / name / "raw"), split, num_folds, val_fraction,
                                      seed, fractions, stratified)
    info = {"split": described, "seed": seed, "source": "tu"}
    return tu_benchmark(name, dataset, folds, info, degree_features)


def _labels(dataset, name: str, where) -> torch.Tensor:
    if len(dataset) == 0:
        raise ValueError(f"{name}: the files under {where} hold no graphs")
    y = dataset._data.y
    if y is None or y.numel() != len(dataset):
        raise ValueError(f"{name}: the files under {where} hold no graph labels ({name}_graph_labels.txt)")
    return y


def load_gin_format(root: Path, name: str, degree_features: str | None = None, val_fraction: float = 0.1,
                    seed: int = 0, verify: bool = True, use_node_attr: bool = False, split: str = "gin",
                    num_folds: int = 10, fractions: list[float] | None = None, stratified: bool = True) -> Benchmark:
    """Any dataset in the GIN repository's text format (``<root>/TU_gin_format/<name>.zip``), as PyG's
    ``TUDataset`` would give it (:class:`~gdl_graphs.data.gin_format.GINFormatTUDataset`), featureless datasets
    treated as in :func:`load_tu`.

    ``split="gin"`` (default): the repository's ten ``10fold_idx`` folds; the GIN paper had no validation set, so
    each fold's validation part is a stratified ``val_fraction`` of its training part (``seed``), taken out of
    training; ``val_fraction=0`` keeps the folds exactly (empty validation). ``split="errica"`` / ``"random"``: the
    computed splits of :func:`load_tu` (:func:`computed_folds`).
    """
    from gdl_graphs.data.gin_format import GIN_DIR, HINT, GINFormatTUDataset, gin_raw_files

    check_dataset_name(name)
    _check_split(name, split, fractions)
    raw = gin_raw_files(root, name)
    processed_dir = root / GIN_DIR / name / "processed"
    dataset = open_cached(name, root, raw, processed_dir, ["data.pt", "folds.pt"],
                          lambda force: GINFormatTUDataset(root, name, use_node_attr=use_node_attr,
                                                           force_reload=force),
                          verify=verify, hint=HINT)
    y = _labels(dataset, name, root / raw[0])
    info = {"source": f"GIN text format ({root / raw[0]})", "seed": seed}
    if split == "gin":
        if dataset.gin_folds is None:
            raise ValueError(f"{name}: {root / raw[0]} has no 10fold_idx split files; use split='errica'")
        folds = [(*holdout(train, y, val_fraction, seed), test) for train, test in dataset.gin_folds]
        info["split"] = (f"GIN repository 10fold_idx folds, validation a stratified {val_fraction:.0%} of each "
                         f"training part" if val_fraction else "GIN repository 10fold_idx folds, no validation set")
    else:
        folds, info["split"] = computed_folds(y, split, num_folds, val_fraction, seed, fractions, stratified)
    return tu_benchmark(name, dataset, folds, info, degree_features)


def tu_benchmark(name: str, dataset, folds, info: dict, degree_features: str | None = None) -> Benchmark:
    """The :class:`Benchmark` of a TU-style dataset with CV ``folds``: degree features for featureless datasets
    (GIN's choice per dataset unless ``degree_features`` says), fold 0 as ``train/val/test``."""
    from torch_geometric.transforms import Constant, OneHotDegree

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

    check_dataset_name(name)
    transform = NormalizeFeatures() if normalize_features else None
    raw = [f"{name}/raw/ind.{name.lower()}.{kind}" for kind in PLANETOID_FILES]
    dataset = _staged_or_download(
        name, root, lambda: raw, root / name / "processed",
        lambda force: Planetoid(str(root), name, split="public", transform=transform, force_reload=force), verify,
        hint=f"Copy the Planetoid files of {name} into {root / name / 'raw'} (`gdl-bench data prepare {name} "
             f"--from DIR`) or load it online.")
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


__all__ = ["load_tu", "load_gin_format", "load_planetoid", "load_karate", "tu_benchmark", "tu_raw_files",
           "max_degree", "CONSTANT_FEATURE_TU"]
