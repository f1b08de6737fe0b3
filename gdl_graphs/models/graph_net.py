r"""The blueprint model for graph and node tasks: encoder -> L x block -> invariant readout -> head.

.. math::
    \mathbf{h}^{(0)} = \operatorname{Enc}(\mathbf{x}), \qquad
    \mathbf{h}^{(\ell+1)} = \mathbf{h}^{(\ell)} + \operatorname{Drop}\big(\sigma\big(\operatorname{Norm}
        (\operatorname{Layer}(\mathbf{h}^{(\ell)}, \mathbf{e}, A))\big)\big), \qquad
    \hat{y} = \operatorname{MLP}\Big(\bigoplus_{i} \mathbf{h}^{(L)}_i\Big)

Node tasks drop the readout (the head is applied per node); graph tasks pool with sum / mean / max. The layers
come from :mod:`gdl_graphs.nn` through the :class:`~gdl_graphs.models.registry.LayerSpec` of a registered model,
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
from gdl_graphs.nn.readout import Readout
from gdl_graphs.nn.validation import check_positive_ints


class FeatureEncoder(nn.Module):
    """Embeds node or edge features to ``channels``: a sum of per-column embeddings for integer-coded features
    (like OGB's ``AtomEncoder``), a linear map for dense ones, one learned vector when there are none."""

    def __init__(self, in_channels: int, channels: int, vocab: tuple[int, ...] | None = None):
        super().__init__()
        self.in_channels, self.vocab = in_channels, vocab
        if vocab:
            self.tables = nn.ModuleList(nn.Embedding(size, channels) for size in vocab)
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


class GraphNet(nn.Module):
    r"""Encoder -> ``num_layers`` x [layer, norm, ReLU, dropout, residual] -> readout -> MLP head.

    Args:
        layer: a registered model built on this blueprint (``"gin"``, ``"gps"``, ...) or a
            :class:`~gdl_graphs.models.registry.LayerSpec`.
        in_channels: node feature columns (0: none, a learned constant is used).
        out_channels: outputs per graph (or per node when ``level="node"``).
        hidden_channels: width of every hidden layer.
        num_layers: number of message-passing blocks.
        level: ``"graph"`` (pool, then head) or ``"node"`` (head per node).
        edge_dim: edge feature columns (0: none; edge-aware layers then get one learned edge vector).
        node_vocab, edge_vocab: category counts of integer-coded features (embedding tables instead of linear).
        readout: ``"sum"``, ``"mean"`` or ``"max"``.
        heads: attention heads (``gat``, ``transformer``, ``gps``).
        dropout: dropout after each block and in the head.
        norm: ``"batch_norm"``, ``"layer_norm"`` or ``None`` after each layer.
        virtual_node: add a virtual node connected to all nodes of each graph.
        deg: training in-degree histogram (``pna`` only).

    Shapes: ``data.x`` ``[N, F]``, ``data.edge_index`` ``[2, E]``, ``data.edge_attr`` ``[E, D]``,
    ``data.batch`` ``[N]`` -> ``[B, out_channels]`` (graph level) or ``[N, out_channels]`` (node level).
    """

    def __init__(self, layer: str | LayerSpec, in_channels: int, out_channels: int, hidden_channels: int = 64,
                 num_layers: int = 4, level: str = "graph", edge_dim: int = 0,
                 node_vocab: tuple[int, ...] | None = None, edge_vocab: tuple[int, ...] | None = None,
                 readout: str = "mean", heads: int = 4, dropout: float = 0.0, norm: str | None = "batch_norm",
                 virtual_node: bool = False, deg: Tensor | None = None):
        super().__init__()
        spec = layer if isinstance(layer, LayerSpec) else _layer_spec(layer)
        if level not in ("graph", "node"):
            raise ValueError(f"level must be 'graph' or 'node', got {level!r}")
        check_positive_ints(hidden_channels=hidden_channels, num_layers=num_layers, out_channels=out_channels,
                            heads=heads)
        if spec.heads and hidden_channels % heads:
            raise ValueError(f"hidden_channels={hidden_channels} must be divisible by heads={heads} for {layer}")
        if norm not in ("batch_norm", "layer_norm", None):
            raise ValueError(f"norm must be 'batch_norm', 'layer_norm' or None, got {norm!r}")
        self.layer_name = layer if isinstance(layer, str) else "custom"
        self.spec, self.level = spec, level
        self.hidden_channels, self.num_layers, self.dropout = hidden_channels, num_layers, dropout
        self.symmetry = PERMUTATION_INVARIANT if level == "graph" else PERMUTATION_EQUIVARIANT
        self.node_encoder = FeatureEncoder(in_channels, hidden_channels, node_vocab)
        self.edge_encoder = FeatureEncoder(edge_dim, hidden_channels, edge_vocab) if spec.takes_edge_attr else None
        self.layers = nn.ModuleList(spec.make(hidden_channels, heads, deg) for _ in range(num_layers))
        make_norm = {"batch_norm": nn.BatchNorm1d, "layer_norm": nn.LayerNorm}.get(norm)
        self.norms = nn.ModuleList(make_norm(hidden_channels) if make_norm and not spec.whole_block
                                   else nn.Identity() for _ in range(num_layers))
        self.virtual = None
        if virtual_node:
            self.virtual = nn.Embedding(1, hidden_channels)
            self.virtual_mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.ReLU(),
                              nn.Linear(hidden_channels, hidden_channels), nn.ReLU())
                for _ in range(num_layers - 1))
        self.readout = Readout(readout) if level == "graph" else None
        self.head = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.virtual is not None:
            nn.init.zeros_(self.virtual.weight)

    def forward(self, data) -> Tensor:
        x, edge_index = data.x if "x" in data else None, data.edge_index
        num_nodes = data.num_nodes
        batch = data.batch if "batch" in data and data.batch is not None else \
            torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
        num_graphs = int(data.num_graphs) if hasattr(data, "num_graphs") else 1
        h = self.node_encoder(x, num_nodes)
        e = None
        if self.edge_encoder is not None:
            e = self.edge_encoder(data.edge_attr if "edge_attr" in data else None, edge_index.size(1))
        vn = self.virtual.weight.expand(num_graphs, -1) if self.virtual is not None else None
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            if vn is not None:
                h = h + vn[batch]
            out = self.spec.call(layer, h, edge_index, e, batch)
            if isinstance(out, tuple):
                out, e = out
            if self.spec.whole_block:
                h_new = out
            else:
                h_new = h + nn.functional.dropout(torch.relu(norm(out)), self.dropout, self.training)
            if vn is not None and i < self.num_layers - 1:
                vn = vn + nn.functional.dropout(self.virtual_mlps[i](global_add_pool(h, batch, num_graphs) + vn),
                                                self.dropout, self.training)
            h = h_new
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


def _layer_spec(name: str) -> LayerSpec:
    entry = MODELS.get(name)
    if entry is None or entry.layer is None:
        choices = sorted(n for n, e in MODELS.items() if e.layer is not None)
        raise ValueError(f"layer must be one of {choices}, got {name!r}")
    return entry.layer


def in_degree_histogram(dataset) -> Tensor:
    """Histogram of node in-degrees over a dataset (PNA's ``deg``)."""
    counts: list[Tensor] = []
    for data in dataset:
        counts.append(degree(data.edge_index[1], data.num_nodes, dtype=torch.long))
    degrees = torch.cat(counts) if counts else torch.zeros(1, dtype=torch.long)
    return torch.bincount(degrees, minlength=1)
