"""A PyG :class:`~torch_geometric.sampler.BaseSampler` that samples multi-hop neighbourhoods in pure torch.

The graph is converted once into the target-major CSR structure of :func:`gdl_graphs.nn.aggregate.adjacency` (in
PyG's terms, CSC: node ``i``'s row lists the sources of the edges ``j -> i``, the nodes whose messages ``i``
receives). Each hop calls :func:`~gdl_graphs.loader.sampling.sample_hop` on the nodes first reached in the previous
hop, which is PyG's (pyg-lib's) definition of neighbour sampling:

* the seeds come first in ``node``, in the order given; every node reached for the first time is appended, hop by
  hop, in the order of the sampled edges that reach it; nodes already in the subgraph are not expanded again;
* ``row`` holds the local index of the sampled neighbour (the message source), ``col`` that of the node it was
  sampled for (the target), so ``edge_index = [row, col]`` flows the way the original edges do;
* ``edge`` holds CSR positions; :attr:`edge_permutation` maps them to edge ids of ``data`` (as in PyG);
* ``num_sampled_nodes`` = ``[#seeds, #new nodes of hop 1, ...]``, ``num_sampled_edges`` = edges per hop.

``subgraph_type="bidirectional"`` then adds the reverse of every sampled edge (PyG's ``to_bidirectional``);
``"induced"`` (PyG's ``directed=False``) keeps the sampled nodes and returns every edge of ``data`` between them. As
in PyG, the per-hop counts are ``None`` for both (the edges are no longer ordered by hop).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import get_worker_info
from torch_geometric.data import Data
from torch_geometric.sampler import BaseSampler, EdgeSamplerInput, NegativeSampling, NodeSamplerInput, SamplerOutput
from torch_geometric.sampler.base import SubgraphType
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

from gdl_graphs.loader.sampling import sample_hop
from gdl_graphs.nn.aggregate import adjacency


class CSRNeighborSampler(BaseSampler):
    """Uniform multi-hop neighbour sampling of a homogeneous :class:`~torch_geometric.data.Data` graph.

    Args:
        data: the graph (``edge_index`` in PyG's source-to-target orientation; on any device, the CSR is built on
            the CPU and batches are sliced from ``data`` where it lives).
        num_neighbors: fan-out per hop; ``-1`` takes every neighbour.
        replace: sample with replacement.
        subgraph_type: ``"directional"``, ``"bidirectional"`` or ``"induced"`` (see the module docstring).
        generator: random source (torch's default generator when ``None``). In a DataLoader worker process it is
            reseeded once with the worker's seed, so workers draw different, reproducible streams.
        share_memory: move the CSR into shared memory (for DataLoader workers).
    """

    def __init__(self, data: Data, num_neighbors: list[int], replace: bool = False,
                 subgraph_type: SubgraphType | str = "directional", generator: torch.Generator | None = None,
                 share_memory: bool = False):
        self.num_nodes = int(data.num_nodes)
        adj = adjacency(data.edge_index.cpu(), self.num_nodes)  # sampling runs on the CPU, as PyG's
        self.rowptr, self.col, self.perm = adj.crow, adj.col, adj.perm
        if share_memory:
            for tensor in (self.rowptr, self.col, self.perm):
                tensor.share_memory_()
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.replace = bool(replace)
        self.subgraph_type = SubgraphType(subgraph_type)
        self.generator = generator
        self._seeded_worker: int | None = None
        self._local: Tensor | None = None  # global -> local node index scratch, -1 outside the current subgraph

    @property
    def edge_permutation(self) -> Tensor:
        return self.perm

    def sample_from_nodes(self, inputs: NodeSamplerInput, **kwargs) -> SamplerOutput:
        out = node_sample(inputs, self._sample)
        if self.subgraph_type == SubgraphType.bidirectional:
            out = out.to_bidirectional()
        return out

    def sample_from_edges(self, inputs: EdgeSamplerInput,
                          neg_sampling: NegativeSampling | None = None) -> SamplerOutput:
        """Neighbourhoods of both end nodes of each edge (for :class:`~torch_geometric.loader.LinkLoader`)."""
        out = edge_sample(inputs, self._sample, self.num_nodes, False, None, neg_sampling)
        if self.subgraph_type == SubgraphType.bidirectional:
            out = out.to_bidirectional()
        return out

    def _worker_generator(self) -> torch.Generator | None:
        worker = get_worker_info()
        if self.generator is not None and worker is not None and self._seeded_worker != worker.id:
            self.generator.manual_seed(worker.seed)
            self._seeded_worker = worker.id
        return self.generator

    def _sample(self, seed: Tensor, seed_time: Tensor | None = None) -> SamplerOutput:
        generator = self._worker_generator()
        if self._local is None:
            self._local = torch.full((self.num_nodes,), -1, dtype=torch.int64)
        local = self._local
        seed = seed.long()
        nodes = [seed]
        try:
            # a repeated seed keeps its own copy (and its own sampled edges); edges reach its first copy
            local[seed] = seed.numel()
            local.scatter_reduce_(0, seed, torch.arange(seed.numel()), "amin")
            frontier, frontier_local = seed, torch.arange(seed.numel())
            num_nodes = seed.numel()
            rows, cols, edges, num_sampled_edges = [], [], [], []
            for k in self.num_neighbors:
                owner, position = sample_hop(self.rowptr, frontier, k, self.replace, generator)
                neighbour = self.col.index_select(0, position).long()
                cols.append(frontier_local.index_select(0, owner))
                frontier = _first_seen_order(neighbour[local.index_select(0, neighbour) < 0])
                frontier_local = torch.arange(num_nodes, num_nodes + frontier.numel())
                local[frontier] = frontier_local
                num_nodes += frontier.numel()
                nodes.append(frontier)
                rows.append(local.index_select(0, neighbour))
                edges.append(position)
                num_sampled_edges.append(position.numel())
            node = torch.cat(nodes)
            if self.subgraph_type == SubgraphType.induced:
                return self._induced(node, local)
            return SamplerOutput(node=node, row=torch.cat(rows), col=torch.cat(cols), edge=torch.cat(edges),
                                 num_sampled_nodes=[n.numel() for n in nodes], num_sampled_edges=num_sampled_edges)
        finally:
            for part in nodes:
                local[part] = -1

    def _induced(self, node: Tensor, local: Tensor) -> SamplerOutput:
        """Every edge of the graph between the sampled nodes, grouped by target in ``node`` order."""
        owner, position = sample_hop(self.rowptr, node, -1, False)
        source = local.index_select(0, self.col.index_select(0, position).long())
        keep = source >= 0
        return SamplerOutput(node=node, row=source[keep], col=owner[keep], edge=position[keep])


def _first_seen_order(ids: Tensor) -> Tensor:
    """The distinct values of ``ids`` in order of first occurrence."""
    unique, inverse = torch.unique(ids, return_inverse=True)
    first = torch.full((unique.numel(),), ids.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(ids.numel()), "amin")
    return unique.index_select(0, first.argsort())
