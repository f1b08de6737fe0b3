"""OGB node-property benchmarks in OGB's official layout: ogbn-arxiv and ogbn-products (Hu et al. 2020).

The folder is what OGB's download unpacks under the data root (``<root>/ogbn_arxiv/``, ``<root>/ogbn_products/``)::

    RELEASE_v1.txt
    raw/edge.csv.gz  raw/node-feat.csv.gz  raw/node-label.csv.gz  raw/num-node-list.csv.gz  raw/num-edge-list.csv.gz
    raw/node_year.csv.gz                                  (arxiv only)
    split/time/{train,valid,test}.csv.gz                  (arxiv; products: split/sales_ranking/)

all headerless gzip CSVs. OGB's own :class:`~ogb.nodeproppred.PygNodePropPredDataset` reads them (arxiv keeps its
directed citation edges, products gets both directions, as OGB's ``master.csv`` says), the split is OGB's, and the
metric accuracy through ``ogb.nodeproppred.Evaluator``. Processing goes through the checked cache of
:mod:`~gdl_graphs.data.cache`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.cache import allow_pyg_classes, open_cached, write_record
from gdl_graphs.data.checksums import build_dataset

OGBN = {
    # name: (split folder, additional node files, classes, official split sizes)
    "ogbn-arxiv": ("time", ("node_year",), 40, (90_941, 29_799, 48_603)),
    "ogbn-products": ("sales_ranking", (), 47, (196_615, 39_323, 2_213_091)),
}
RAW = ("edge", "node-feat", "node-label", "num-node-list", "num-edge-list")
PROCESSED = "geometric_data_processed.pt"


def ogbn_folder(name: str) -> str:
    """OGB's folder name for ``name`` (``ogbn-arxiv`` -> ``ogbn_arxiv``)."""
    return name.replace("-", "_")


def ogbn_raw_files(name: str) -> list[str]:
    """The official files (relative to the data root) a dataset is built from."""
    split, extra, _, _ = OGBN[name]
    folder = ogbn_folder(name)
    return ([f"{folder}/RELEASE_v1.txt"] + [f"{folder}/raw/{f}.csv.gz" for f in (*RAW, *extra)]
            + [f"{folder}/split/{split}/{part}.csv.gz" for part in ("train", "valid", "test")])


def _open(root: Path, name: str, force: bool):
    from ogb.nodeproppred import PygNodePropPredDataset

    processed = root / ogbn_folder(name) / "processed"
    if force and processed.is_dir():
        shutil.rmtree(processed)
    allow_pyg_classes()     # OGB's plain torch.load of its processed file
    return PygNodePropPredDataset(name, root=str(root))


def load_ogbn(root: Path, name: str, to_undirected: bool = False, verify: bool = True) -> Benchmark:
    """ogbn-arxiv / ogbn-products with OGB's split (``train_mask`` / ``val_mask`` / ``test_mask`` on the one graph)
    and ``Evaluator(name)`` (accuracy; feed it ``y_true`` ``[n, 1]`` and ``y_pred = out.argmax(-1, keepdim=True)``).

    ``to_undirected=True`` adds the reverse edges (OGB's arxiv examples do this before GCN / SAGE); the default is
    the official graph. Without the folder, OGB downloads it (online; products is 1.4 GB and OGB asks first).
    """
    from ogb.nodeproppred import Evaluator
    from torch_geometric.utils import to_undirected as symmetrize

    if name not in OGBN:
        raise KeyError(f"{name!r} is not one of {sorted(OGBN)}")
    split_name, _, classes, official = OGBN[name]
    folder = root / ogbn_folder(name)
    raw = ogbn_raw_files(name)
    hint = (f"Copy OGB's unpacked {ogbn_folder(name)}/ folder there (`gdl-bench data prepare {name} --from DIR`) or "
            f"load it online (OGB downloads it).")
    if folder.is_dir():
        if not (folder / "RELEASE_v1.txt").is_file():   # OGB would stop and ask on stdin whether to delete it
            raise FileNotFoundError(f"{name}: {folder / 'RELEASE_v1.txt'} is missing, so {folder} is not a complete "
                                    f"OGB release; {hint}")
        dataset = open_cached(name, root, raw, folder / "processed", [PROCESSED], lambda f: _open(root, name, f),
                              verify=verify, hint=hint)
    else:
        dataset = build_dataset(name, lambda: _open(root, name, False))
        write_record(folder / "processed", root, raw, [PROCESSED])
    split = dataset.get_idx_split()
    data = dataset[0]
    if to_undirected:
        data.edge_index = symmetrize(data.edge_index, num_nodes=data.num_nodes)
    for key, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        mask = torch.zeros(data.num_nodes, dtype=torch.bool)
        mask[split[part]] = True
        setattr(data, key, mask)
    return Benchmark(name=name, task="node_classification", metric="accuracy", train=data, val=data, test=data,
                     num_features=data.num_node_features, num_targets=classes, dataset=dataset,
                     evaluator=Evaluator(name),
                     info={"split": f"official OGB {split_name} split", "official_split_sizes": official,
                           "to_undirected": to_undirected})


__all__ = ["load_ogbn", "ogbn_raw_files", "ogbn_folder", "OGBN"]
