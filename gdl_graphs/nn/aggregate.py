r"""The one place that decides how neighbour information is aggregated.

Two kinds of aggregation occur in message passing:

* *Linear* aggregation of node features, :math:`\mathbf{X}' = \mathbf{A}\mathbf{X}` with a fixed (possibly
  normalised or weighted) adjacency: done as a CSR sparse-dense matmul (MKL on CPU, cuSPARSE on GPU). The CSR matrix
  and its transpose (for the backward pass) are built once per graph batch and reused by every layer
  (:func:`adjacency`, :func:`spmm`).
* Reduction of per-edge *messages* onto target nodes, :math:`\mathbf{h}_i = \bigoplus_{j \in \mathcal{N}(i)}
  \mathbf{m}_{ij}` (:func:`reduce_edges`): scatter reductions, or, in deterministic mode, segment reductions over
  target-sorted edges, which never use atomics and give bit-identical results run to run.

Layers never hand-roll their own aggregation; they call these functions.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor
from torch_geometric.utils import scatter

REDUCTIONS = ("sum", "mean", "min", "max", "mul")

_deterministic = False


def set_deterministic(enabled: bool) -> None:
    """Force deterministic aggregation everywhere (no atomics; bit-identical outputs and gradients run to run)."""
    global _deterministic
    _deterministic = bool(enabled)


def is_deterministic() -> bool:
    """Whether deterministic aggregation is on (:func:`set_deterministic`, or ``torch.use_deterministic_algorithms``)."""
    return _deterministic or torch.are_deterministic_algorithms_enabled()


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Context manager form of :func:`set_deterministic`."""
    previous = _deterministic
    set_deterministic(enabled)
    try:
        yield
    finally:
        set_deterministic(previous)


def reduce_edges(messages: Tensor, index: Tensor, num_nodes: int, reduce: str = "sum") -> Tensor:
    r"""Reduce per-edge messages onto their target nodes.

    .. math::
        \mathbf{h}_i = \bigoplus_{e \,:\, \mathrm{index}_e = i} \mathbf{m}_e

    Args:
        messages: ``[E, *]`` one message per edge.
        index: LongTensor ``[E]``, the target node of each edge.
        num_nodes: number of target nodes ``N`` (nodes receiving no message get 0).
        reduce: one of ``"sum"``, ``"mean"``, ``"min"``, ``"max"``, ``"mul"``.

    Returns:
        ``[N, *]``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    if is_deterministic() and messages.numel() > 0 and reduce in ("sum", "mean"):
        return _segment_reduce(messages, index, num_nodes, reduce)
    return scatter(messages, index, dim=0, dim_size=num_nodes, reduce=reduce)


def _segment_reduce(messages: Tensor, index: Tensor, num_nodes: int, reduce: str) -> Tensor:
    """Sum/mean over target-sorted edges with a stable sort: the summation order is fixed, hence deterministic."""
    order = torch.argsort(index, stable=True)
    lengths = torch.bincount(index, minlength=num_nodes)
    out = torch.segment_reduce(messages[order], "sum", lengths=lengths, axis=0, unsafe=True)
    if reduce == "mean":
        out = out / lengths.clamp(min=1).view(-1, *([1] * (messages.dim() - 1))).to(out.dtype)
    return out
