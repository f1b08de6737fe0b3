r"""Symmetry checks for graph and geometric layers.

A layer :math:`f` is *equivariant* to a group :math:`G` acting on its inputs and outputs when
:math:`f(g \cdot X) = g \cdot f(X)` for every :math:`g \in G`, and *invariant* when :math:`f(g \cdot X) = f(X)`.
These helpers draw random group elements, transform a PyG :class:`~torch_geometric.data.Data` (or
:class:`~torch_geometric.data.Batch`), run the module on both, and compare.

Groups:

* :math:`S_n` (node permutations): node-level attributes are reordered, ``edge_index`` is relabelled and the edge
  list is shuffled too (a layer must not depend on edge order). In a batch, nodes are permuted within each graph,
  so ``batch`` stays sorted as PyG requires.
* :math:`E(n) \times S_n`: positions :math:`x \mapsto Qx + t` with a random orthogonal :math:`Q` (rotations *and*
  reflections, :math:`\det Q = \pm 1`) and translation :math:`t`, vector attributes (velocities) :math:`v \mapsto Qv`,
  plus a node permutation.

Each output of the module is compared according to its *kind*:

``"node"``      permuted with the nodes (and E(n)-invariant),
``"edge"``      permuted with the edges,
``"graph"``     invariant,
``"position"``  transformed as a point: permuted, rotated/reflected and translated,
``"vector"``    transformed as a direction: permuted and rotated/reflected, not translated.

By default the kind is inferred from the output's shape (same shape as ``data.pos`` -> ``"position"`` in the E(n)
check; first dimension equal to the number of nodes -> ``"node"``, to the number of edges -> ``"edge"``; otherwise
``"graph"``); pass ``output_kinds`` to say it explicitly. The module is called as ``module(**inputs)`` where inputs
are the attributes of ``data`` named like the parameters of ``module.forward`` (``x``, ``edge_index``,
``edge_attr``, ``batch``, ``pos``, ...), or with the whole ``data`` when ``forward`` takes a single parameter
named ``data``; pass ``call=lambda module, data: ...`` for anything else.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Literal, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

OutputKind = Literal["node", "edge", "graph", "position", "vector"]
Call = Callable[[nn.Module, Data], Any]

_KINDS = ("node", "edge", "graph", "position", "vector")


# ----------------------------------------------------------------------------------------------------------------
# Group actions on a graph
# ----------------------------------------------------------------------------------------------------------------
def random_node_permutation(data: Data, generator: torch.Generator | None = None) -> Tensor:
    """A random permutation ``perm`` of the nodes (new node ``i`` is old node ``perm[i]``).

    In a batch (``data.batch`` present) nodes are only shuffled within their own graph.
    """
    n = data.num_nodes
    keys = torch.rand(n, generator=generator, dtype=torch.float64)
    batch = getattr(data, "batch", None)
    if batch is not None:
        keys = keys + batch.to(torch.float64).cpu()
    return torch.argsort(keys)


def permute_graph(data: Data, perm: Tensor, edge_perm: Tensor | None = None) -> Data:
    """Apply a node permutation (and optionally an edge reordering) to every attribute of ``data``.

    Args:
        data: the graph (or batch of graphs).
        perm: LongTensor [N]; new node ``i`` is old node ``perm[i]``.
        edge_perm: LongTensor [E]; new edge ``k`` is old edge ``edge_perm[k]``. ``None`` keeps the edge order.

    Returns:
        A shallow copy of ``data`` with node attributes reordered, ``edge_index`` relabelled, and edge attributes
        reordered.
    """
    out = data.clone()
    num_nodes = data.num_nodes
    device = data.edge_index.device if "edge_index" in data else perm.device
    perm = perm.to(device)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(num_nodes, device=device)
    for key, value in data.items():
        if not isinstance(value, Tensor) or key in ("edge_index", "ptr", "batch"):
            continue
        if data.is_node_attr(key):
            out[key] = value[perm.to(value.device)]
        elif edge_perm is not None and data.is_edge_attr(key):
            out[key] = value[edge_perm.to(value.device)]
    if "edge_index" in data:
        edge_index = inverse[data.edge_index]
        out.edge_index = edge_index if edge_perm is None else edge_index[:, edge_perm.to(device)]
    return out


def random_orthogonal(dim: int, reflection: bool, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> Tensor:
    """A Haar-random orthogonal ``[dim, dim]`` matrix with determinant ``-1`` if ``reflection`` else ``+1``."""
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if (torch.linalg.det(q) < 0) != reflection:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


# ----------------------------------------------------------------------------------------------------------------
# Calling a module and reading its outputs
# ----------------------------------------------------------------------------------------------------------------
def default_call(module: nn.Module, data: Data) -> Any:
    """Call ``module`` with the attributes of ``data`` named like the parameters of its ``forward``."""
    params = [p for p in inspect.signature(module.forward).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(params) == 1 and params[0].name == "data":
        return module(data)
    kwargs = {}
    for p in params:
        value = getattr(data, p.name, None) if p.name in data else None
        if value is not None:
            kwargs[p.name] = value
        elif p.default is inspect.Parameter.empty:
            raise TypeError(
                f"cannot call {type(module).__name__}: forward() needs '{p.name}', which data does not hold; "
                f"pass call=lambda module, data: module(...)")
    return module(**kwargs)


def _as_outputs(output: Any) -> list[tuple[str, Tensor]]:
    if isinstance(output, Tensor):
        return [("output", output)]
    if isinstance(output, dict):
        items = list(output.items())
    elif isinstance(output, (tuple, list)):
        items = [(f"output[{i}]", o) for i, o in enumerate(output)]
    else:
        raise TypeError(f"module returned {type(output).__name__}; expected a Tensor, or a tuple/list/dict of them")
    return [(str(name), o) for name, o in items if isinstance(o, Tensor)]


def _infer_kind(out: Tensor, data: Data, geometric: bool, pos_key: str) -> OutputKind:
    pos = getattr(data, pos_key, None) if geometric else None
    if pos is not None and out.shape == pos.shape:
        return "position"
    if out.dim() > 0 and out.size(0) == data.num_nodes:
        return "node"
    if out.dim() > 0 and "edge_index" in data and out.size(0) == data.edge_index.size(1):
        return "edge"
    return "graph"


def _kinds_for(outputs: list[tuple[str, Tensor]], output_kinds: Sequence[OutputKind] | OutputKind | None,
               data: Data, geometric: bool, pos_key: str) -> list[OutputKind]:
    if output_kinds is None:
        return [_infer_kind(o, data, geometric, pos_key) for _, o in outputs]
    kinds = [output_kinds] * len(outputs) if isinstance(output_kinds, str) else list(output_kinds)
    if len(kinds) != len(outputs):
        raise ValueError(f"output_kinds has {len(kinds)} entries but the module returned {len(outputs)} tensors")
    bad = [k for k in kinds if k not in _KINDS]
    if bad:
        raise ValueError(f"unknown output kind(s) {bad}; choose from {_KINDS}")
    if not geometric and any(k in ("position", "vector") for k in kinds):
        raise ValueError("'position'/'vector' outputs need assert_en_equivariant")
    return kinds


def _default_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    if dtype == torch.float64:
        return 1e-8, 1e-6
    if dtype == torch.float32:
        return 1e-4, 1e-4
    return 1e-2, 1e-2


# ----------------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------------
def _check(module: nn.Module, data: Data, *, geometric: bool, invariant: bool, call: Call | None,
           output_kinds, trials: int, seed: int, atol: float | None, rtol: float | None,
           pos_key: str, vector_keys: Iterable[str], translation_scale: float) -> float:
    if not isinstance(data, Data):
        raise TypeError(f"data must be a torch_geometric Data or Batch, got {type(data).__name__}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if geometric and getattr(data, pos_key, None) is None:
        raise ValueError(f"data has no '{pos_key}' attribute to rotate and translate")
    call = call or default_call
    generator = torch.Generator().manual_seed(seed)
    vector_keys = [k for k in vector_keys if getattr(data, k, None) is not None]

    was_training = module.training
    module.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            reference = _as_outputs(call(module, data))
            if not reference:
                raise TypeError("module returned no tensors to check")
            kinds = (["graph"] * len(reference) if invariant and output_kinds is None
                     else _kinds_for(reference, output_kinds, data, geometric, pos_key))
            if invariant and any(k != "graph" for k in kinds):
                raise ValueError(f"assert_permutation_invariant expects graph-level outputs, got kinds {kinds}")
            for trial in range(trials):
                perm = random_node_permutation(data, generator)
                num_edges = data.edge_index.size(1) if "edge_index" in data else 0
                edge_perm = torch.randperm(num_edges, generator=generator)
                moved = permute_graph(data, perm, edge_perm)
                q = t = None
                if geometric:
                    pos = data[pos_key]
                    dim = pos.size(-1)
                    q = random_orthogonal(dim, reflection=trial % 2 == 1, generator=generator).to(pos.dtype)
                    t = (torch.randn(dim, generator=generator, dtype=torch.float64) * translation_scale).to(pos.dtype)
                    q, t = q.to(pos.device), t.to(pos.device)
                    moved[pos_key] = moved[pos_key] @ q.T + t
                    for key in vector_keys:
                        moved[key] = moved[key] @ q.T.to(moved[key].dtype)
                outputs = _as_outputs(call(module, moved))
                if len(outputs) != len(reference):
                    raise AssertionError(f"module returned {len(outputs)} tensors on the transformed input but "
                                         f"{len(reference)} on the original")
                for (name, ref), (_, out), kind in zip(reference, outputs, kinds):
                    expected = _transform_output(ref, kind, perm, edge_perm, q, t)
                    worst = max(worst, _compare(name, kind, out, expected, trial, geometric, atol, rtol))
    finally:
        module.train(was_training)
    return worst


def _transform_output(ref: Tensor, kind: OutputKind, perm: Tensor, edge_perm: Tensor,
                      q: Tensor | None, t: Tensor | None) -> Tensor:
    if kind == "graph":
        return ref
    if kind == "edge":
        return ref[edge_perm.to(ref.device)]
    out = ref[perm.to(ref.device)]
    if kind == "position":
        out = out @ q.T.to(out.dtype) + t.to(out.dtype)
    elif kind == "vector":
        out = out @ q.T.to(out.dtype)
    return out


def _compare(name: str, kind: str, out: Tensor, expected: Tensor, trial: int, geometric: bool,
             atol: float | None, rtol: float | None) -> float:
    group = "E(n) x S_n" if geometric else "S_n"
    if out.shape != expected.shape:
        raise AssertionError(f"{name} ({kind}-level) changed shape under a {group} transformation: "
                             f"{tuple(expected.shape)} -> {tuple(out.shape)}")
    default_atol, default_rtol = _default_tolerance(expected.dtype)
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    if not out.is_floating_point():
        out, expected = out.double(), expected.double()
    diff = (out - expected).abs()
    error = float(diff.max()) if diff.numel() else 0.0
    bad = ~(diff <= atol + rtol * expected.abs())  # NaN counts as a violation
    if bool(bad.any()):
        relation = "invariant" if kind == "graph" else "equivariant"
        raise AssertionError(
            f"{group} symmetry violated: {name} ({kind}-level, shape {tuple(out.shape)}) is not {relation}; "
            f"max abs error {error:.3e} (atol {atol:g}, rtol {rtol:g}) in trial {trial}, "
            f"{int(bad.sum())} of {bad.numel()} entries off")
    return error


def assert_permutation_equivariant(module: nn.Module, data: Data, *, call: Call | None = None,
                                   output_kinds: Sequence[OutputKind] | OutputKind | None = None,
                                   trials: int = 3, seed: int = 0, atol: float | None = None,
                                   rtol: float | None = None) -> float:
    r"""Assert :math:`f(P \cdot G) = P \cdot f(G)` for random node permutations :math:`P` (and edge reorderings).

    Args:
        module: the layer or model; put in eval mode during the check (its mode is restored after).
        data: a :class:`~torch_geometric.data.Data` or :class:`~torch_geometric.data.Batch`.
        call: ``call(module, data) -> outputs``; by default the data attributes named like ``forward``'s
            parameters are passed as keywords.
        output_kinds: kind of each returned tensor (``"node"``, ``"edge"``, ``"graph"``); inferred from shapes
            when omitted.
        trials: number of random permutations tried.
        seed: seed of the random permutations.
        atol, rtol: tolerances, elementwise ``|f(PG) - Pf(G)| <= atol + rtol |Pf(G)|``. Default by dtype:
            ``1e-4, 1e-4`` for float32, ``1e-8, 1e-6`` for float64.

    Returns:
        The maximum absolute error seen over all outputs and trials.

    Raises:
        AssertionError: naming the failing output, its kind, the error size and the tolerance.
    """
    return _check(module, data, geometric=False, invariant=False, call=call, output_kinds=output_kinds,
                  trials=trials, seed=seed, atol=atol, rtol=rtol, pos_key="pos", vector_keys=(),
                  translation_scale=0.0)


def assert_permutation_invariant(module: nn.Module, data: Data, *, call: Call | None = None,
                                 trials: int = 3, seed: int = 0, atol: float | None = None,
                                 rtol: float | None = None) -> float:
    r"""Assert :math:`f(P \cdot G) = f(G)` for random node permutations :math:`P`; every output is graph-level.

    Arguments, return value and errors as in :func:`assert_permutation_equivariant`.
    """
    return _check(module, data, geometric=False, invariant=True, call=call, output_kinds=None,
                  trials=trials, seed=seed, atol=atol, rtol=rtol, pos_key="pos", vector_keys=(),
                  translation_scale=0.0)


def assert_en_equivariant(module: nn.Module, data: Data, *, call: Call | None = None,
                          output_kinds: Sequence[OutputKind] | OutputKind | None = None,
                          pos_key: str = "pos", vector_keys: Iterable[str] = ("vel",), trials: int = 4,
                          seed: int = 0, translation_scale: float = 10.0, atol: float | None = None,
                          rtol: float | None = None) -> float:
    r"""Assert equivariance to :math:`E(n) \times S_n`: rotations, reflections, translations and permutations.

    With :math:`g = (Q, t, P)`, positions map to :math:`P(XQ^\top + \mathbf{1}t^\top)` and vector attributes
    (``vector_keys``, e.g. velocities) to :math:`P V Q^\top`. Outputs of kind ``"position"`` must transform the
    same way, ``"vector"`` outputs without the translation, ``"node"`` outputs only permute (they are
    E(n)-invariant) and ``"graph"`` outputs are invariant. Odd-numbered trials use reflections
    (:math:`\det Q = -1`), so ``trials >= 2`` always covers both components of :math:`O(n)`.

    Args:
        pos_key: name of the coordinate attribute of ``data`` (shape ``[N, n]``).
        vector_keys: names of attributes that rotate but do not translate.
        translation_scale: standard deviation of the random translation.
        Others as in :func:`assert_permutation_equivariant`.

    Returns:
        The maximum absolute error seen over all outputs and trials.
    """
    return _check(module, data, geometric=True, invariant=False, call=call, output_kinds=output_kinds,
                  trials=trials, seed=seed, atol=atol, rtol=rtol, pos_key=pos_key, vector_keys=vector_keys,
                  translation_scale=translation_scale)
