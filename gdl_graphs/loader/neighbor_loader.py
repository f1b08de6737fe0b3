"""``NeighborLoader``: PyG's neighbour-sampling mini-batch loader, without pyg-lib or torch-sparse.

A subclass of PyG's :class:`~torch_geometric.loader.NeighborLoader` handed its sampler, so batches are assembled by
PyG's own code, ``isinstance`` checks in PyG code (e.g. ``BasicGNN.inference``) pass, and batches carry exactly the
fields PyG's loader yields (``n_id``, ``e_id``, ``batch_size``,
``input_id``, ``seed_time``, ``batch``, ``num_sampled_nodes``, ``num_sampled_edges``, local ``edge_index`` and every
node/edge attribute sliced). Sampling runs on :class:`~gdl_graphs.loader.neighbor_sampler.CSRNeighborSampler`
(pure torch) or, when pyg-lib is installed, on PyG's own pyg-lib sampler: :attr:`NeighborLoader.backend` says which.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable

import torch
import torch_geometric.loader
import torch_geometric.typing
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler import NeighborSampler as PyGNeighborSampler
from torch_geometric.sampler.base import SubgraphType

from gdl_graphs.loader.neighbor_sampler import CSRNeighborSampler

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "pyg-lib")


def pyg_lib_available() -> bool:
    """Whether pyg-lib's compiled sampler can be used."""
    return bool(torch_geometric.typing.WITH_PYG_LIB)


def _check_input_nodes(input_nodes, num_nodes: int) -> None:
    if input_nodes is None:
        return
    if isinstance(input_nodes, (str, tuple)):
        raise TypeError("NeighborLoader: 'input_nodes' as a node type is for heterogeneous graphs, which this loader "
                        "does not support; pass a bool mask or an index tensor")
    nodes = torch.as_tensor(input_nodes)
    if nodes.dtype == torch.bool:
        if nodes.dim() != 1 or nodes.numel() != num_nodes:
            raise ValueError(f"NeighborLoader: 'input_nodes' mask has shape {tuple(nodes.shape)}, expected "
                             f"({num_nodes},)")
    elif nodes.is_floating_point() or nodes.is_complex() or nodes.dim() != 1:
        raise TypeError(f"NeighborLoader: 'input_nodes' must be a 1-d bool mask or integer index, got "
                        f"{nodes.dtype} of shape {tuple(nodes.shape)}")
    elif nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(f"NeighborLoader: 'input_nodes' holds indices outside [0, {num_nodes})")


class NeighborLoader(torch_geometric.loader.NeighborLoader):
    r"""Mini-batches of sampled multi-hop neighbourhoods, a drop-in for PyG's
    :class:`~torch_geometric.loader.NeighborLoader` on homogeneous :class:`~torch_geometric.data.Data` graphs.

    Hop :math:`h` samples up to ``num_neighbors[h]`` in-neighbours (sources of edges :math:`j \to i`) of every node
    first reached in hop :math:`h - 1` (hop 0: the seeds), uniformly, without replacement unless ``replace``. The
    first ``batch.batch_size`` nodes of a batch are its seeds, so ``model(batch.x, batch.edge_index)
    [:batch.batch_size]`` are the seeds' outputs.

    Args:
        data: the graph; ``edge_index`` in PyG's source-to-target orientation.
        num_neighbors: fan-out per hop (``-1``: all neighbours).
        input_nodes: seeds as a bool mask or index tensor (``None``: all nodes).
        replace: sample with replacement.
        subgraph_type: ``"directional"`` (the sampled edges), ``"bidirectional"`` (plus their reverses) or
            ``"induced"`` (every edge between the sampled nodes).
        directed: PyG's deprecated spelling; ``directed=False`` means ``subgraph_type="induced"`` (with PyG's
            deprecation warning).
        backend: ``"auto"`` (pyg-lib when installed and it supports the options, else ``"torch"``), ``"torch"`` or
            ``"pyg-lib"``.
        transform, transform_sampler_output, filter_per_worker: as in PyG.
        **kwargs: :class:`torch.utils.data.DataLoader` arguments (``batch_size``, ``shuffle``, ``num_workers``,
            ``drop_last``, ``generator``...). A ``generator`` seeds both the shuffling and the torch backend's
            sampling, so a seeded generator gives the same batches run to run (also with workers).

    Refused, with an error naming the argument: heterogeneous or remote graphs, ``disjoint=True``, temporal
    (``time_attr``, ``input_time``, ``temporal_strategy``) and weighted (``weight_attr``) sampling, a custom
    ``neighbor_sampler``, and ``adj_t`` (SparseTensor) graphs.
    """

    def __init__(self, data: Data, num_neighbors: list[int], input_nodes: Tensor | None = None,
                 input_time: Tensor | None = None, replace: bool = False,
                 subgraph_type: SubgraphType | str = "directional", disjoint: bool = False,
                 temporal_strategy: str = "uniform", time_attr: str | None = None, weight_attr: str | None = None,
                 transform: Callable | None = None, transform_sampler_output: Callable | None = None,
                 is_sorted: bool = False, filter_per_worker: bool | None = None, neighbor_sampler=None,
                 directed: bool = True, backend: str = "auto", **kwargs):
        unsupported = {"disjoint": disjoint, "input_time": input_time is not None,
                       "temporal_strategy": temporal_strategy != "uniform", "time_attr": time_attr is not None,
                       "weight_attr": weight_attr is not None, "neighbor_sampler": neighbor_sampler is not None}
        for name, used in unsupported.items():
            if used:
                raise ValueError(f"NeighborLoader: {name!r} is not supported by gdl_graphs' sampler (disjoint, "
                                 f"temporal and weighted sampling need PyG's loader with pyg-lib)")
        if not isinstance(data, Data):
            raise TypeError(f"NeighborLoader: 'data' must be a homogeneous torch_geometric.data.Data graph, got "
                            f"{type(data).__name__}")
        if data.edge_index is None:
            raise ValueError("NeighborLoader: 'data' has no 'edge_index' (SparseTensor 'adj_t' graphs need "
                             "torch-sparse)")
        if isinstance(num_neighbors, dict) or not all(isinstance(k, int) for k in num_neighbors):
            raise TypeError(f"NeighborLoader: 'num_neighbors' must be a list of ints, got {num_neighbors!r}")
        if backend not in BACKENDS:
            raise ValueError(f"NeighborLoader: 'backend' must be one of {BACKENDS}, got {backend!r}")
        if not directed:
            warnings.warn("NeighborLoader: 'directed=False' is PyG's deprecated spelling of "
                          "subgraph_type='induced'", DeprecationWarning, stacklevel=2)
            subgraph_type = SubgraphType.induced
        subgraph_type = SubgraphType(subgraph_type)
        _check_input_nodes(input_nodes, data.num_nodes)

        # pyg-lib has no induced-subgraph sampling (PyG sends that to torch-sparse)
        pyg_lib_fits = pyg_lib_available() and subgraph_type != SubgraphType.induced
        if backend == "pyg-lib" and not pyg_lib_fits:
            raise ImportError("NeighborLoader: backend='pyg-lib' needs pyg-lib installed" if not pyg_lib_available()
                              else "NeighborLoader: backend='pyg-lib' does not support subgraph_type='induced'")
        self.backend = "pyg-lib" if backend == "pyg-lib" or (backend == "auto" and pyg_lib_fits) else "torch"
        share_memory = kwargs.get("num_workers", 0) > 0
        if self.backend == "pyg-lib":
            sampler = PyGNeighborSampler(data, num_neighbors=num_neighbors, replace=replace,
                                         subgraph_type=subgraph_type, is_sorted=is_sorted, share_memory=share_memory)
        else:
            sampler = CSRNeighborSampler(data, num_neighbors, replace=replace, subgraph_type=subgraph_type,
                                         generator=kwargs.get("generator"), share_memory=share_memory)
        log.info("NeighborLoader: sampling with the %s backend", self.backend)
        super().__init__(data, num_neighbors, input_nodes=input_nodes, transform=transform,
                         transform_sampler_output=transform_sampler_output, filter_per_worker=filter_per_worker,
                         neighbor_sampler=sampler, **kwargs)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(backend={self.backend!r})"
