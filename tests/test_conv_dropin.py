"""Drop-in equivalence: every layer docs/layers.md calls a drop-in, on every input format PyG accepts, in float32
and float64, gives PyG's outputs and gradients (1e-6 / 1e-10) or refuses with a ValueError naming the argument.

The rule checked for each (layer, input, dtype): run PyG's namesake and ours with the same weights on the same
inputs. If PyG raises, ours must raise too. If PyG answers, ours must give the same answer, unless the case is a
declared refusal (``REFUSALS``), where ours must raise a ValueError whose message names the argument.
"""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg
from torch import nn
from torch_geometric import EdgeIndex
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csc_tensor, to_torch_csr_tensor

import gdl_graphs.nn as gnn
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv import gat

IN, OUT, EDGE, HEADS = 4, 6, 3, 2
DEG = torch.tensor([1, 2, 3, 1])
N = 6
# duplicate edge 1 -> 0 (a sparse adjacency sums it into a value of 2), self-loops 2 -> 2 and 4 -> 4, node 5 isolated
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 3, 3, 4, 0, 2, 4],
                           [1, 0, 0, 2, 2, 4, 3, 2, 1, 4]])


def _mlp(width=IN):
    return nn.Sequential(nn.Linear(width, 5), nn.ReLU(), nn.Linear(5, OUT))


# name -> (factory(lib, **kwargs), edge features: None | "attr" (required) | "optional")
LAYERS = {
    "GCNConv": (lambda m, **kw: m.GCNConv(IN, OUT, **kw), None),
    "GCNConv-improved": (lambda m, **kw: m.GCNConv(IN, OUT, improved=True, **kw), None),
    "GCNConv-cached": (lambda m, **kw: m.GCNConv(IN, OUT, cached=True, **kw), None),
    "GINConv": (lambda m, **kw: m.GINConv(_mlp(), train_eps=True, **kw), None),
    "GINEConv": (lambda m, **kw: m.GINEConv(_mlp(), edge_dim=EDGE, **kw), "attr"),
    "SAGEConv": (lambda m, **kw: m.SAGEConv(IN, OUT, **kw), None),
    "SAGEConv-sum-project": (lambda m, **kw: m.SAGEConv(IN, OUT, aggr="sum", project=True, normalize=True, **kw),
                             None),
    "GATConv": (lambda m, **kw: m.GATConv(IN, OUT, heads=HEADS, **kw), None),
    "GATConv-edge": (lambda m, **kw: m.GATConv(IN, OUT, heads=HEADS, edge_dim=EDGE, concat=False, residual=True,
                                               **kw), "optional"),
    "GATv2Conv": (lambda m, **kw: m.GATv2Conv(IN, OUT, heads=HEADS, **kw), None),
    "GATv2Conv-edge": (lambda m, **kw: m.GATv2Conv(IN, OUT, heads=HEADS, edge_dim=EDGE, fill_value=0.5, **kw),
                       "optional"),
    "NNConv": (lambda m, **kw: m.NNConv(IN, OUT, nn.Linear(EDGE, IN * OUT), aggr="mean", **kw), "attr"),
    "PNAConv": (lambda m, **kw: m.PNAConv(IN, OUT, ["mean", "min", "max", "std"],
                                          ["identity", "amplification", "attenuation", "linear", "inverse_linear"],
                                          DEG, edge_dim=EDGE, **kw), "attr"),
}


def _sparse(edge_index, num_nodes, layout):
    """PyG's ``adj_t`` of ``edge_index`` (rows are targets), duplicate edges summed into values of 2."""
    size = (num_nodes, num_nodes)
    if layout == "csr":
        return to_torch_csc_tensor(edge_index, size=size).t()
    if layout == "csc":
        return to_torch_csr_tensor(edge_index, size=size).t()
    return to_torch_coo_tensor(edge_index.flip(0), size=size).coalesce()


class Case:
    """One input format: how to build the layer (extra kwargs) and its call arguments."""

    def __init__(self, name, layer_kwargs=None, x_shape=(N, IN), edge_index=EDGE_INDEX, call=None, prepare=None,
                 reference_edge_index=None):
        self.name, self.layer_kwargs, self.x_shape = name, layer_kwargs or {}, x_shape
        self.edge_index, self.call, self.prepare = edge_index, call, prepare
        self.reference_edge_index = reference_edge_index  # what PyG gets instead, where PyG itself is wrong


def _edge_attr(num, dtype):
    return torch.randn(num, EDGE, generator=torch.Generator().manual_seed(3), dtype=dtype)


def _hook(module, inputs, output):
    return output * 2.0


def _add_hook(layer):
    layer.register_propagate_forward_hook(_hook)


def _add_explain_mask(layer):
    # as GNNExplainer does it (torch_geometric.explain.algorithm.utils.set_masks), with a mask over the edges
    from torch_geometric.explain.algorithm.utils import set_masks
    mask = torch.nn.Parameter(torch.linspace(-1, 1, EDGE_INDEX.size(1), dtype=next(layer.parameters()).dtype))
    set_masks(layer, mask, EDGE_INDEX, apply_sigmoid=True)


CASES = [
    Case("edge_index"),
    # PyG 2.8.1 on torch 2.13 accepts int32 indices but its scatter gives wrong gradients of x (GIN, SAGE, NNConv,
    # PNA): the reference is PyG on the same graph with int64 indices
    Case("edge_index-int32", edge_index=EDGE_INDEX.int(), reference_edge_index=EDGE_INDEX),
    Case("EdgeIndex", edge_index=EdgeIndex(EDGE_INDEX, sparse_size=(N, N))),
    Case("sparse-csr", edge_index=_sparse(EDGE_INDEX, N, "csr")),
    Case("sparse-csc", edge_index=_sparse(EDGE_INDEX, N, "csc")),
    Case("sparse-coo", edge_index=_sparse(EDGE_INDEX, N, "coo")),
    Case("bipartite", call="bipartite"),
    Case("size", call="size"),
    Case("static-graph", x_shape=(2, N, IN)),
    Case("flow-target_to_source", layer_kwargs={"flow": "target_to_source"}),
    Case("return_attention_weights", call="attention"),
    Case("return_attention_weights-sparse", edge_index=_sparse(EDGE_INDEX, N, "csr"), call="attention"),
    Case("no-nodes", x_shape=(0, IN), edge_index=torch.empty(2, 0, dtype=torch.long)),
    Case("no-edges", edge_index=torch.empty(2, 0, dtype=torch.long)),
    Case("decomposed_layers", layer_kwargs={"decomposed_layers": 2}),
    Case("propagate-hook", prepare=_add_hook),
    Case("explain-mask", prepare=_add_explain_mask),
]

# (layer, case) pairs where ours refuses an input PyG answers, with the argument the error must name
REFUSALS = {
    ("PNAConv", "static-graph"): "x must have shape",  # PyG flattens the batch into the node dimension
}


def _num_edges(edge_index):
    if isinstance(edge_index, torch.Tensor) and edge_index.layout != torch.strided:
        return edge_index._nnz()
    return edge_index.size(1)


def _arguments(case: Case, edge_kind, dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*case.x_shape, generator=g, dtype=dtype)
    edge_index = case.edge_index
    kwargs = {}
    if case.call == "bipartite":
        x = (x, torch.randn(4, IN, generator=g, dtype=dtype))
        edge_index = EDGE_INDEX[:, EDGE_INDEX[1] < 4]
    elif case.call == "size":
        kwargs["size"] = (N, N)
    elif case.call == "attention":
        kwargs["return_attention_weights"] = True
    args = [x, edge_index]
    if edge_kind is not None:
        args.append(_edge_attr(_num_edges(edge_index), dtype))
    return args, kwargs


def _floats(value):
    """The floating-point tensors of an output (sparse ones densified), in order."""
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _floats(v)]
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            value = value.to_dense()
        return [value] if value.is_floating_point() else [value.as_subclass(torch.Tensor)]
    return []


def _evaluate(layer, args, kwargs):
    """Output tensors and gradients of inputs and parameters for a fixed cotangent (None where there is none)."""
    args = [a.clone().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
            for a in args]
    if isinstance(args[0], tuple):
        args[0] = tuple(a.clone().requires_grad_() for a in args[0])
    out = layer(*args, **kwargs)
    outputs = _floats(out)
    generator = torch.Generator().manual_seed(5)
    loss = sum((o * torch.randn(o.shape, generator=generator, dtype=o.dtype)).sum()
               for o in outputs if o.is_floating_point() and o.requires_grad)
    inputs = [a for a in _flatten(args) if isinstance(a, torch.Tensor) and a.requires_grad]
    params = [p for _, p in sorted(layer.named_parameters())]
    grads = torch.autograd.grad(loss, inputs + params, allow_unused=True) if torch.is_tensor(loss) else []
    return [o.detach() for o in outputs], list(grads)


def _flatten(args):
    for a in args:
        if isinstance(a, tuple):
            yield from a
        else:
            yield a


def _build(name, case, dtype):
    factory, _ = LAYERS[name]
    torch.manual_seed(0)
    ours = factory(gnn, **case.layer_kwargs).to(dtype)
    theirs = factory(pyg, **case.layer_kwargs).to(dtype)
    theirs.load_state_dict(ours.state_dict())
    for layer in (ours, theirs):
        if case.prepare is not None:
            case.prepare(layer)
    return ours, theirs


@pytest.fixture(params=["first-use", "csr"])
def graph_use(request, monkeypatch):
    """Each comparison on both paths: a graph's first use (small graphs: gathers and ``index_add_``) and the CSR
    structure that a graph used again builds (forced here for every use)."""
    if request.param == "csr":
        monkeypatch.setattr(aggregate, "SCATTER_MAX_MESSAGES", 0)
    return request.param


FLOAT32_TOLERANCE = {"PNAConv": 1e-4}
"""float32 tolerances above 1e-6: PNA's split pre- and post-network products are reassociated (float64 pins them
to 1e-10 here; tests/test_conv_pna_mpnn_gated.py bounds their float32 error by twice PyG's own)."""


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("name", list(LAYERS))
def test_matches_pyg_or_refuses(name, case, dtype, graph_use):
    ours, theirs = _build(name, case, dtype)
    args, kwargs = _arguments(case, LAYERS[name][1], dtype)
    reference_args = list(args)
    if case.reference_edge_index is not None:
        reference_args[1] = case.reference_edge_index
    try:
        expected = _evaluate(theirs, reference_args, kwargs)
    except Exception:  # PyG does not take this input: neither may we
        with pytest.raises(Exception):
            _evaluate(ours, args, kwargs)
        return
    refusal = REFUSALS.get((name, case.name))
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            _evaluate(ours, args, kwargs)
        return
    outputs, grads = _evaluate(ours, args, kwargs)
    tol = FLOAT32_TOLERANCE.get(name, 1e-6) if dtype == torch.float32 else 1e-10
    assert len(outputs) == len(expected[0])
    for a, b in zip(outputs, expected[0]):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    for a, b in zip(grads, expected[1]):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, atol=tol, rtol=tol)


ATTENTION = ["GATConv", "GATConv-edge", "GATv2Conv", "GATv2Conv-edge"]


@pytest.mark.parametrize("sddmm", ["sampled", "gathered"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("name", ATTENTION)
def test_attention_on_per_head_products_matches_pyg(name, case, sddmm, monkeypatch):
    # the large-graph path (one CSR product per head, GATv2's scores in chunks), forced on the small test graph;
    # the edge-value gradients by sampled_addmm, or by the chunked gather used where it has no kernel
    monkeypatch.setattr(aggregate, "PER_HEAD_MIN_MESSAGES", 0)
    if sddmm == "gathered":
        monkeypatch.setattr(aggregate, "_sampled_kernel_for", lambda x: False)
        monkeypatch.setattr(aggregate, "SDDMM_CHUNK_ELEMENTS", 8)
    monkeypatch.setattr(gat, "SCORE_CHUNK_ELEMENTS", 64)
    monkeypatch.setattr(aggregate, "SCATTER_MAX_MESSAGES", 0)
    test_matches_pyg_or_refuses(name, case, torch.float64, "csr")


def test_every_drop_in_is_covered():
    """Each layer docs/layers.md calls a drop-in appears in the suite (and nothing else claims a PyG namesake)."""
    covered = {name.split("-")[0] for name in LAYERS}
    assert covered == {"GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv", "GATv2Conv", "NNConv", "PNAConv"}
    for name in covered:
        assert getattr(gnn, name).__mro__[1:].count(getattr(pyg, name)) == 1


@pytest.mark.parametrize("name", list(LAYERS))
def test_repr_is_pygs(name):
    factory, _ = LAYERS[name]
    assert repr(factory(gnn)) == repr(factory(pyg))


def test_edge_network_conv_is_nnconv():
    assert gnn.EdgeNetworkConv is gnn.NNConv
    assert repr(gnn.NNConv(2, 3, nn.Linear(1, 6))).startswith("NNConv(2, 3, aggr=add")


# ----------------------------------------------------------------------------------------------------------------
# PyG machinery on our layers: GNNExplainer, hooks at every stage
# ----------------------------------------------------------------------------------------------------------------
def test_gnn_explainer_with_edge_masks_runs_on_our_layers_as_on_pygs():
    from torch_geometric.explain import Explainer, GNNExplainer

    class Net(nn.Module):
        def __init__(self, lib):
            super().__init__()
            self.conv1, self.conv2 = lib.GCNConv(IN, 8), lib.GATConv(8, OUT, heads=1)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    x = torch.randn(N, IN, generator=torch.Generator().manual_seed(0))
    masks = []
    for lib in (gnn, pyg):
        torch.manual_seed(0)
        model = Net(lib)
        if lib is pyg:
            model.load_state_dict(ours_state)
        ours_state = model.state_dict()
        explainer = Explainer(model, GNNExplainer(epochs=5), explanation_type="model", edge_mask_type="object",
                              node_mask_type="attributes",
                              model_config=dict(mode="multiclass_classification", task_level="node",
                                                return_type="raw"))
        torch.manual_seed(1)
        explanation = explainer(x, EDGE_INDEX, index=1)
        assert explanation.edge_mask.shape == (EDGE_INDEX.size(1),)
        masks.append(explanation.edge_mask)
    torch.testing.assert_close(masks[0], masks[1], atol=1e-5, rtol=1e-5)


def test_message_and_aggregate_hooks_fire():
    layer = gnn.SAGEConv(IN, OUT)
    seen = []
    layer.register_message_forward_hook(lambda module, inputs, out: seen.append("message"))
    layer.register_aggregate_forward_hook(lambda module, inputs, out: seen.append("aggregate"))
    layer(torch.randn(N, IN), EDGE_INDEX)
    assert seen == ["message", "aggregate"]


# ----------------------------------------------------------------------------------------------------------------
# torch.compile: no graph breaks, the CSR operators stay in the compiled graph, same outputs and gradients
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv", "GATConv-edge",
                                  "GATv2Conv-edge", "NNConv", "PNAConv"])
def test_compiled_fast_path_has_no_graph_breaks_and_matches_eager(name):
    import torch._dynamo

    factory, edge_kind = LAYERS[name]
    torch.manual_seed(0)
    layer = factory(gnn)
    args, _ = _arguments(CASES[0], edge_kind, torch.float32)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(layer)(*args)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    targets = {str(node.target) for graph in explanation.graphs for node in graph.graph.nodes}
    assert any(t.startswith("gdl_graphs.") for t in targets), "the compiled graph lost the CSR operators"
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    (out_c, *grads_c) = _evaluate(compiled, args, {})[0] + _evaluate(compiled, args, {})[1]
    (out_e, *grads_e) = _evaluate(layer, args, {})[0] + _evaluate(layer, args, {})[1]
    torch.testing.assert_close(out_c, out_e, atol=1e-6, rtol=1e-6)
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["GATConv", "GATv2Conv"])
def test_compiled_attention_weights_are_pygs(name):
    """return_attention_weights under compile gives PyG's edge list (PyG's path: the list's size depends on data)."""
    factory, _ = LAYERS[name]
    torch.manual_seed(0)
    layer = factory(gnn)
    reference = factory(pyg)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(N, IN)
    out, (edges, alpha) = torch.compile(layer, backend="aot_eager")(x, EDGE_INDEX, return_attention_weights=True)
    out_r, (edges_r, alpha_r) = reference(x, EDGE_INDEX, return_attention_weights=True)
    assert torch.equal(edges, edges_r)
    torch.testing.assert_close(alpha, alpha_r, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out, out_r, atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Bad layer inputs (issue 16): a ValueError naming the argument, in every conv layer
# ----------------------------------------------------------------------------------------------------------------
ALL_LAYERS = {**{name: LAYERS[name] for name in ("GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv-edge",
                                                  "GATv2Conv-edge", "NNConv", "PNAConv")},
              "MPNNConv": (lambda m, **kw: m.MPNNConv(IN, IN, edge_dim=EDGE), "attr"),
              "GatedGCNConv": (lambda m, **kw: m.GatedGCNConv(IN, OUT, edge_dim=EDGE, residual=False), "attr"),
              "EdgeGCNConv": (lambda m, **kw: m.EdgeGCNConv(IN, OUT, edge_dim=EDGE), "attr")}


def _bad_call(name, mutate):
    factory, edge_kind = ALL_LAYERS[name]
    layer = factory(gnn)
    args, _ = _arguments(CASES[0], edge_kind, torch.float32)
    return layer, mutate(list(args))


BAD_INPUTS = {
    "float64 x": (lambda a: [a[0].double(), *a[1:]], r"x has dtype torch.float64, but \w+'s parameters are "
                                                      r"torch.float32"),
    "wrong width": (lambda a: [a[0][:, :3], *a[1:]], r"x has 3 features, but the layer was built with"),
    "integer x": (lambda a: [a[0].long(), *a[1:]], r"x must be a floating-point tensor"),
    "x on another device": (lambda a: [a[0].to("meta"), *a[1:]], r"x is on meta, but \w+'s parameters are on cpu"),
    "edge_index on another device": (lambda a: [a[0], a[1].to("meta"), *a[2:]], r"edge_index is on meta"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_bad_layer_input_names_the_argument(name, bad):
    mutate, message = BAD_INPUTS[bad]
    layer, args = _bad_call(name, mutate)
    with pytest.raises(ValueError, match=message):
        layer(*args)


@pytest.mark.parametrize("name", [n for n, (_, kind) in ALL_LAYERS.items() if kind == "attr"] + ["GATConv-edge"])
def test_float64_edge_attr_names_edge_attr(name):
    layer, args = _bad_call(name, lambda a: [a[0], a[1], a[2].double()])
    with pytest.raises(ValueError, match="edge_attr has dtype torch.float64"):
        layer(*args)


def test_gcn_edge_weight_of_another_dtype_is_refused():
    """PyG would return a float64 output for float32 x and float64 weights; ours refuses rather than differ."""
    x = torch.randn(N, IN)
    with pytest.raises(ValueError, match="edge_weight has dtype torch.float64, but x has torch.float32"):
        gnn.GCNConv(IN, OUT)(x, EDGE_INDEX, torch.rand(EDGE_INDEX.size(1), dtype=torch.float64))
    with pytest.raises(ValueError, match="edge_weight must be a floating-point tensor"):
        gnn.GCNConv(IN, OUT)(x, EDGE_INDEX, torch.ones(EDGE_INDEX.size(1), dtype=torch.long))


def test_gin_width_is_read_from_its_mlp_only_when_it_can_be():
    class Custom(nn.Module):  # the first Linear registered is not the one applied first: no width check
        def __init__(self):
            super().__init__()
            self.late, self.early = nn.Linear(OUT, OUT), nn.Linear(IN, OUT)

        def forward(self, x):
            return self.late(self.early(x))

    assert gnn.GINConv(Custom())(torch.randn(N, IN), EDGE_INDEX).shape == (N, OUT)
    with pytest.raises(ValueError, match="x has 3 features"):
        gnn.GINConv(pyg.MLP([IN, 5, OUT]))(torch.randn(N, 3), EDGE_INDEX)


def test_autocast_inputs_are_not_refused_for_their_dtype():
    layer = gnn.GCNConv(IN, OUT)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(N, IN).bfloat16(), EDGE_INDEX)
    assert out.shape == (N, OUT)


def test_sparse_node_features_take_pygs_path():
    x = torch.randn(N, IN).relu().to_sparse()
    torch.manual_seed(0)
    ours, theirs = gnn.GCNConv(IN, OUT), pyg.GCNConv(IN, OUT)
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x, EDGE_INDEX), theirs(x, EDGE_INDEX), atol=1e-6, rtol=1e-6)


def test_settings_changed_after_construction_are_honoured():
    """PyG's own tests switch ``flow`` and ``decomposed_layers`` on a built layer: so may users."""
    x = torch.randn(N, IN)
    torch.manual_seed(0)
    ours, theirs = gnn.GCNConv(IN, OUT), pyg.GCNConv(IN, OUT)
    theirs.load_state_dict(ours.state_dict())
    for layer in (ours, theirs):
        layer.flow, layer.decomposed_layers = "target_to_source", 2
    torch.testing.assert_close(ours(x, EDGE_INDEX), theirs(x, EDGE_INDEX), atol=1e-6, rtol=1e-6)


def _script(layer):
    """``torch.jit.script(layer)``, or the exception it raised."""
    try:
        return torch.jit.script(layer)
    except Exception as error:  # the comparison below needs PyG's failure, whatever it is
        return error


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("decomposed", [1, 2], ids=["plain", "decomposed_layers"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_torchscript_gives_pygs_scripted_layer(name, decomposed):
    """``torch.jit.script`` of a drop-in scripts PyG's layer holding the drop-in's parameters: it scripts wherever
    PyG's layer does (PyG 2.8.1's GAT and GATv2 do not, on torch 2.13: then ours fails alike) and gives its answer."""
    case = Case("edge_index", layer_kwargs={"decomposed_layers": decomposed})
    ours, theirs = _build(name, case, torch.float32)
    args, _ = _arguments(case, LAYERS[name][1], torch.float32)
    expected, scripted = _script(theirs), _script(ours)
    if isinstance(expected, Exception):
        assert type(scripted) is type(expected)
        return
    assert not isinstance(scripted, Exception), scripted
    assert type(ours).__module__.startswith("gdl_graphs.")  # the scripted layer is a copy; ours is unchanged
    torch.testing.assert_close(scripted(*args), expected(*args), atol=1e-6, rtol=1e-6)
    with torch.no_grad():  # the copy holds the layer's own parameters, not a snapshot of them
        for parameter in [*ours.parameters(), *theirs.parameters()]:
            parameter.mul_(0.5)
    torch.testing.assert_close(scripted(*args), expected(*args), atol=1e-6, rtol=1e-6)


class _TwoGCNLayers(nn.Module):
    def __init__(self, lib):
        super().__init__()
        self.conv1, self.conv2 = lib.GCNConv(IN, OUT), lib.GCNConv(OUT, OUT)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_of_a_model_with_drop_ins():
    torch.manual_seed(0)
    ours, theirs = _TwoGCNLayers(gnn), _TwoGCNLayers(pyg)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(N, IN)
    scripted = torch.jit.script(ours)
    torch.testing.assert_close(scripted(x, EDGE_INDEX), theirs(x, EDGE_INDEX), atol=1e-6, rtol=1e-6)
    # torch keeps what it scripted in the model (its layers are now PyG's, on the same parameters): same answer
    torch.testing.assert_close(ours(x, EDGE_INDEX), theirs(x, EDGE_INDEX), atol=1e-6, rtol=1e-6)
