"""Shared fixtures: deterministic seeds, small graphs, and the staged-data gate."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from gdl_graphs.data import data_root, require_data


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for modules of tiny tensors: faster, and immune to OpenMP stalls on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_graph(num_nodes: int, num_edges: int, channels: int = 8, edge_dim: int | None = None,
                 seed: int = 0, dtype=torch.float32) -> Data:
    """A random directed multigraph (self-loops and duplicate edges allowed)."""
    g = torch.Generator().manual_seed(seed)
    data = Data(x=torch.randn(num_nodes, channels, generator=g, dtype=dtype),
                edge_index=torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g))
    if edge_dim is not None:
        data.edge_attr = torch.randn(num_edges, edge_dim, generator=g, dtype=dtype)
    return data


def random_batch(sizes=(1, 5, 9), channels: int = 8, seed: int = 0, **kw) -> Batch:
    return Batch.from_data_list([random_graph(n, 3 * n, channels, seed=seed + i, **kw)
                                 for i, n in enumerate(sizes)])


@pytest.fixture
def staged_root():
    """The data root holding staged raw files; skip (or fail under GDL_REQUIRE_DATA=1) when it is empty."""
    root = data_root()
    if not (root.is_dir() and any(root.iterdir())):
        message = f"no staged data under {root} (set $GDL_DATA or copy ../shared/data there)"
        if require_data():
            pytest.fail(message)
        pytest.skip(message)
    return root
