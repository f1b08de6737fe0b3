r"""The one place that decides how neighbour information is aggregated.

Two kinds of aggregation occur in message passing:

* *Linear* aggregation of node features, :math:`\mathbf{X}' = \mathbf{A}_w\mathbf{X}` with an adjacency weighted by
  per-edge values :math:`w` (:func:`spmm`).
* Reduction of per-edge *messages* onto target nodes, :math:`\mathbf{h}_i = \bigoplus_{e \to i} \mathbf{m}_e`
  (:func:`reduce_edges`).

Paths, chosen here and nowhere else:

* **CSR path** (sums and means, eager and compiled): the graph batch is converted once into a target-major CSR
  structure (:class:`Adjacency`, cached per ``edge_index`` tensor and reused by every layer of the forward and
  backward pass). Linear aggregation is a CSR sparse-dense matmul (MKL on CPU, cuSPARSE on GPU) whose backward
  multiplies by a cached transposed CSR; sums and means of edge messages are a matmul with the ``[N, E]`` incidence
  matrix, whose backward is a gather. No atomics are involved, so results are bit-identical run to run. The products
  are custom operators (``torch.ops.gdl_graphs.*``) that look the structure up in the cache, so :func:`torch.compile`
  keeps them, with no graph breaks.
* **Scatter path**: index gathers and scatter reductions. Used for ``min``/``max``/``mul`` reductions, for sums of
  edge messages that come without an :class:`Adjacency`, and for half-precision sums on CPU (no MKL kernels).

:func:`set_deterministic` / :func:`deterministic` (or ``torch.use_deterministic_algorithms(True)``) also send sums
over edges that come without a cached :class:`Adjacency` through a sorted, atomics-free reduction. On GPU, make
scatter reductions deterministic with ``torch.use_deterministic_algorithms(True)``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from typing import Iterator

import torch
from torch import Tensor
from torch_geometric.utils import scatter

REDUCTIONS = ("sum", "mean", "min", "max", "mul")

# torch marks sparse CSR as beta on every construction; the operations used here (CSR @ dense) are stable.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

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


def _compiling() -> bool:
    return torch.compiler.is_compiling()


# ----------------------------------------------------------------------------------------------------------------
# The cached CSR structure of a graph batch
# ----------------------------------------------------------------------------------------------------------------
class _Built:
    """What an :class:`Adjacency` builds on first use, shared by every handle on the same graph and kept by the
    cache. It never refers to the graph's ``edge_index`` (the key of its cache entry): the entry must die with that
    tensor, or every mini-batch's structure would stay in memory for good."""

    __slots__ = ("structure", "transpose", "incidence", "source_incidence", "derived")

    def __init__(self):
        self.structure: tuple[Tensor, Tensor, Tensor, Tensor] | None = None  # perm, row, col, crow
        self.transpose: tuple[Tensor, Tensor, Tensor] | None = None
        self.incidence: Tensor | None = None
        self.source_incidence: Tensor | None = None
        self.derived: dict[object, object] = {}


class Adjacency:
    r"""Target-major CSR structure of a graph: row :math:`i` lists the sources :math:`j` of the edges :math:`j \to i`.

    Built from ``edge_index`` [2, E] (``edge_index[0]`` = sources, ``edge_index[1]`` = targets, PyG's
    ``source_to_target`` flow). CSR position ``k`` holds edge ``perm[k]``; per-edge values given in edge order are
    moved into CSR order with ``values[perm]``. The transposed structure (for backward passes) is built on first use.

    Obtain instances through :func:`adjacency`, which caches them per ``edge_index`` tensor. ``key`` is the tensor
    the structure is cached under (``edge_index`` itself, or the graph's without self-loops when ``self_loops``, see
    :func:`with_self_loops`); the CSR operators receive ``(key, self_loops, num_src, num_dst)`` and find the
    structure in the cache, which is how compiled code reaches it.
    """

    def __init__(self, edge_index: Tensor, num_src: int, num_dst: int, key: Tensor | None = None,
                 self_loops: bool = False, built: _Built | None = None, first_use: bool = False):
        self.edge_index = edge_index
        self.key = edge_index if key is None else key
        self.self_loops = self_loops
        self.first_use = first_use  # the cache had no entry for this graph when this handle was made
        self.num_src, self.num_dst = int(num_src), int(num_dst)
        self.num_edges = int(edge_index.size(1))
        self.index_dtype = _index_dtype(self.num_src, self.num_dst, self.num_edges)
        self._built = _Built() if built is None else built

    def index_ops_pay(self, width: int) -> bool:
        """Whether ``index_select`` / ``index_add_`` beat the CSR operators for ``width`` values per edge on this
        graph when the operation does not fuse a gather into a sum (a gather of node values per edge, a sum of
        messages already computed): small graphs (:data:`SCATTER_MAX_MESSAGES`; on a GPU
        :data:`CUDA_SCATTER_MAX_MESSAGES`), in eager mode, outside deterministic mode. The CSR operators' gain is
        the fused gather, so without one they only add their per-call cost."""
        limit = SCATTER_MAX_MESSAGES if self.edge_index.device.type == "cpu" else CUDA_SCATTER_MAX_MESSAGES
        return self.num_edges * width < limit and not is_deterministic() and not _compiling()

    def scatter_first(self, width: int) -> bool:
        """Whether an aggregation of ``width`` values per edge over this graph gathers and sums with ``index_add_``
        instead of building the CSR structure: on the first use of a graph where :meth:`index_ops_pay`, while no
        CSR structure exists for it. A graph used again (the next layer on the same mini-batch, the next epoch on a
        full graph) builds its CSR and keeps it."""
        return self.first_use and self._built.structure is None and self.index_ops_pay(width)

    @property
    def derived(self) -> dict:
        """Per-graph values cached by layers (e.g. normalisations), kept as long as the graph's structure."""
        return self._built.derived

    def _csr_structure(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(perm, row, col, crow), built on first use: the scatter path never needs them."""
        if self._built.structure is None:
            src, dst = self.edge_index[0], self.edge_index[1]
            row, perm = torch.sort(dst.to(self.index_dtype), stable=True)
            col = src.index_select(0, perm).to(self.index_dtype)
            crow = _offsets(torch.bincount(dst, minlength=self.num_dst), self.index_dtype)
            self._built.structure = (perm, row, col, crow)
        return self._built.structure

    @property
    def perm(self) -> Tensor:
        """LongTensor [E]: CSR position ``k`` holds edge ``perm[k]``."""
        if _compiling():
            return torch.ops.gdl_graphs.csr_perm(*self.graph)
        return self._csr_structure()[0]

    @property
    def graph(self) -> tuple[Tensor, bool, int, int]:
        """``(key, self_loops, num_src, num_dst)``: what the CSR operators need to find this structure."""
        return self.key, self.self_loops, self.num_src, self.num_dst

    @property
    def row(self) -> Tensor:
        """Target node of each CSR entry (sorted)."""
        return self._csr_structure()[1]

    @property
    def col(self) -> Tensor:
        """Source node of each CSR entry."""
        return self._csr_structure()[2]

    @property
    def crow(self) -> Tensor:
        """CSR row offsets ``[num_dst + 1]``."""
        return self._csr_structure()[3]

    @property
    def in_degree(self) -> Tensor:
        """Number of incoming edges of each target node ``[num_dst]``."""
        if _compiling():
            return torch.ops.gdl_graphs.csr_in_degree(*self.graph)
        crow = self.crow
        return crow[1:] - crow[:-1]

    def csr(self, values: Tensor | None = None) -> Tensor:
        """The ``[num_dst, num_src]`` sparse CSR matrix with ``values`` (CSR order; ones by default)."""
        if values is None:
            values = torch.ones(self.num_edges, device=self.crow.device)
        return torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_dst, self.num_src),
                                       check_invariants=False)

    def _transpose_structure(self) -> tuple[Tensor, Tensor, Tensor]:
        """(crow_t, col_t, order) of the transposed CSR, built on first use; ``order`` maps its positions to this
        matrix's CSR positions."""
        if self._built.transpose is None:
            col_sorted, order = torch.sort(self.col, stable=True)
            crow_t = _offsets(torch.bincount(self.col.long(), minlength=self.num_src), self.index_dtype)
            self._built.transpose = (crow_t, self.row.index_select(0, order), order)
        return self._built.transpose

    def transpose_csr(self, values: Tensor | None = None) -> Tensor:
        """The ``[num_src, num_dst]`` transposed matrix, with ``values`` given in *this* matrix's CSR order."""
        crow_t, col_t, order = self._transpose_structure()
        values = (torch.ones(self.num_edges, device=crow_t.device) if values is None
                  else values.index_select(0, order))
        return torch.sparse_csr_tensor(crow_t, col_t, values, (self.num_src, self.num_dst), check_invariants=False)

    def incidence(self, dtype: torch.dtype) -> Tensor:
        """The ``[num_dst, E]`` target incidence matrix (entry ``(i, e)`` is 1 when edge ``e`` points to ``i``)."""
        if self._built.incidence is None or self._built.incidence.dtype != dtype:
            ones = torch.ones(self.num_edges, dtype=dtype, device=self.crow.device)
            self._built.incidence = torch.sparse_csr_tensor(self.crow, self.perm.to(self.index_dtype), ones,
                                                      (self.num_dst, self.num_edges), check_invariants=False)
        return self._built.incidence

    def source_incidence(self, dtype: torch.dtype) -> Tensor:
        """The ``[num_src, E]`` source incidence matrix (entry ``(j, e)`` is 1 when edge ``e`` leaves ``j``)."""
        built = self._built
        if built.source_incidence is None or built.source_incidence.dtype != dtype:
            crow_t, _, order = self._transpose_structure()
            edges = self.perm.index_select(0, order).to(self.index_dtype)  # edge ids, grouped by source
            ones = torch.ones(self.num_edges, dtype=dtype, device=crow_t.device)
            built.source_incidence = torch.sparse_csr_tensor(crow_t, edges, ones, (self.num_src, self.num_edges),
                                                             check_invariants=False)
        return built.source_incidence

    def __repr__(self) -> str:
        return f"Adjacency(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges})"


def _index_dtype(*sizes: int) -> torch.dtype:
    """int32 CSR indices where every size fits (faster kernels), else int64."""
    return torch.int32 if max(sizes) < 2 ** 31 - 1 else torch.int64


def _offsets(counts: Tensor, dtype: torch.dtype) -> Tensor:
    out = torch.zeros(counts.numel() + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=out[1:])
    return out.to(dtype)


class _Cache:
    """Adjacency structures keyed by the identity of their ``edge_index`` tensor.

    An entry lives as long as its ``edge_index`` tensor and is rebuilt if that tensor was modified in place
    (its version counter changed) or is used with other node counts.
    """

    def __init__(self):
        self._entries: dict[int, tuple[weakref.ref, int, tuple[int, int], _Built]] = {}

    def get(self, edge_index: Tensor, num_src: int, num_dst: int) -> _Built | None:
        entry = self._entries.get(id(edge_index))
        if entry is None:
            return None
        ref, version, sizes, built = entry
        if ref() is edge_index and version == edge_index._version and sizes == (num_src, num_dst):
            return built
        return None

    def put(self, edge_index: Tensor, adj: Adjacency) -> None:
        key = id(edge_index)
        entries = self._entries
        ref = weakref.ref(edge_index, lambda _, key=key: entries.pop(key, None))
        entries[key] = (ref, edge_index._version, (adj.num_src, adj.num_dst), adj._built)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_cache = _Cache()


def clear_cache() -> None:
    """Drop every cached :class:`Adjacency` (they are also dropped with their ``edge_index`` tensors)."""
    _cache.clear()


def is_cached(edge_index: Tensor, num_src: int, num_dst: int) -> bool:
    """Whether an :class:`Adjacency` of ``edge_index`` with these node counts is cached (it was validated then)."""
    return _cache.get(edge_index, num_src, num_dst) is not None


def adjacency(edge_index: Tensor, num_nodes: int | tuple[int, int]) -> Adjacency:
    """The (cached) :class:`Adjacency` of ``edge_index``.

    Args:
        edge_index: LongTensor ``[2, E]``, already validated (see :mod:`gdl_graphs.nn.validation`).
        num_nodes: ``N``, or ``(num_src, num_dst)`` for bipartite graphs.
    """
    num_src, num_dst = (num_nodes, num_nodes) if isinstance(num_nodes, int) else num_nodes
    if _compiling():
        return Adjacency(edge_index, num_src, num_dst)
    built = _cache.get(edge_index, num_src, num_dst)
    # a handle holding edge_index; the cache keeps built
    adj = Adjacency(edge_index, num_src, num_dst, built=built, first_use=built is None)
    if built is None:
        _cache.put(edge_index, adj)
    return adj


def use_csr_path() -> bool:
    """Whether sums take the CSR path (eager and compiled alike); patched to ``False`` in tests to compare with the
    scatter path."""
    return True


# ----------------------------------------------------------------------------------------------------------------
# The CSR products as custom operators: opaque to torch.compile (no graph breaks, and Inductor runs the same MKL /
# cuSPARSE kernels as eager mode). They find the graph's cached structure from (key, self_loops, num_src, num_dst).
# ----------------------------------------------------------------------------------------------------------------
def _resolve(key: Tensor, self_loops: bool, num_src: int, num_dst: int) -> Adjacency:
    adj = adjacency(key, (num_src, num_dst))
    return with_self_loops(adj)[0] if self_loops else adj


def _num_csr_edges(key: Tensor, self_loops: bool, num_dst: int):
    return key.size(1) + (num_dst if self_loops else 0)


@torch.library.custom_op("gdl_graphs::csr_perm", mutates_args=())
def _csr_perm(key: Tensor, self_loops: bool, num_src: int, num_dst: int) -> Tensor:
    return _resolve(key, self_loops, num_src, num_dst).perm.clone()


@_csr_perm.register_fake
def _(key, self_loops, num_src, num_dst):
    return key.new_empty(_num_csr_edges(key, self_loops, num_dst), dtype=torch.int64)


@torch.library.custom_op("gdl_graphs::csr_in_degree", mutates_args=())
def _csr_in_degree(key: Tensor, self_loops: bool, num_src: int, num_dst: int) -> Tensor:
    return _resolve(key, self_loops, num_src, num_dst).in_degree.clone()


@_csr_in_degree.register_fake
def _(key, self_loops, num_src, num_dst):
    return key.new_empty(num_dst, dtype=_index_dtype(num_src, num_dst, _num_csr_edges(key, self_loops, num_dst)))


@torch.library.custom_op("gdl_graphs::csr_spmm", mutates_args=())
def _csr_spmm(key: Tensor, self_loops: bool, num_src: int, num_dst: int, values: Tensor, x: Tensor) -> Tensor:
    """``A_w @ x`` with ``values`` in CSR order and ``x`` ``[num_src, C]`` contiguous."""
    return torch.sparse.mm(_resolve(key, self_loops, num_src, num_dst).csr(values), x)


@_csr_spmm.register_fake
def _(key, self_loops, num_src, num_dst, values, x):
    return x.new_empty(num_dst, x.size(1))


@torch.library.custom_op("gdl_graphs::csr_spmm_t", mutates_args=())
def _csr_spmm_t(key: Tensor, self_loops: bool, num_src: int, num_dst: int, values: Tensor, grad: Tensor) -> Tensor:
    """``A_w^T @ grad`` (the gradient of :func:`_csr_spmm` with respect to ``x``), on the cached transposed CSR."""
    return torch.sparse.mm(_resolve(key, self_loops, num_src, num_dst).transpose_csr(values), grad)


@_csr_spmm_t.register_fake
def _(key, self_loops, num_src, num_dst, values, grad):
    return grad.new_empty(num_src, grad.size(1))


SDDMM_CHUNK_ELEMENTS = 1 << 20
"""Where no sampled-product kernel exists (:func:`_sampled_kernel_for`), the edge-value gradient of a CSR product
gathers ``[edges, C]`` rows of both operands this many elements at a time, so its temporaries stay at a few MB
instead of ``3 * E * C`` floats."""


@torch.library.custom_op("gdl_graphs::csr_sddmm", mutates_args=())
def _csr_sddmm(key: Tensor, self_loops: bool, num_src: int, num_dst: int, grad: Tensor, x: Tensor) -> Tensor:
    """``<grad[i], x[j]>`` for each edge ``j -> i`` in CSR order (the gradient of :func:`_csr_spmm` w.r.t. values).

    ``torch.sparse.sampled_addmm`` on the graph's pattern: one pass, no ``[E, C]`` temporaries. Measured against
    the gather of both operands' rows (10k nodes / 210k edges, 1 CPU thread): 1.4 ms vs 11.9 ms at 16 channels,
    2.0 ms vs 94 ms at 64."""
    adj = _resolve(key, self_loops, num_src, num_dst)
    if _sampled_kernel_for(grad):
        pattern = adj.csr(grad.new_zeros(adj.num_edges))  # zeros: beta=0 still multiplies the pattern's values
        return torch.sparse.sampled_addmm(pattern, grad, x.t(), beta=0.0).values().clone()
    row, col = adj.row.long(), adj.col.long()
    step = max(1, SDDMM_CHUNK_ELEMENTS // max(1, grad.size(1)))  # temporaries O(step * C), not O(E * C)
    chunks = [(grad.index_select(0, row[start:start + step]) * x.index_select(0, col[start:start + step])).sum(-1)
              for start in range(0, max(row.numel(), 1), step)]  # one (possibly empty) chunk at least
    return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def _sampled_kernel_for(x: Tensor) -> bool:
    """Whether ``torch.sparse.sampled_addmm`` takes ``x``'s dtype (float and double; not the half types)."""
    return x.dtype in (torch.float32, torch.float64)


@_csr_sddmm.register_fake
def _(key, self_loops, num_src, num_dst, grad, x):
    return x.new_empty(_num_csr_edges(key, self_loops, num_dst))


def _spmm_setup(ctx, inputs, output):
    key, self_loops, num_src, num_dst, values, x = inputs
    ctx.graph = (self_loops, num_src, num_dst)
    ctx.save_for_backward(key, values, x)


def _spmm_backward(ctx, grad):
    key, values, x = ctx.saved_tensors
    graph = (key, *ctx.graph)
    grad = grad.contiguous()
    grad_values = _csr_sddmm(*graph, grad, x) if ctx.needs_input_grad[4] else None
    grad_x = _csr_spmm_t(*graph, values, grad) if ctx.needs_input_grad[5] else None
    return None, None, None, None, grad_values, grad_x


_csr_spmm.register_autograd(_spmm_backward, setup_context=_spmm_setup)


@torch.library.custom_op("gdl_graphs::incidence_sum", mutates_args=())
def _incidence_sum(key: Tensor, self_loops: bool, num_src: int, num_dst: int, index: Tensor,
                   messages: Tensor, by_target: bool) -> Tensor:
    """Sum of edge messages ``[E, C]`` per target (``by_target``) or per source, as a matmul with the ``[num_dst, E]``
    or ``[num_src, E]`` incidence matrix; ``index`` holds each edge's target or source (for the backward gather)."""
    adj = _resolve(key, self_loops, num_src, num_dst)
    incidence = adj.incidence(messages.dtype) if by_target else adj.source_incidence(messages.dtype)
    return torch.sparse.mm(incidence, messages)


@_incidence_sum.register_fake
def _(key, self_loops, num_src, num_dst, index, messages, by_target):
    return messages.new_empty(num_dst if by_target else num_src, messages.size(1))


def _incidence_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[4])


def _incidence_backward(ctx, grad):
    (index,) = ctx.saved_tensors
    return None, None, None, None, None, grad.index_select(0, index), None


_incidence_sum.register_autograd(_incidence_backward, setup_context=_incidence_setup)


@torch.library.custom_op("gdl_graphs::edge_gather", mutates_args=())
def _edge_gather(key: Tensor, self_loops: bool, num_src: int, num_dst: int, index: Tensor, values: Tensor,
                 by_target: bool) -> Tensor:
    """``values[index]``: node values ``[N, C]`` per edge, ``index`` each edge's target (``by_target``) or source;
    its backward is :func:`_incidence_sum`, a CSR product instead of a scatter."""
    return values.index_select(0, index)


@_edge_gather.register_fake
def _(key, self_loops, num_src, num_dst, index, values, by_target):
    return values.new_empty(index.size(0), values.size(1))


def _edge_gather_setup(ctx, inputs, output):
    key, self_loops, num_src, num_dst, index, _, by_target = inputs
    ctx.graph = (self_loops, num_src, num_dst)
    ctx.by_target = by_target
    ctx.save_for_backward(key, index)


def _edge_gather_backward(ctx, grad):
    key, index = ctx.saved_tensors
    summed = torch.ops.gdl_graphs.incidence_sum(key, *ctx.graph, index, grad.contiguous(), ctx.by_target)
    return None, None, None, None, None, summed, None


_edge_gather.register_autograd(_edge_gather_backward, setup_context=_edge_gather_setup)


@torch.library.custom_op("gdl_graphs::relu_message_sum", mutates_args=())
def _relu_message_sum(key: Tensor, self_loops: bool, num_src: int, num_dst: int, x: Tensor,
                      edges: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum_{j -> i} m_e per target i, m)`` with the messages ``m_e = relu(x[j] + edges[e])`` in edge order."""
    adj = _resolve(key, self_loops, num_src, num_dst)
    messages = torch.relu_(x.index_select(0, adj.edge_index[0]).add_(edges))
    return torch.sparse.mm(adj.incidence(messages.dtype), messages), messages


@_relu_message_sum.register_fake
def _(key, self_loops, num_src, num_dst, x, edges):
    return x.new_empty(num_dst, x.size(1)), edges.new_empty(edges.shape)


@torch.library.custom_op("gdl_graphs::relu_message_sum_backward", mutates_args=())
def _relu_message_sum_backward(key: Tensor, self_loops: bool, num_src: int, num_dst: int, messages: Tensor,
                               grad: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of :func:`_relu_message_sum` for ``x`` and ``edges`` (the ReLU gate is ``messages > 0``)."""
    adj = _resolve(key, self_loops, num_src, num_dst)
    src, dst = _long(adj.edge_index[0]), _long(adj.edge_index[1])
    grad_edges = grad.index_select(0, dst)
    torch.ops.aten.threshold_backward.grad_input(grad_edges, messages, 0, grad_input=grad_edges)  # in place
    return messages.new_zeros(num_src, messages.size(1)).index_add_(0, src, grad_edges), grad_edges


@_relu_message_sum_backward.register_fake
def _(key, self_loops, num_src, num_dst, messages, grad):
    return messages.new_empty(num_src, messages.size(1)), messages.new_empty(messages.shape)


def _relu_message_setup(ctx, inputs, output):
    key, self_loops, num_src, num_dst = inputs[:4]
    ctx.graph = (self_loops, num_src, num_dst)
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(key, output[1])


def _relu_message_backward(ctx, grad, _grad_messages):
    key, messages = ctx.saved_tensors
    grad_x, grad_edges = torch.ops.gdl_graphs.relu_message_sum_backward(key, *ctx.graph, messages,
                                                                         grad.contiguous())
    return None, None, None, None, grad_x, grad_edges


_relu_message_sum.register_autograd(_relu_message_backward, setup_context=_relu_message_setup)


def relu_message_sum(adj: Adjacency, x: Tensor, edges: Tensor) -> Tensor:
    r"""GINE's aggregation :math:`\mathbf{y}_i = \sum_{j \to i} \mathrm{ReLU}(\mathbf{x}_j + \mathbf{e}_{j,i})`
    as one operator, so that :func:`torch.compile` sees one opaque call: Inductor's CPU code for the boolean ReLU
    mask that it saves for an inlined ``relu(x_j + e)`` made compiled GINE 2.5x slower than eager (torch 2.13); here
    the backward pass gates with the saved messages themselves (as eager autograd does).

    Args:
        adj: the graph (:func:`adjacency`).
        x: ``[num_src, C]`` source features.
        edges: ``[E, C]`` edge features in edge order.

    Returns:
        ``[num_dst, C]``.
    """
    if (not use_csr_path() or not _csr_kernel_for(x) or adj.num_edges == 0 or edges.dtype != x.dtype
            or adj.scatter_first(x.size(1))):
        messages = torch.relu(x.index_select(0, adj.edge_index[0]) + edges)
        return reduce_edges(messages, adj.edge_index[1], adj.num_dst, "sum", adj)
    return torch.ops.gdl_graphs.relu_message_sum(*adj.graph, x.contiguous(), edges.contiguous())[0]


# ----------------------------------------------------------------------------------------------------------------
# Linear aggregation: Y = A_w X
# ----------------------------------------------------------------------------------------------------------------
PER_HEAD_MIN_MESSAGES = 1 << 21
"""Per-head weights (attention) aggregate with one CSR product per head once the ``[E, H, C]`` message tensor would
hold this many elements; below, one gather of that tensor and one reduction is faster. Measured (GATConv, 4 heads x
16 channels, forward + backward, 1 CPU thread): gather faster on Cora (0.85M elements, 1.22x) and on 128-molecule
batches (1.3M, 1.12x); per-head faster on random graphs of 5k / 50k (3.5M, 1.40x), 10k / 200k (13.4M, 1.68x) and
100k / 1.6M (109M, 1.32x, with half the peak memory)."""


SCATTER_MAX_MESSAGES = 1 << 21
"""The first aggregation over a new graph (a fresh mini-batch) with fewer message elements (edges x width) than this
gathers and sums with ``index_add_`` instead of building the CSR structure (:meth:`Adjacency.scatter_first`).
Measured (sum aggregation forward + backward, 2 CPU threads, medians; ``index_add_`` / the CSR built for one use /
the CSR once built): 128-molecule batches at 128 channels (0.91M elements) 589 / 690 / 473 us, and PyG's
``scatter_add_`` 866 us; 256 molecules (1.8M) 1496 / 1523 / 958 us; random graphs at 64 channels: 2.7k / 10.5k
(0.68M) 730 / 1983 / 551 us, 5k / 32k (2.0M) 4230 / 5397 / 1079 us, 10k / 50k (3.2M) 3512 / 1591 / 1271 us, where
the CSR pays even when built for one use. Once built, the CSR product is the faster one, which is why a graph's
second use builds it."""


CUDA_SCATTER_MAX_MESSAGES = 1 << 24
""":data:`SCATTER_MAX_MESSAGES` on a GPU, where ``index_add_`` is a few microseconds at these sizes and building the
CSR structure of a fresh graph costs its per-call launches. Measured on an H200 (benchmarks/results/layers_gpu.md,
512-molecule batches at 128 channels, 3.7M elements): building the CSR for every new batch made GIN 0.45x and
SAGE 0.46x PyG's scatter, and this limit 0.91x and 0.77x; the 1M / 16M-edge graph (2G elements) stays on the CSR
path (GCN 4.2x PyG)."""


def _index_sum(messages: Tensor, index: Tensor, num_nodes: int, reduce: str) -> Tensor:
    """Sum (or mean) of ``messages`` ``[E, *]`` per ``index`` entry with ``index_add_`` (deterministic on CPU)."""
    out = messages.new_zeros((num_nodes, *messages.shape[1:])).index_add_(0, index, messages)
    if reduce == "mean":
        count = torch.bincount(index, minlength=num_nodes).clamp(min=1).to(out.dtype)
        out = out / count.view(-1, *([1] * (messages.dim() - 1)))
    return out


def spmm(adj: Adjacency, x: Tensor, edge_weight: Tensor | None = None, reduce: str = "sum") -> Tensor:
    r"""Linear neighbourhood aggregation :math:`\mathbf{y}_i = \bigoplus_{j \to i} w_{ji}\, \mathbf{x}_j`.

    Args:
        adj: the graph (:func:`adjacency`).
        x: ``[num_src, C]`` or ``[num_src, H, C]`` source features.
        edge_weight: ``[E]`` per-edge weights in edge order (ones when ``None``), or ``[E, H]`` per-head weights
            with ``x`` of shape ``[num_src, H, C]``.
        reduce: ``"sum"`` or ``"mean"`` (sum divided by the in-degree; isolated nodes get 0).

    Returns:
        ``[num_dst, C]`` (or ``[num_dst, H, C]``).
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"spmm supports reduce='sum' or 'mean', got {reduce!r}")
    if edge_weight is not None and edge_weight.dim() == 2:
        if is_deterministic() or adj.num_edges * math.prod(x.shape[1:]) >= PER_HEAD_MIN_MESSAGES:
            # one CSR product per head: no [E, H, C] message tensor, no atomics in any backward
            heads = [spmm(adj, x[:, h], edge_weight[:, h], reduce) for h in range(edge_weight.size(1))]
            return torch.stack(heads, dim=1)
        # small graphs: one gather of [E, H, C] messages and one reduction (fewer passes than H products)
        messages = x.index_select(0, adj.edge_index[0]) * edge_weight.to(x.dtype).unsqueeze(-1)
        return reduce_edges(messages, adj.edge_index[1], adj.num_dst, reduce, adj=adj)
    # weighted sums (GCN) take the CSR product even on a graph's first use: a 4-layer GCN on new 128-molecule batches
    # measured 1.21-1.32x PyG's speed that way, 1.08-1.13x when its first layer gathered and scaled [E, C] messages
    first = edge_weight is None and adj.scatter_first(math.prod(x.shape[1:]))
    if first or not use_csr_path() or not _csr_kernel_for(x):
        src, dst = adj.edge_index[0], _long(adj.edge_index[1])
        messages = x.index_select(0, src)
        if edge_weight is not None:
            messages = messages * edge_weight.view(-1, *([1] * (x.dim() - 1)))
        if first:
            return _index_sum(messages, dst, adj.num_dst, reduce)
        return scatter(messages, dst, dim=0, dim_size=adj.num_dst, reduce=reduce)
    shape = x.shape
    flat = x.reshape(shape[0], math.prod(shape[1:]))  # explicit width: a graph may have 0 nodes
    values = (torch.ones(adj.num_edges, dtype=x.dtype, device=x.device) if edge_weight is None
              else edge_weight.to(x.dtype).index_select(0, adj.perm))
    out = torch.ops.gdl_graphs.csr_spmm(*adj.graph, values, flat.contiguous())
    if reduce == "mean":
        out = out / adj.in_degree.clamp(min=1).to(out.dtype).unsqueeze(-1)
    return out.reshape(adj.num_dst, *shape[1:])


# ----------------------------------------------------------------------------------------------------------------
# Edge-message reduction
# ----------------------------------------------------------------------------------------------------------------
def reduce_edges(messages: Tensor, index: Tensor, num_nodes: int, reduce: str = "sum",
                 adj: Adjacency | None = None) -> Tensor:
    r"""Reduce per-edge messages onto their target nodes.

    .. math::
        \mathbf{h}_i = \bigoplus_{e \,:\, \mathrm{index}_e = i} \mathbf{m}_e

    Args:
        messages: ``[E, *]`` one message per edge.
        index: LongTensor ``[E]``, the target node of each edge.
        num_nodes: number of target nodes ``N`` (nodes receiving no message get 0).
        reduce: one of ``"sum"``, ``"mean"``, ``"min"``, ``"max"``, ``"mul"``.
        adj: the graph's :class:`Adjacency` when the caller has it (its targets must be ``index``); sums and means
            then take the CSR path. Without it, deterministic mode sorts the edges once; otherwise scatter.

    Returns:
        ``[N, *]``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    index = _long(index)
    if (reduce not in ("sum", "mean") or messages.size(0) == 0 or not use_csr_path()
            or not _csr_kernel_for(messages)):
        return scatter(messages, index, dim=0, dim_size=num_nodes, reduce=reduce)
    if adj is None:
        if not is_deterministic():
            return scatter(messages, index, dim=0, dim_size=num_nodes, reduce=reduce)
        adj = Adjacency(torch.stack([index, index]), num_nodes, num_nodes)
    if adj.index_ops_pay(math.prod(messages.shape[1:])):
        return _index_sum(messages, index, num_nodes, reduce)
    shape = messages.shape
    flat = messages.reshape(shape[0], math.prod(shape[1:])).contiguous()
    out = torch.ops.gdl_graphs.incidence_sum(*adj.graph, index, flat, True)
    if reduce == "mean":
        out = out / adj.in_degree.clamp(min=1).to(out.dtype).unsqueeze(-1)
    return out.reshape(num_nodes, *shape[1:])


def gather_edges(adj: Adjacency, values: Tensor, by_target: bool) -> Tensor:
    r"""Node values per edge, :math:`\mathbf{v}_{\mathrm{dst}(e)}` (``by_target``) or :math:`\mathbf{v}_{\mathrm{src}(e)}`:
    ``values`` ``[N, *]`` -> ``[E, *]`` in edge order, as ``values.index_select(0, edge_index[1 or 0])``. Its
    gradient is a sum over each node's edges on the graph's incidence matrix (one CSR product) instead of the
    scatter that Inductor generates for an inlined gather's backward: compiled GAT fwd+bwd on 10k / 200k (2 threads)
    took 49.0 ms with it and 76.7 ms with plain ``index_select`` gathers (medians of 6 rounds, both in one run)."""
    index = adj.edge_index[1 if by_target else 0]
    if (not use_csr_path() or not _csr_kernel_for(values) or adj.num_edges == 0
            or adj.index_ops_pay(math.prod(values.shape[1:]))):
        return values.index_select(0, index)
    flat = values.reshape(values.size(0), math.prod(values.shape[1:]))
    out = torch.ops.gdl_graphs.edge_gather(*adj.graph, _long(index), flat.contiguous(), by_target)
    return out.reshape(adj.num_edges, *values.shape[1:])


def reduce_sorted(messages: Tensor, adj: Adjacency, reduce: str = "sum") -> Tensor:
    r"""Reduce messages that are already in CSR order (grouped by target, ``messages[k]`` for edge ``adj.perm[k]``).

    One pass over contiguous segments (``torch.segment_reduce``), no scatter: a layer that computes its messages
    from ``edge_index[:, adj.perm]`` gets them in this order for the cost of permuting the indices. Nodes without
    incoming edges get 0, as with :func:`reduce_edges`.

    Args:
        messages: ``[E, *]`` in CSR order.
        adj: the graph (:func:`adjacency`).
        reduce: ``"sum"``, ``"mean"``, ``"min"`` or ``"max"``.

    Returns:
        ``[num_dst, *]``.
    """
    if reduce not in ("sum", "mean", "min", "max"):
        raise ValueError(f"reduce_sorted supports reduce='sum', 'mean', 'min' or 'max', got {reduce!r}")
    degree = adj.in_degree.long()
    if reduce in ("min", "max"):
        return _SegmentExtreme.apply(messages, degree, reduce)
    out = torch.segment_reduce(messages, "sum", lengths=degree, axis=0, unsafe=True)
    if reduce == "mean":  # (segment_reduce's own mean is NaN for an empty segment)
        out = out / degree.clamp(min=1).to(out.dtype).view(-1, *([1] * (messages.dim() - 1)))
    return out


class _SegmentExtreme(torch.autograd.Function):
    """Segment min/max with the gradient of ``scatter_reduce(..., include_self=False)`` (PyG's scatter), which
    ``torch.segment_reduce``'s own backward does not give: it hands the full gradient to each of several equal
    extremes that are not adjacent in the segment instead of sharing it. Shared here exactly as scatter does,
    including its count of the zero-initialised output as one more tie when the extreme is exactly 0 (torch 2.13),
    so gradients equal PyG's."""

    @staticmethod
    def forward(ctx, messages: Tensor, degree: Tensor, reduce: str) -> Tensor:
        out = torch.segment_reduce(messages, reduce, lengths=degree, axis=0, unsafe=True)
        out = out.masked_fill((degree == 0).view(-1, *([1] * (messages.dim() - 1))), 0.0)  # empty: +-inf -> 0
        ctx.save_for_backward(messages, degree, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        messages, degree, out = ctx.saved_tensors
        row = torch.repeat_interleave(torch.arange(degree.numel(), device=degree.device), degree,
                                      output_size=messages.size(0))
        hit = (messages == out.index_select(0, row)).to(grad.dtype)
        ties = torch.segment_reduce(hit, "sum", lengths=degree, axis=0, unsafe=True) + (out == 0).to(grad.dtype)
        return hit * (grad / ties.clamp(min=1)).index_select(0, row), None, None


def _csr_kernel_for(x: Tensor) -> bool:
    """Whether sparse CSR products exist for ``x``'s dtype on its device (MKL on CPU has none for half types,
    which autocast produces)."""
    return x.device.type != "cpu" or x.dtype in (torch.float32, torch.float64)


def _long(index: Tensor) -> Tensor:
    """``index`` as int64: scatter reductions with int32 indices give wrong gradients (torch 2.13)."""
    return index if index.dtype == torch.int64 else index.long()


def softmax_edges(scores: Tensor, index: Tensor, num_nodes: int, adj: Adjacency | None = None) -> Tensor:
    r"""Softmax of edge scores over the incoming edges of each target node.

    .. math::
        \alpha_e = \frac{\exp(s_e - \max_{e' \to i} s_{e'})}{\sum_{e' \to i} \exp(s_{e'} - \max_{e' \to i} s_{e'})}
        \quad\text{for } e \to i

    Scores of ``-inf`` get weight 0 (used to mask edges without changing shapes). Args as in :func:`reduce_edges`;
    ``scores`` is ``[E]`` or ``[E, H]``.
    """
    if scores.size(0) == 0:
        return scores
    index = _long(index)
    peak = scatter(scores.detach(), index, dim=0, dim_size=num_nodes, reduce="max")
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    weights = (scores - peak.index_select(0, index)).exp()
    total = reduce_edges(weights, index, num_nodes, "sum", adj) + 1e-16
    return weights / (total.index_select(0, index) if adj is None else gather_edges(adj, total, by_target=True))


def with_self_loops(adj: Adjacency) -> tuple[Adjacency, Tensor]:
    """The graph with one self-loop appended per node, and the mask of the original edges that were self-loops.

    Edges ``0..E-1`` keep their order and loops ``E..E+N-1`` follow in node order, so per-edge tensors extend by
    concatenation. Layers that *replace* existing self-loops (PyG's ``remove_self_loops`` + ``add_self_loops``)
    give the masked edges zero weight instead of removing them: shapes stay static (compile-friendly) and results
    are the same. Cached on ``adj``.
    """
    cached = adj.derived.get("self_loops")  # (augmented edges, loop mask, their built structure): never adj.key
    if cached is None:
        if adj.num_src != adj.num_dst:
            raise ValueError("self-loops need a square adjacency (num_src == num_dst)")
        if adj.self_loops:
            raise ValueError("the graph already has its self-loops appended")
        loops = torch.arange(adj.num_dst, device=adj.edge_index.device, dtype=adj.edge_index.dtype)
        augmented = torch.cat([adj.edge_index, loops.unsqueeze(0).expand(2, -1)], dim=1)
        cached = (augmented, adj.edge_index[0] == adj.edge_index[1], _Built())
        if not _compiling():
            adj.derived["self_loops"] = cached
    augmented, excluded, built = cached
    return (Adjacency(augmented, adj.num_src, adj.num_dst, key=adj.key, self_loops=True, built=built,
                      first_use=adj.first_use), excluded)
