r"""Vectorised one-hop neighbour sampling on a target-major CSR graph (pure torch, no Python loop over nodes).

The graph is given as ``(rowptr, col)``: the in-neighbours (sources :math:`j` of edges :math:`j \to i`) of node
:math:`i` are ``col[rowptr[i]:rowptr[i + 1]]``, the layout of :class:`gdl_graphs.nn.aggregate.Adjacency` and of
PyG's CSC sampling structure. For every frontier node :math:`i` of in-degree :math:`d_i`, :func:`sample_hop` draws

* all :math:`d_i` in-edges when ``k < 0``, or when sampling without replacement and :math:`d_i \le k`;
* :math:`k` positions uniformly *with* replacement (``replace=True``, nodes with :math:`d_i > 0`);
* otherwise a uniformly random :math:`k`-subset of :math:`\{0, \dots, d_i - 1\}` *without* replacement, by Robert
  Floyd's algorithm run for all such nodes at once: :math:`k` vectorised steps, each a ``[m, k]`` comparison, so the
  cost is :math:`O(m k^2)` whatever the degrees (a random-key sort of every neighbourhood would cost
  :math:`O(\sum_i d_i \log d_i)` on power-law graphs).

Output edges are grouped by frontier node in frontier order and, within a node, in CSR order.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _segment_ranks(counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For segments of the given lengths laid end to end: (segment id, rank within segment, segment start)."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel()), counts, output_size=total)
    seg_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total) - seg_start.index_select(0, owner)
    return owner, rank, seg_start


def _floyd_subsets(degree: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """A uniformly random ``k``-subset of ``range(degree[r])`` for each row ``r`` (needs ``degree > k``), sorted."""
    m = degree.numel()
    uniform = torch.rand(m, k, generator=generator, dtype=torch.float64)
    chosen = torch.empty(m, k, dtype=torch.int64)
    for step in range(k):
        top = degree - k + step                                   # Floyd: draw t in [0, top]; if taken, take top
        draw = (uniform[:, step] * (top + 1)).long().minimum(top)
        if step:
            taken = (chosen[:, :step] == draw.unsqueeze(1)).any(1)
            draw = torch.where(taken, top, draw)
        chosen[:, step] = draw
    return chosen.sort(dim=1).values


def sample_hop(rowptr: Tensor, frontier: Tensor, k: int, replace: bool,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Sample up to ``k`` in-edges of every node in ``frontier``.

    Args:
        rowptr: CSR offsets ``[N + 1]`` (any integer dtype).
        frontier: LongTensor ``[F]`` of node ids (duplicates allowed; each occurrence samples on its own).
        k: fan-out; ``-1`` (any negative value) takes every in-edge.
        replace: sample with replacement (then exactly ``k`` draws for every node with at least one in-edge).
        generator: source of randomness (torch's default generator when ``None``).

    Returns:
        ``(owner, position)``, LongTensors ``[S]``: edge ``s`` goes to ``frontier[owner[s]]`` and sits at CSR
        position ``position[s]`` (its source is ``col[position[s]]``).
    """
    start = rowptr.index_select(0, frontier).long()
    degree = rowptr.index_select(0, frontier + 1).long() - start
    if k < 0:
        counts = degree
    elif replace:
        counts = torch.where(degree > 0, k, 0)
    else:
        counts = degree.clamp(max=k)
    owner, offset, seg_start = _segment_ranks(counts)
    if k >= 0 and replace:
        span = degree.index_select(0, owner)
        uniform = torch.rand(owner.numel(), generator=generator, dtype=torch.float64)
        offset = (uniform * span).long().minimum(span - 1)
    elif k > 0:
        subsampled = (degree > k).nonzero().view(-1)
        if subsampled.numel():
            chosen = _floyd_subsets(degree.index_select(0, subsampled), k, generator)
            slots = seg_start.index_select(0, subsampled).unsqueeze(1) + torch.arange(k)
            offset[slots.view(-1)] = chosen.view(-1)
    return owner, start.index_select(0, owner) + offset
