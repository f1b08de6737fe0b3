r"""The blueprint model for graph and node tasks: encoder -> L x block -> invariant readout -> head.

.. math::
    \mathbf{h}^{(0)} = \operatorname{Enc}(\mathbf{x}), \qquad
    \mathbf{h}^{(\ell+1)} = \mathbf{h}^{(\ell)} + \operatorname{Drop}\big(\sigma\big(\operatorname{Norm}
        (\operatorname{Layer}(\mathbf{h}^{(\ell)}, \mathbf{e}, A))\big)\big), \qquad
    \hat{y} = \operatorname{MLP}\Big(\bigoplus_{i} \mathbf{h}^{(L)}_i\Big)

Node tasks drop the readout (the head is applied per node); graph tasks pool with sum / mean / max or Set2Set.
Options turn the blueprint into a paper's own model (no encoder, no head, no residual, input dropout, a readout over
every layer, one layer's weights at every step): the registry's recipes
(:class:`~gdl_graphs.models.registry.Recipe`, :mod:`gdl_graphs.models.recipes`) write papers' models as such
settings. The layers come from :mod:`gdl_graphs.nn` through the
:class:`~gdl_graphs.models.registry.LayerSpec` of a registered model,
which declares how each layer is built and called. Layers that bring their own residual and norm
(``transformer``, ``gps``) are used as whole blocks. A virtual node (Gilmer et al. 2017; OGB's
``-virtual`` models) adds one learned vector per graph to every node before each layer and is updated from the
sum of its graph's nodes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool
from torch_geometric.utils import degree

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT, PERMUTATION_INVARIANT
from gdl_graphs.models.registry import MODELS, LayerSpec
from gdl_graphs.nn.readout import Readout, Set2SetReadout
from gdl_graphs.nn.validation import check_positive_ints


class XavierEmbedding(nn.Embedding):
    """An embedding table initialised Xavier-uniform, as OGB's ``AtomEncoder`` / ``BondEncoder`` (entries of
    order ``1 / sqrt(size + channels)`` instead of :class:`torch.nn.Embedding`'s standard normal)."""

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)


EMBEDDING_INITS = {"normal": nn.Embedding, "xavier": XavierEmbedding}


class FeatureEncoder(nn.Module):
    """Embeds node or edge features to ``channels``: a sum of per-column embeddings for integer-coded features
    (like OGB's ``AtomEncoder``; ``init="xavier"`` initialises them as it does), a linear map for dense ones, one
    learned vector when there are none."""

    def __init__(self, in_channels: int, channels: int, vocab: tuple[int, ...] | None = None, init: str = "normal"):
        super().__init__()
        if init not in EMBEDDING_INITS:
            raise ValueError(f"embedding init must be one of {sorted(EMBEDDING_INITS)}, got {init!r}")
        self.in_channels, self.vocab = in_channels, vocab
        if vocab:
            self.tables = nn.ModuleList(EMBEDDING_INITS[init](size, channels) for size in vocab)
        elif in_channels > 0:
            self.linear = nn.Linear(in_channels, channels)
        else:
            self.constant = nn.Parameter(torch.randn(channels) * 0.1)

    def forward(self, x: Tensor | None, count: int) -> Tensor:
        if self.vocab:
            x = x.long().view(count, -1)
            return sum(table(x[:, i]) for i, table in enumerate(self.tables))
        if self.in_channels > 0:
            if x is None:
                raise ValueError(f"the model was built for {self.in_channels} input features but got none")
            return self.linear(x.float().view(count, -1))
        return self.constant.expand(count, -1)


HEADS = ("mlp", "linear", "mlp_readout", None)
ACTIVATIONS = {"relu": torch.relu, "elu": nn.functional.elu, "gelu": nn.functional.gelu, None: lambda h: h}
ENCODERS = (True, False, "mlp")


class MLPEncoder(nn.Module):
    """Errica et al.'s GIN input layer: the feature encoder followed by Norm-ReLU-Linear-Norm-ReLU."""

    def __init__(self, in_channels: int, channels: int, vocab: tuple[int, ...] | None = None, init: str = "normal"):
        super().__init__()
        self.features = FeatureEncoder(in_channels, channels, vocab, init)
        self.rest = nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(), nn.Linear(channels, channels),
                                  nn.BatchNorm1d(channels), nn.ReLU())

    def forward(self, x: Tensor | None, count: int) -> Tensor:
        return self.rest(self.features(x, count))


class GraphNet(nn.Module):
    r"""Encoder -> ``num_layers`` x [layer, norm, activation, dropout, residual] -> readout -> head.

    The defaults are the fair-budget blueprint (encoder, residual blocks, MLP head). The other options let a
    paper's own architecture be written as settings (see :mod:`gdl_graphs.models.recipes`): no encoder
    (``encoder=False``: the first layer reads the raw features), no head (``head=None``: the last layer outputs the
    classes, as Kipf & Welling's GCN and Velickovic et al.'s GAT), a readout over every layer's pooled
    representation (``readout_over="all_layers"``, Xu et al.'s GIN), dropout on the input, no residual.

    Args:
        layer: a registered model built on this blueprint (``"gin"``, ``"gps"``, ...), a
            :class:`~gdl_graphs.models.registry.LayerSpec`, or ``None`` with ``num_layers=0`` (no message passing:
            the structure-agnostic baseline of Errica et al. 2020, registered as ``mlp``).
        in_channels: node feature columns (0: none, a learned constant is used).
        out_channels: outputs per graph (or per node when ``level="node"``).
        hidden_channels: width of every hidden layer.
        num_layers: number of message-passing blocks.
        level: ``"graph"`` (pool, then head) or ``"node"`` (head per node).
        edge_dim: edge feature columns (0: none; edge-aware layers then get one learned edge vector).
        node_vocab, edge_vocab: category counts of integer-coded features (embedding tables instead of linear).
        readout: ``"sum"``, ``"mean"``, ``"max"`` or ``"set2set"`` (:class:`~gdl_graphs.nn.readout.Set2SetReadout`,
            ``readout_steps`` rounds; the head then reads ``2 * hidden_channels``).
        readout_steps: processing steps of the ``"set2set"`` readout.
        embedding_init: ``"normal"`` (:class:`torch.nn.Embedding`'s) or ``"xavier"`` (OGB's encoders) for the
            embedding tables of integer-coded node and edge features.
        edge_embedding: ``"shared"``: one edge encoder whose output every layer reads (and may update, as
            GatedGCN); ``"per_layer"``: each layer embeds the raw edge features with its own encoder (OGB's
            per-layer ``BondEncoder``; pair it with ``layer_options={"edge_map": False}`` for OGB's layers).
        share_weights: one message-passing layer applied ``num_layers`` times (Gilmer et al.'s MPNN ties its
            message and update functions over the :math:`T` steps); the norms stay per step.
        heads: attention heads (``gat``, ``transformer``, ``gps``).
        dropout: dropout after each block (and in the head unless ``head_dropout`` is set).
        norm: ``"batch_norm"``, ``"layer_norm"`` or ``None`` after each layer (and in the virtual-node MLP).
        virtual_node: add a virtual node connected to all nodes of each graph (OGB's ``-virtual`` models).
        deg: training in-degree histogram (``pna`` only).
        encoder: embed the input features to ``hidden_channels`` first (``"mlp"``: then Norm-ReLU-Linear-Norm-ReLU,
            Errica et al.'s GIN); ``False``: the first layer reads them.
        head: ``"mlp"`` (Linear-ReLU-Dropout-Linear), ``"linear"``, ``"mlp_readout"`` (benchmarking-gnns'
            Linear-ReLU-Linear-ReLU-Linear halving the width) or ``None`` (the last layer outputs
            ``out_channels``, with no norm, activation or dropout after it).
        head_dropout: dropout in the head (``None``: ``dropout``).
        residual: add each block's input to its output (needs equal widths).
        input_dropout: dropout on :math:`\mathbf{h}^{(0)}` (the raw features when ``encoder=False``).
        activation: ``"relu"``, ``"elu"``, ``"gelu"`` or ``None`` (for layers that apply their own, e.g. GatedGCN with
            ``layer_options={"batch_norm": True, "residual": True}``).
        final_activation: apply the activation after the last block too (OGB: no).
        readout_over: ``"last"`` or ``"all_layers"``: the prediction is the sum over
            :math:`\ell = 0..L` of a linear map of the pooled :math:`\mathbf{h}^{(\ell)}` (Xu et al. 2019, eq. 4.2;
            needs ``head="linear"``).
        layer_options: keyword arguments of every layer (e.g. GAT's attention ``dropout``, GIN's ``train_eps``).
        output_layer_options: overrides for the last layer when ``head=None`` (GAT: ``heads=1, concat=False``).

    Shapes: ``data.x`` ``[N, F]``, ``data.edge_index`` ``[2, E]``, ``data.edge_attr`` ``[E, D]``,
    ``data.batch`` ``[N]`` -> ``[B, out_channels]`` (graph level) or ``[N, out_channels]`` (node level).
    """

    def __init__(self, layer: str | LayerSpec | None, in_channels: int, out_channels: int, hidden_channels: int = 64,
                 num_layers: int = 4, level: str = "graph", edge_dim: int = 0,
                 node_vocab: tuple[int, ...] | None = None, edge_vocab: tuple[int, ...] | None = None,
                 readout: str = "mean", heads: int = 4, dropout: float = 0.0, norm: str | None = "batch_norm",
                 virtual_node: bool = False, deg: Tensor | None = None, encoder: bool | str = True,
                 head: str | None = "mlp", head_dropout: float | None = None, residual: bool = True,
                 input_dropout: float = 0.0, activation: str | None = "relu", final_activation: bool = True,
                 readout_over: str = "last", layer_options: dict | None = None,
                 output_layer_options: dict | None = None, readout_steps: int = 3, share_weights: bool = False,
                 embedding_init: str = "normal", edge_embedding: str = "shared"):
        super().__init__()
        spec = NO_LAYER if layer is None else layer if isinstance(layer, LayerSpec) else _layer_spec(layer)
        if not spec.passes_messages and num_layers != 0:
            raise ValueError(f"layer {layer!r} passes no messages: it needs num_layers=0, got {num_layers}")
        if spec.passes_messages:
            check_positive_ints(num_layers=num_layers)
        if level not in ("graph", "node"):
            raise ValueError(f"level must be 'graph' or 'node', got {level!r}")
        check_positive_ints(hidden_channels=hidden_channels, out_channels=out_channels, heads=heads)
        if spec.heads and hidden_channels % heads:
            raise ValueError(f"hidden_channels={hidden_channels} must be divisible by heads={heads} for {layer}")
        if norm not in ("batch_norm", "layer_norm", None):
            raise ValueError(f"norm must be 'batch_norm', 'layer_norm' or None, got {norm!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if readout_over not in ("last", "all_layers"):
            raise ValueError(f"readout_over must be 'last' or 'all_layers', got {readout_over!r}")
        if readout == "set2set" and readout_over != "last":
            raise ValueError("readout='set2set' pools the last layer only: it needs readout_over='last'")
        if share_weights and (not encoder or head is None or num_layers == 0):
            raise ValueError("share_weights=True applies one layer at the hidden width every step: it needs an "
                             "encoder, a head and num_layers >= 1")
        if readout_over == "all_layers" and (head != "linear" or level != "graph"):
            raise ValueError("readout_over='all_layers' is a graph-level readout with one linear map per layer: "
                             "it needs head='linear' and level='graph'")
        if not encoder and (node_vocab or in_channels == 0):
            raise ValueError("encoder=False needs dense node features (integer-coded or missing features need the "
                             "encoder's embeddings)")
        if not encoder and (residual or spec.whole_block) and num_layers > 0:
            raise ValueError("encoder=False feeds the raw features to the first layer, whose output width differs: "
                             "pass residual=False (and a layer that is not a whole block)")
        if head is None and num_layers == 0:
            raise ValueError("head=None needs at least one layer (the last layer outputs the classes)")
        if edge_embedding not in ("shared", "per_layer"):
            raise ValueError(f"edge_embedding must be 'shared' or 'per_layer', got {edge_embedding!r}")
        if edge_embedding == "per_layer" and (not spec.takes_edge_attr or share_weights):
            raise ValueError("edge_embedding='per_layer' gives each layer its own edge encoder: it needs a layer "
                             "that takes edge features and share_weights=False")
        self.layer_name = layer if isinstance(layer, str) or layer is None else "custom"
        self.spec, self.level = spec, level
        self.hidden_channels, self.num_layers, self.dropout = hidden_channels, num_layers, dropout
        self.head_dropout = dropout if head_dropout is None else head_dropout
        self.residual, self.input_dropout, self.final_activation = residual, input_dropout, final_activation
        self.act, self.readout_over, self.has_head = ACTIVATIONS[activation], readout_over, head is not None
        self.symmetry = PERMUTATION_INVARIANT if level == "graph" else PERMUTATION_EQUIVARIANT
        self.node_encoder = (MLPEncoder if encoder == "mlp" else FeatureEncoder)(
            in_channels, hidden_channels, node_vocab, embedding_init) if encoder else None
        def edge_encoder():
            return FeatureEncoder(edge_dim, hidden_channels, edge_vocab, embedding_init)

        per_layer_edges = edge_embedding == "per_layer"
        self.edge_encoder = edge_encoder() if spec.takes_edge_attr and not per_layer_edges else None
        self.edge_encoders = nn.ModuleList(edge_encoder() for _ in range(num_layers)) if per_layer_edges else None
        widths = [hidden_channels if encoder else in_channels] + [hidden_channels] * num_layers
        layer_options = layer_options or {}
        last_options = {**layer_options, **(output_layer_options or {})}
        if head is None:
            widths[-1] = out_channels
        per_layer = [dict(last_options if head is None and i == num_layers - 1 else layer_options)
                     for i in range(num_layers)]
        made = [spec.make(widths[i], widths[i + 1], options.pop("heads", heads), deg, **options)
                for i, options in enumerate(per_layer[:1] if share_weights else per_layer)]
        # share_weights: the first layer's module at every step (parameters() lists it once)
        self.layers = nn.ModuleList(made * num_layers if share_weights else made)
        make_norm = {"batch_norm": nn.BatchNorm1d, "layer_norm": nn.LayerNorm}.get(norm)
        self.norms = nn.ModuleList(make_norm(widths[i + 1]) if make_norm and not spec.whole_block
                                   and not (head is None and i == num_layers - 1) else nn.Identity()
                                   for i in range(num_layers))
        self.virtual = None
        if virtual_node:  # OGB's virtual node: MLP Linear(c, 2c)-Norm-ReLU-Linear(2c, c)-Norm-ReLU
            self.virtual = nn.Embedding(1, hidden_channels)
            self.virtual_mlps = nn.ModuleList(nn.Sequential(
                nn.Linear(hidden_channels, 2 * hidden_channels),
                make_norm(2 * hidden_channels) if make_norm else nn.Identity(), nn.ReLU(),
                nn.Linear(2 * hidden_channels, hidden_channels),
                make_norm(hidden_channels) if make_norm else nn.Identity(), nn.ReLU())
                for _ in range(num_layers - 1))
        self.readout = None if level != "graph" else (
            Set2SetReadout(widths[-1], readout_steps) if readout == "set2set" else Readout(readout))
        if readout_over == "all_layers":
            self.head, self.layer_heads = None, nn.ModuleList(nn.Linear(width, out_channels) for width in widths)
        else:
            pooled = self.readout.out_channels if isinstance(self.readout, Set2SetReadout) else widths[-1]
            self.head = _head(head, pooled, hidden_channels, out_channels, self.head_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.virtual is not None:
            nn.init.zeros_(self.virtual.weight)

    def first_layer_parameters(self) -> list[nn.Parameter]:
        """Parameters of the first message-passing layer (Kipf & Welling decay only these)."""
        return list(self.layers[0].parameters()) if self.num_layers else []

    def forward(self, data) -> Tensor:
        x, edge_index = data.x if "x" in data else None, data.edge_index
        num_nodes = data.num_nodes
        batch = data.batch if "batch" in data and data.batch is not None else \
            torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
        num_graphs = int(data.num_graphs) if hasattr(data, "num_graphs") else 1
        h = self.node_encoder(x, num_nodes) if self.node_encoder is not None else x.float().view(num_nodes, -1)
        h = nn.functional.dropout(h, self.input_dropout, self.training)
        edge_attr = data.edge_attr if "edge_attr" in data else None
        e = None
        if self.edge_encoder is not None:
            e = self.edge_encoder(edge_attr, edge_index.size(1))
        vn = self.virtual.weight.expand(num_graphs, -1) if self.virtual is not None else None
        states = [h]
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            last = i == self.num_layers - 1
            if vn is not None:
                h = h + vn[batch]
            if self.edge_encoders is not None:
                e = self.edge_encoders[i](edge_attr, edge_index.size(1))
            out = self.spec.call(layer, h, edge_index, e, batch)
            if isinstance(out, tuple):
                if self.edge_encoders is not None:
                    raise ValueError("this layer updates the edge features, which edge_embedding='per_layer' "
                                     "would discard: use edge_embedding='shared'")
                out, e = out
            if self.spec.whole_block or (last and not self.has_head):
                h_new = out
            else:
                out = norm(out)
                if self.final_activation or not last:
                    out = self.act(out)
                out = nn.functional.dropout(out, self.dropout, self.training)
                h_new = h + out if self.residual else out
            if vn is not None and not last:
                update = nn.functional.dropout(self.virtual_mlps[i](global_add_pool(h, batch, num_graphs) + vn),
                                               self.dropout, self.training)
                vn = vn + update if self.residual else update
            h = h_new
            states.append(h)
        if self.readout_over == "all_layers":
            return sum(nn.functional.dropout(head(self.readout(state, batch, num_graphs)), self.head_dropout,
                                             self.training) for head, state in zip(self.layer_heads, states))
        if self.readout is not None:
            h = self.readout(h, batch, num_graphs)
        return self.head(h)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.layer_name}, hidden={self.hidden_channels}, "
                f"layers={self.num_layers}, level={self.level!r}, virtual_node={self.virtual is not None})")


class DynamicsGNN(nn.Module):
    """Non-equivariant baseline for dynamics (the "GNN" row of Satorras et al. 2021): positions and velocities
    are fed as node features and a node-level :class:`GraphNet` predicts the displacement, so it must learn the
    symmetry from data.

    Args:
        layer: as for :class:`GraphNet`.
        in_channels: node feature columns besides positions and velocities (0: none).
        hidden_channels: width of the :class:`GraphNet`.
        dim: spatial dimension of ``pos`` and ``vel`` (the network reads ``2 * dim`` more columns).
        options: the other :class:`GraphNet` arguments (``edge_dim``, ``num_layers`` ...).
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, layer: str | LayerSpec, in_channels: int, hidden_channels: int, dim: int = 3, **options):
        super().__init__()
        self.net = GraphNet(layer, in_channels + 2 * dim, dim, hidden_channels, level="node", **options)

    def forward(self, data) -> Tensor:
        features = [data.pos, data.vel] + ([data.x] if "x" in data and data.x is not None else [])
        inputs = data.clone()
        inputs.x = torch.cat(features, dim=-1)
        return data.pos + self.net(inputs)


NO_LAYER = LayerSpec(passes_messages=False)
"""The layer of a model that passes no messages (``layer=None``)."""


def _layer_spec(name: str) -> LayerSpec:
    entry = MODELS.get(name)
    if entry is None or entry.layer is None:
        choices = sorted(n for n, e in MODELS.items() if e.layer is not None)
        raise ValueError(f"layer must be one of {choices}, got {name!r}")
    return entry.layer


def _head(kind: str | None, width: int, hidden: int, out: int, dropout: float) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(width, out)
    if kind == "mlp_readout":
        return nn.Sequential(nn.Linear(width, width // 2), nn.ReLU(), nn.Linear(width // 2, width // 4), nn.ReLU(),
                             nn.Linear(width // 4, out))
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out))


def in_degree_histogram(dataset) -> Tensor:
    """Histogram of node in-degrees over a dataset (PNA's ``deg``)."""
    counts: list[Tensor] = []
    for data in dataset:
        counts.append(degree(data.edge_index[1], data.num_nodes, dtype=torch.long))
    degrees = torch.cat(counts) if counts else torch.zeros(1, dtype=torch.long)
    return torch.bincount(degrees, minlength=1)
