r"""The symmetry check for coarsening: *equivariant up to a permutation of the outputs*.

A pooling layer maps a graph :math:`G = (\mathbf{X}, \mathbf{A})` to a smaller graph
:math:`G' = (\mathbf{X}', \mathbf{A}')` whose nodes (clusters) it numbers in its own way (by score, by the smallest
member, by output channel). Relabelling the input nodes by :math:`P` may renumber the clusters, so the property to
certify is

.. math::
    \exists\, Q \in S_{K}: \quad \mathbf{X}'(PG) = Q\,\mathbf{X}'(G), \qquad
    \mathbf{A}'(PG) = Q\,\mathbf{A}'(G)\,Q^\top,

per graph of a batch, with every other output transformed consistently (scores permute with :math:`Q`, indices of
kept input nodes are relabelled by :math:`P`, assignments of input nodes by both, losses are invariant). A readout
of :math:`\mathbf{X}'` is then :math:`S_n`-invariant (check that with
:func:`~gdl_graphs.testing.assert_permutation_invariant`).

:math:`Q` is found, not assumed: pooled nodes of the two runs are matched by a minimum-cost assignment
(``scipy.optimize.linear_sum_assignment``) on their features and the sorted rows and columns of their adjacency,
then features, adjacency and the other outputs are compared under that matching. Adjacency is compared densely per
pooled graph (duplicate edges summed), so the check is meant for test-sized graphs.

How to read the outputs is given by ``output_kinds`` (default: the layer's ``pooled_outputs`` attribute), one kind
per returned value:

``"x"``           pooled features, [M, C] (sparse, with ``"batch"``) or [B, K, C] (dense)
``"edge_index"``  pooled edges [2, E'] (sparse)
``"edge_attr"``   pooled edge features or weights [E'] / [E', D], or ``None`` (unit weights)
``"batch"``       graph of each pooled node [M], or ``None`` (one graph)
``"adj"``         dense pooled adjacency [B, K, K]
``"pooled"``      any other value per pooled node (e.g. scores), permuted by :math:`Q`
``"selected"``    the input node behind each pooled node (LongTensor [M]), relabelled by :math:`P`
``"assignment"``  the pooled node of each input node (LongTensor [N]), permuted by :math:`P`, renumbered by :math:`Q`
``"graph"``       invariant (auxiliary losses)
``"ignore"``      not checked
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import global_add_pool

from gdl_graphs.groups import PERMUTATION_INVARIANT
from gdl_graphs.testing.symmetry import Call, _compare, default_call, permute_graph, random_node_permutation

POOLED_KINDS = ("x", "edge_index", "edge_attr", "batch", "adj", "pooled", "selected", "assignment", "graph",
                "ignore")


class _PooledGraph:
    """One run's outputs read as pooled graphs: flat features, the graph of each pooled node, per-graph adjacency."""

    def __init__(self, outputs: Sequence[Any], kinds: Sequence[str]):
        by_kind = {kind: value for kind, value in zip(kinds, outputs) if kind not in ("pooled", "graph", "ignore")}
        x = by_kind["x"]
        if x.dim() == 3:  # dense [B, K, C]: every graph has K clusters
            if "adj" not in by_kind:
                raise ValueError("dense pooled features [B, K, C] need an 'adj' output [B, K, K]")
            batch_size, k = x.shape[:2]
            self.x = x.reshape(batch_size * k, -1)
            self.graph = torch.arange(batch_size, device=x.device).repeat_interleave(k)
            self.adjacency = [a.unsqueeze(-1) for a in by_kind["adj"]]
            self.nodes = [torch.arange(b * k, (b + 1) * k, device=x.device) for b in range(batch_size)]
        else:
            if "edge_index" not in by_kind:
                raise ValueError("sparse pooled features [M, C] need an 'edge_index' output")
            batch = by_kind.get("batch")
            self.x = x.reshape(x.size(0), -1)
            self.graph = torch.zeros(x.size(0), dtype=torch.long, device=x.device) if batch is None else batch
            num_graphs = int(self.graph.max()) + 1 if x.size(0) else 0
            self.nodes = [torch.nonzero(self.graph == b).view(-1) for b in range(num_graphs)]
            self.adjacency = self._dense_blocks(by_kind["edge_index"], by_kind.get("edge_attr"))

    def _dense_blocks(self, edge_index: Tensor, edge_attr: Tensor | None) -> list[Tensor]:
        """The weighted adjacency [K_b, K_b, D] of every pooled graph (duplicate edges summed)."""
        num = self.x.size(0)
        weight = (torch.ones(edge_index.size(1), 1, dtype=self.x.dtype, device=self.x.device) if edge_attr is None
                  else edge_attr.reshape(edge_index.size(1), -1).to(self.x.dtype))
        if edge_index.numel() and bool((self.graph[edge_index[0]] != self.graph[edge_index[1]]).any()):
            raise AssertionError("a pooled edge joins two different graphs of the batch")
        dense = torch.zeros(num, num, weight.size(1), dtype=weight.dtype, device=weight.device)
        dense.index_put_((edge_index[0], edge_index[1]), weight, accumulate=True)
        return [dense[idx][:, idx] for idx in self.nodes]

    def signature(self, b: int) -> Tensor:
        """Features plus the sorted row and column weights of each pooled node: invariant to the numbering."""
        adj = self.adjacency[b].sum(-1)
        return torch.cat([self.x[self.nodes[b]], adj.sort(dim=1).values, adj.t().sort(dim=1).values], 1).double()


def _match(ref: _PooledGraph, moved: _PooledGraph) -> list[Tensor]:
    """For each graph, the moved run's local index of each of the reference run's pooled nodes."""
    if len(ref.adjacency) != len(moved.adjacency):
        raise AssertionError(f"the pooled batch has {len(ref.adjacency)} graphs, but {len(moved.adjacency)} after "
                             f"permuting the input nodes")
    matches = []
    for b in range(len(ref.adjacency)):
        k_ref, k_moved = ref.nodes[b].numel(), moved.nodes[b].numel()
        if k_ref != k_moved:
            raise AssertionError(f"pooled graph {b} has {k_ref} nodes, but {k_moved} after permuting the input nodes")
        cost = torch.cdist(ref.signature(b), moved.signature(b))
        _, columns = linear_sum_assignment(cost.cpu().numpy())
        matches.append(torch.as_tensor(columns, dtype=torch.long, device=ref.x.device))
    return matches


def assert_pooling_equivariant(module: nn.Module, data: Data, *, call: Call | None = None,
                               output_kinds: Sequence[str] | None = None, trials: int = 3, seed: int = 0,
                               atol: float | None = None, rtol: float | None = None) -> float:
    r"""Assert that ``module`` is :math:`S_n`-equivariant up to a permutation of its pooled nodes (see the module
    docstring for what is compared).

    Args:
        module: the pooling layer; put in eval mode during the check (its mode is restored after).
        data: a :class:`~torch_geometric.data.Data` or :class:`~torch_geometric.data.Batch`; nodes are permuted
            within each graph and the edge list is shuffled.
        call: ``call(module, data) -> outputs`` (a tuple); by default the attributes of ``data`` named like the
            parameters of ``forward``.
        output_kinds: the kind of each returned value (see :data:`POOLED_KINDS`); default ``module.pooled_outputs``.
        trials, seed, atol, rtol: as in :func:`~gdl_graphs.testing.assert_permutation_equivariant`.

    Returns:
        The maximum absolute error over all compared outputs and trials.

    Raises:
        AssertionError: naming the output, the pooled graph and the error, when no matching of the pooled nodes
            makes the two runs agree.
    """
    if not isinstance(data, Data):
        raise TypeError(f"data must be a torch_geometric Data or Batch, got {type(data).__name__}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    kinds = list(getattr(module, "pooled_outputs", ()) if output_kinds is None else output_kinds)
    if not kinds:
        raise ValueError(f"{type(module).__name__} has no 'pooled_outputs' attribute; pass output_kinds")
    bad = [k for k in kinds if k not in POOLED_KINDS]
    if bad:
        raise ValueError(f"unknown output kind(s) {bad}; choose from {POOLED_KINDS}")
    if "x" not in kinds:
        raise ValueError("output_kinds must name the pooled features ('x')")
    call = call or default_call
    generator = torch.Generator().manual_seed(seed)
    was_training = module.training
    module.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            reference = _as_tuple(call(module, data), kinds)
            ref_graph = _PooledGraph(reference, kinds)
            for trial in range(trials):
                perm = random_node_permutation(data, generator)
                num_edges = data.edge_index.size(1) if "edge_index" in data else 0
                moved_data = permute_graph(data, perm, torch.randperm(num_edges, generator=generator))
                moved = _as_tuple(call(module, moved_data), kinds)
                moved_graph = _PooledGraph(moved, kinds)
                matches = _match(ref_graph, moved_graph)
                worst = max(worst, _compare_matched(reference, moved, kinds, ref_graph, moved_graph, matches, perm,
                                                    trial, atol, rtol))
    finally:
        module.train(was_training)
    return worst


def _as_tuple(output: Any, kinds: Sequence[str]) -> tuple:
    values = tuple(output) if isinstance(output, (tuple, list)) else (output,)
    if len(values) != len(kinds):
        raise ValueError(f"output_kinds has {len(kinds)} entries but the module returned {len(values)} values")
    for kind, value in zip(kinds, values):
        if value is None and kind not in ("edge_attr", "batch", "ignore"):
            raise AssertionError(f"the module returned None for its {kind!r} output")
    return values


def _compare_matched(reference, moved, kinds, ref_graph: _PooledGraph, moved_graph: _PooledGraph,
                     matches: list[Tensor], perm: Tensor, trial: int, atol, rtol) -> float:
    # global index, in the moved run, of each pooled node of the reference run
    match = torch.empty(ref_graph.x.size(0), dtype=torch.long, device=ref_graph.x.device)
    for b, columns in enumerate(matches):
        match[ref_graph.nodes[b]] = moved_graph.nodes[b][columns]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())

    def compare(name: str, out: Tensor, expected: Tensor) -> float:
        try:
            return _compare(name, "pooled", out, expected, trial, False, atol, rtol)
        except AssertionError as failure:
            raise AssertionError(f"{failure} -- no permutation of the pooled nodes makes the outputs agree "
                                 f"(equivariance up to a permutation of the clusters)") from None

    worst = compare("pooled features x'", moved_graph.x[match], ref_graph.x)
    for b, columns in enumerate(matches):
        worst = max(worst, compare(f"pooled adjacency of graph {b}", moved_graph.adjacency[b][columns][:, columns],
                                   ref_graph.adjacency[b]))
    for i, (kind, ref, out) in enumerate(zip(kinds, reference, moved)):
        name = f"output[{i}] ({kind})"
        if kind == "pooled":
            worst = max(worst, compare(name, out[match.to(out.device)], ref))
        elif kind == "selected":
            worst = max(worst, compare(name, out[match.to(out.device)], inverse.to(ref.device)[ref]))
        elif kind == "assignment":
            worst = max(worst, compare(name, out, match.to(ref.device)[ref[perm.to(ref.device)]]))
        elif kind == "graph":
            worst = max(worst, compare(name, out, ref))
    return worst


class PoolThenReadout(nn.Module):
    """A pooling layer followed by a sum over the pooled nodes of each graph, to certify as
    :data:`~gdl_graphs.groups.PERMUTATION_INVARIANT` with :func:`~gdl_graphs.testing.assert_permutation_invariant`.

    Args:
        pool: the pooling layer (its ``pooled_outputs`` say which output holds the pooled features and batch).
        call: ``call(pool, data) -> outputs``, as for :func:`assert_pooling_equivariant`.
    """

    symmetry = PERMUTATION_INVARIANT

    def __init__(self, pool: nn.Module, call: Call):
        super().__init__()
        self.pool, self.call = pool, call

    def forward(self, data: Data) -> Tensor:
        outputs = dict(zip(self.pool.pooled_outputs, self.call(self.pool, data)))
        x = outputs["x"]
        if x.dim() == 3:  # dense [B, K, C]
            return x.sum(1)
        batch = getattr(data, "batch", None)
        return global_add_pool(x, outputs.get("batch"), size=1 if batch is None else int(batch.max()) + 1)
