"""Graph-classification datasets in the text format of the GIN repository (Xu et al. 2019, ``weihua916/powerful-gnns``,
``dataset/NAME/NAME.txt`` with the split files ``dataset/NAME/10fold_idx/{train,test}_idx-K.txt``), converted to
exactly the :class:`~torch_geometric.data.Data` that PyG's :class:`~torch_geometric.datasets.TUDataset` gives.

The format, as the repository's ``util.load_data`` reads it::

    G                      number of graphs
    n l                    per graph: its number of nodes and its label
    t d v_1 ... v_d [a...] per node (n lines): tag, degree, d neighbour indices (0-based, within the graph),
                           optionally continuous attributes after the neighbours

Edges are undirected (a pair listed from either end is one edge). The conversion follows ``read_tu_data``:
``edge_index`` holds both directions, self-loops removed, duplicates merged, sorted (coalesced); labels become
``0 .. C-1`` in sorted order of the file's label values; node tags become one-hot ``x`` (``tag - min``, width
``max - min + 1``) unless every node has the same tag (the repository writes tag 0 for datasets without node labels,
e.g. the social datasets), and attributes come first in ``x`` and are kept only with ``use_node_attr=True``. The
ten folds of ``10fold_idx`` (0-based graph indices; the test parts partition the dataset) are stored with the data.

Staged layout (``TU_gin_format/NAME.zip``, members ``NAME/NAME.txt`` and ``NAME/10fold_idx/*``; ``.DS_Store`` and
``__MACOSX/`` entries are ignored), or the same files unpacked in ``TU_gin_format/NAME/``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import TUDataset
from torch_geometric.io import fs

GIN_DIR = "TU_gin_format"
"""Folder of GIN-format datasets under the data root."""

NUM_FOLDS = 10
HINT = ("Stage the GIN repository's files as TU_gin_format/NAME.zip (members NAME/NAME.txt and NAME/10fold_idx/*) "
        "under the data root, e.g. `gdl-bench data prepare NAME --from DIR`; they come from "
        "https://github.com/weihua916/powerful-gnns (dataset.zip).")


def _is_clutter(member: str) -> bool:
    parts = member.split("/")
    return "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


class _Source:
    """The dataset's files, from ``NAME.zip`` or the unpacked folder ``NAME/``; ``open(rel)`` opens ``NAME/rel``
    as text."""

    def __init__(self, folder: Path, name: str):
        self.name = name
        self.zip_path, self.dir_path = folder / f"{name}.zip", folder / name
        self.members: dict[str, str] = {}
        if self.zip_path.is_file():
            with zipfile.ZipFile(self.zip_path) as archive:
                for member in archive.namelist():
                    if _is_clutter(member) or member.endswith("/"):
                        continue
                    match = re.search(rf"(?:^|/){re.escape(name)}/(.+)$", member)
                    if match:
                        self.members[match.group(1)] = member
        elif (self.dir_path / f"{name}.txt").is_file():
            for path in self.dir_path.rglob("*"):
                rel = path.relative_to(self.dir_path).as_posix()
                if path.is_file() and not _is_clutter(rel) and not rel.startswith("processed/"):
                    self.members[rel] = rel

    @property
    def location(self) -> Path:
        return self.zip_path if self.zip_path.is_file() else self.dir_path

    def has(self, rel: str) -> bool:
        return rel in self.members

    def open(self, rel: str) -> io.TextIOBase:
        if rel not in self.members:
            raise FileNotFoundError(f"{self.name}: {self.location} holds no {self.name}/{rel}. {HINT}")
        if self.zip_path.is_file():
            archive = zipfile.ZipFile(self.zip_path)
            return io.TextIOWrapper(archive.open(self.members[rel]), encoding="utf-8")
        return open(self.dir_path / rel, encoding="utf-8")


def gin_raw_files(root: Path, name: str) -> list[str]:
    """The raw files (relative to the data root) a GIN-format dataset is read from: its zip, or the unpacked text
    and split files."""
    source = _Source(Path(root) / GIN_DIR, name)
    if source.zip_path.is_file() or not source.members:
        return [f"{GIN_DIR}/{name}.zip"]
    return sorted(f"{GIN_DIR}/{name}/{rel}" for rel in source.members)


def _lines(handle) -> Iterator[tuple[int, list[str]]]:
    for number, line in enumerate(handle, start=1):
        yield number, line.split()


def read_gin_text(handle, path: str, progress: bool = True) -> tuple[Data, dict, dict]:
    """Parse one GIN text file into PyG's collated TU layout: ``(data, slices, sizes)`` as ``read_tu_data``
    returns them. Raises :class:`ValueError` naming ``path`` and the line on malformed input."""
    from tqdm import tqdm

    lines = _lines(handle)

    def next_line(what: str) -> tuple[int, list[str]]:
        try:
            return next(lines)
        except StopIteration:
            raise ValueError(f"{path}: the file ends early, expected {what}") from None

    number, row = next_line("the number of graphs")
    if len(row) != 1 or not row[0].isdigit():
        raise ValueError(f"{path}:{number}: the first line must hold the number of graphs, found {row}")
    num_graphs = int(row[0])
    edges, tags, attrs, labels, node_counts, edge_counts = [], [], [], [], [], []
    bar = tqdm(total=num_graphs, desc=f"reading {Path(path).name}", unit="graph", disable=not progress,
               mininterval=1.0)
    for g in range(num_graphs):
        number, row = next_line(f"graph {g} of {num_graphs}")
        try:
            n, label = (int(v) for v in row)
        except ValueError:
            raise ValueError(f"{path}:{number}: expected 'num_nodes label' for graph {g}, found {row}") from None
        graph_tags, graph_attrs, src, dst = np.empty(n, dtype=np.int64), [], [], []
        for j in range(n):
            number, row = next_line(f"node {j} of graph {g}")
            try:
                degree = int(row[1])
                graph_tags[j] = int(row[0])
                neighbours = np.asarray(row[2:2 + degree], dtype=np.int64)
                extra = row[2 + degree:]
                if extra:
                    graph_attrs.append(np.asarray(extra, dtype=np.float32))
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{number}: expected 'tag degree neighbours... [attributes]' for node {j} "
                                 f"of graph {g}, found {' '.join(row[:8])}{' ...' if len(row) > 8 else ''}") from None
            if len(neighbours) != degree or (degree and (neighbours.min() < 0 or neighbours.max() >= n)):
                raise ValueError(f"{path}:{number}: node {j} of graph {g} (with {n} nodes) lists {len(neighbours)} "
                                 f"neighbours for degree {degree}, or one outside 0..{n - 1}")
            src.append(np.full(degree, j, dtype=np.int64))
            dst.append(neighbours)
        if graph_attrs and len(graph_attrs) != n:
            raise ValueError(f"{path}: graph {g}: {len(graph_attrs)} of its {n} nodes have attributes, not all")
        src, dst = (np.concatenate(a) if a else np.empty(0, dtype=np.int64) for a in (src, dst))
        rows, cols = np.concatenate([src, dst]), np.concatenate([dst, src])  # either end's listing is the edge
        keep = rows != cols                                                    # no self-loops, as read_tu_data
        keys = np.unique(rows[keep] * n + cols[keep])
        edges.append(np.stack([keys // n, keys % n]))              # sorted by (row, col), as coalesce
        tags.append(graph_tags)
        if graph_attrs:
            attrs.append(np.stack(graph_attrs))
        labels.append(label)
        node_counts.append(n)
        edge_counts.append(len(keys))
        bar.update()
    bar.close()
    rest = next(lines, None)
    while rest is not None and not rest[1]:
        rest = next(lines, None)
    if rest is not None:
        raise ValueError(f"{path}:{rest[0]}: unexpected content after the {num_graphs} graphs declared on line 1")
    if attrs and len(attrs) != num_graphs:
        raise ValueError(f"{path}: {len(attrs)} of the {num_graphs} graphs have node attributes, not all")

    data = Data(edge_index=torch.from_numpy(np.concatenate(edges, axis=1)))
    _, y = torch.unique(torch.tensor(labels), sorted=True, return_inverse=True)
    data.y = y
    all_tags = torch.from_numpy(np.concatenate(tags))
    node_label = (torch.nn.functional.one_hot(all_tags - all_tags.min()).float() if all_tags.unique().numel() > 1
                  else torch.empty(len(all_tags), 0))
    node_attr = torch.from_numpy(np.concatenate(attrs)) if attrs else torch.empty(len(all_tags), 0)
    node_slice = torch.from_numpy(np.concatenate([[0], np.cumsum(node_counts)]))
    slices = {"edge_index": torch.from_numpy(np.concatenate([[0], np.cumsum(edge_counts)])),
              "y": torch.arange(num_graphs + 1)}
    if node_label.numel() or node_attr.numel():
        data.x = torch.cat([node_attr, node_label], dim=-1)
        slices["x"] = node_slice
    else:  # as read_tu_data for datasets without node features
        data._num_nodes = list(node_counts)
        data.num_nodes = int(node_slice[-1])
    sizes = {"num_node_attributes": node_attr.size(-1), "num_node_labels": node_label.size(-1),
             "num_edge_attributes": 0, "num_edge_labels": 0}
    return data, slices, sizes


def read_gin_folds(source: _Source, num_graphs: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """The repository's ``10fold_idx`` splits as ``(train, test)`` index tensors, or ``None`` if absent."""
    names = [(f"10fold_idx/train_idx-{k}.txt", f"10fold_idx/test_idx-{k}.txt") for k in range(1, NUM_FOLDS + 1)]
    present = [source.has(rel) for pair in names for rel in pair]
    if not any(present):
        return None
    if not all(present):
        missing = [rel for pair in names for rel in pair if not source.has(rel)]
        raise FileNotFoundError(f"{source.name}: {source.location} lacks the split files {missing}")
    folds = []
    for train_rel, test_rel in names:
        parts = []
        for rel in (train_rel, test_rel):
            with source.open(rel) as handle:
                try:
                    idx = torch.tensor([int(v) for v in handle.read().split()], dtype=torch.long)
                except ValueError:
                    raise ValueError(f"{source.location}: {rel} must hold one graph index per line") from None
            if idx.numel() and (idx.min() < 0 or idx.max() >= num_graphs):
                raise ValueError(f"{source.location}: {rel} holds indices outside 0..{num_graphs - 1}")
            parts.append(idx)
        train, test = parts
        if torch.cat([train, test]).unique().numel() != num_graphs or train.numel() + test.numel() != num_graphs:
            raise ValueError(f"{source.location}: {train_rel} and {test_rel} do not partition the {num_graphs} graphs")
        folds.append((train.sort().values, test.sort().values))
    tests = torch.cat([f[1] for f in folds])
    if tests.unique().numel() != num_graphs or tests.numel() != num_graphs:
        raise ValueError(f"{source.location}: the ten test_idx files do not partition the {num_graphs} graphs")
    return folds


class GINFormatTUDataset(TUDataset):
    """A dataset in the GIN repository's text format as a :class:`~torch_geometric.datasets.TUDataset` (same
    ``Data`` fields, ``num_node_labels`` / ``num_node_attributes``, ``use_node_attr``), read from
    ``<root>/TU_gin_format/<name>.zip``; processed files in ``<root>/TU_gin_format/<name>/processed/``.

    :attr:`gin_folds` holds the repository's ten ``(train, test)`` folds (``None`` if the files lack them).
    """

    def __init__(self, root: str | Path, name: str, use_node_attr: bool = False, transform=None,
                 force_reload: bool = False, progress: bool = True):
        self.progress = progress
        super().__init__(str(Path(root) / GIN_DIR), name, transform=transform, use_node_attr=use_node_attr,
                         force_reload=force_reload)
        self.gin_folds = fs.torch_load(self.processed_paths[1])["folds"]

    @property
    def raw_dir(self) -> str:
        return self.root

    @property
    def raw_file_names(self) -> list[str]:
        source = _Source(Path(self.root), self.name)
        return [f"{self.name}.zip"] if not source.members or source.zip_path.is_file() else [f"{self.name}/{self.name}.txt"]

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "folds.pt"]

    def download(self):
        raise FileNotFoundError(f"{self.name}: {Path(self.root) / (self.name + '.zip')} is missing. {HINT}")

    def process(self):
        source = _Source(Path(self.root), self.name)
        with source.open(f"{self.name}.txt") as handle:
            data, slices, sizes = read_gin_text(handle, f"{source.location}:{self.name}/{self.name}.txt",
                                                progress=self.progress)
        folds = read_gin_folds(source, len(slices["y"]) - 1)
        fs.torch_save((data.to_dict(), slices, sizes, data.__class__), self.processed_paths[0])
        fs.torch_save({"folds": folds}, self.processed_paths[1])

    def __repr__(self) -> str:
        return f"{self.name}({len(self)}, GIN format)"


__all__ = ["GINFormatTUDataset", "read_gin_text", "read_gin_folds", "gin_raw_files", "GIN_DIR"]
