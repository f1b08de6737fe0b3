r"""Hierarchical graph classifiers: the full blueprint, local layers -> **coarsening** -> ... -> invariant readout.

.. math::
    G^{(0)} = G, \qquad G^{(\ell+1)} = \operatorname{Pool}_\ell\big(\operatorname{GNN}_\ell(G^{(\ell)})\big), \qquad
    \hat{y} = \operatorname{MLP}\big(\operatorname{Readout}(G^{(L)}, \ldots)\big)

* :class:`ScorePoolNet`: sparse top-:math:`k` pooling between GCN layers, the readouts of all levels summed —
  SAGPool\ :sub:`h` (Lee et al. 2019) with :class:`~gdl_graphs.nn.SAGPooling`, or the TopK network of Cangea et al.
  (2018) with :class:`~gdl_graphs.nn.TopKPooling`.
* :class:`DiffPoolNet`: GraphSAGE blocks and :class:`~gdl_graphs.nn.DiffPool` levels (Ying et al. 2018).
* :class:`MinCutPoolNet`: GCN, then :class:`~gdl_graphs.nn.MinCutPool` levels with dense graph convolutions
  (Bianchi et al. 2020).

The dense models have auxiliary objectives: ``model.auxiliary_loss()`` returns those of the last forward pass by name
(scalar tensors, part of the graph), the names their entries in :mod:`gdl_graphs.models.catalog` declare in
``aux_losses``; the task kinds of :mod:`gdl_graphs.bench.tasks` add them to the task loss. Each model is :math:`S_n`-invariant (certified by ``gdl-bench verify``).

Shapes: ``data.x`` [N, F], ``data.edge_index`` [2, E], ``data.batch`` [N] -> [B, out_channels].
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import DenseGraphConv, DenseSAGEConv, global_max_pool, global_mean_pool
from torch_geometric.utils import to_dense_adj, to_dense_batch

from gdl_graphs.groups import PERMUTATION_INVARIANT
from gdl_graphs.models.graph_net import FeatureEncoder
from gdl_graphs.nn.conv import GCNConv
from gdl_graphs.nn.pool import DiffPool, MinCutPool, SAGPooling, TopKPooling


def _graph_inputs(data) -> tuple[Tensor, Tensor, int]:
    num_nodes = data.num_nodes
    batch = data.batch if "batch" in data and data.batch is not None else \
        torch.zeros(num_nodes, dtype=torch.long, device=data.edge_index.device)
    return data.edge_index, batch, int(data.num_graphs) if hasattr(data, "num_graphs") else 1


def _head(in_channels: int, hidden: int, out_channels: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, max(hidden // 2, 1)), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(max(hidden // 2, 1), out_channels))


class _Hierarchical(nn.Module):
    symmetry = PERMUTATION_INVARIANT

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()


class ScorePoolNet(_Hierarchical):
    r"""``num_blocks`` x [GCN -> ReLU -> top-:math:`k` pooling -> readout :math:`[\max \Vert \mathrm{mean}]`], the
    readouts summed, then a 3-layer MLP with dropout (SAGPool\ :sub:`h`, Lee et al. 2019; the same skeleton with
    :class:`TopKPooling` is Cangea et al. 2018).

    Paper settings: SAGPool — ``hidden_channels=128, ratio=0.5, num_blocks=3, dropout=0.5``, Adam lr 5e-4,
    weight decay 1e-4, batch 128, early stopping patience 50; Cangea et al. — ``ratio=0.8``. Unlike the papers the
    input features first go through a linear encoder (so integer-coded or missing features work too).

    Args:
        in_channels, out_channels: input features and outputs (classes) per graph.
        hidden_channels: width of every layer.
        num_blocks: conv + pool blocks.
        pool: :class:`~gdl_graphs.nn.SAGPooling` (scores from a GCN) or :class:`~gdl_graphs.nn.TopKPooling`.
        ratio: fraction of nodes each pooling keeps.
        dropout: in the MLP head.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 128, num_blocks: int = 3,
                 pool: type = SAGPooling, ratio: float = 0.5, dropout: float = 0.5,
                 node_vocab: tuple[int, ...] | None = None):
        super().__init__()
        if pool not in (SAGPooling, TopKPooling):
            raise ValueError(f"pool must be SAGPooling or TopKPooling, got {pool!r}")
        self.pool_type, self.num_blocks = pool, num_blocks
        self.encoder = FeatureEncoder(in_channels, hidden_channels, node_vocab)
        self.convs = nn.ModuleList(GCNConv(hidden_channels, hidden_channels) for _ in range(num_blocks))
        extra = {"GNN": GCNConv} if pool is SAGPooling else {}
        self.pools = nn.ModuleList(pool(hidden_channels, ratio, **extra) for _ in range(num_blocks))
        self.head = _head(2 * hidden_channels, hidden_channels, out_channels, dropout)

    def forward(self, data) -> Tensor:
        edge_index, batch, num_graphs = _graph_inputs(data)
        h = self.encoder(data.x if "x" in data else None, data.num_nodes)
        readout = 0
        for conv, pool in zip(self.convs, self.pools):
            h = torch.relu(conv(h, edge_index))
            h, edge_index, _, batch, _, _ = pool(h, edge_index, None, batch)
            readout = readout + torch.cat([global_max_pool(h, batch, num_graphs),
                                           global_mean_pool(h, batch, num_graphs)], dim=-1)
        return self.head(readout)


class _DenseSAGE(nn.Module):
    """``num_layers`` x [DenseSAGEConv -> ReLU -> BatchNorm] on a dense batch (DiffPool's GNN blocks)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 3):
        super().__init__()
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(DenseSAGEConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(conv(x, adj, mask))  # normalised after the ReLU: assignment logits keep their sign
            if mask is None:
                x = norm(x.reshape(-1, x.size(-1))).view_as(x)
            else:  # statistics of the real nodes only; padding stays 0
                x = torch.zeros_like(x).masked_scatter(mask.unsqueeze(-1), norm(x[mask]))
        return x

    def reset_parameters(self) -> None:
        for module in (*self.convs, *self.norms):
            module.reset_parameters()


def _dense(h: Tensor, edge_index: Tensor, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    x, mask = to_dense_batch(h, batch)
    return x, to_dense_adj(edge_index, batch, max_num_nodes=x.size(1)), mask


def clusters_per_level(num_nodes: float, ratio: float, levels: int) -> list[int]:
    """Cluster counts of successive pooling levels: ``ceil(ratio * n)``, applied ``levels`` times (at least 1)."""
    counts, n = [], num_nodes
    for _ in range(levels):
        n = max(math.ceil(ratio * n), 1)
        counts.append(n)
    return counts


class _DenseHierarchical(_Hierarchical):
    """Shared by the dense models: cluster counts, input encoder, MLP head and the auxiliary loss slot."""

    def __init__(self, in_channels: int, out_channels: int, num_clusters: Sequence[int], hidden_channels: int,
                 dropout: float, node_vocab: tuple[int, ...] | None):
        super().__init__()
        if not num_clusters or any(k < 1 for k in num_clusters):
            raise ValueError(f"num_clusters must list at least one positive cluster count, got {num_clusters!r}")
        self.num_clusters = list(num_clusters)
        self.encoder = FeatureEncoder(in_channels, hidden_channels, node_vocab)
        self.head = _head(hidden_channels, hidden_channels, out_channels, dropout)
        self._auxiliary: dict[str, Tensor] = {}

    def auxiliary_loss(self) -> dict[str, Tensor]:
        """The auxiliary losses of the last forward pass, by name, each summed over the levels."""
        if not self._auxiliary:
            raise RuntimeError("auxiliary_loss() is defined after a forward pass")
        return dict(self._auxiliary)


class DiffPoolNet(_DenseHierarchical):
    r"""DiffPool (Ying et al. 2018): a GraphSAGE block, then per level a :class:`~gdl_graphs.nn.DiffPool` (its
    embedding and assignment GNNs are GraphSAGE blocks too), a final block, the mean over the clusters and an MLP.
    The link-prediction and entropy losses of every level are summed per kind in ``auxiliary_loss()``.

    Paper settings: GraphSAGE with 3 layers per block, clusters 25% of the nodes before each pooling
    (``clusters_per_level(max_nodes, 0.25, levels)``), 1 pooling level on small graphs (ENZYMES, PROTEINS) and 2 on
    D&D, batch norm after every layer. Dense: memory grows as :math:`B \cdot N_{\max}^2`.

    Args:
        in_channels, out_channels: input features and outputs per graph.
        num_clusters: clusters of each level (e.g. ``clusters_per_level(max_nodes, 0.25, 2)``).
        hidden_channels: width of the GNN blocks.
        dropout: in the MLP head.
    """

    def __init__(self, in_channels: int, out_channels: int, num_clusters: Sequence[int], hidden_channels: int = 64,
                 dropout: float = 0.0, node_vocab: tuple[int, ...] | None = None):
        super().__init__(in_channels, out_channels, num_clusters, hidden_channels, dropout, node_vocab)
        c = hidden_channels
        self.first = _DenseSAGE(c, c, c)
        self.pools = nn.ModuleList(DiffPool(c, c, k, embed=_DenseSAGE(c, c, c), assign=_DenseSAGE(c, c, k))
                                   for k in self.num_clusters)
        self.last = _DenseSAGE(c, c, c)

    def forward(self, data) -> Tensor:
        edge_index, batch, _ = _graph_inputs(data)
        h = self.encoder(data.x if "x" in data else None, data.num_nodes)
        x, adj, mask = _dense(h, edge_index, batch)
        x = self.first(x, adj, mask)
        link, entropy = x.new_zeros(()), x.new_zeros(())
        for pool in self.pools:
            x, adj, link_loss, entropy_loss = pool(x, adj, mask)
            mask = None  # every graph has all of its clusters
            link, entropy = link + link_loss, entropy + entropy_loss
        self._auxiliary = {"link_prediction": link, "entropy": entropy}
        return self.head(self.last(x, adj).mean(dim=1))


class MinCutPoolNet(_DenseHierarchical):
    r"""MinCutPool (Bianchi et al. 2020): GCN -> per level [:class:`~gdl_graphs.nn.MinCutPool` -> dense graph
    convolution] -> mean over the clusters -> MLP. The cut and orthogonality losses of every level are summed per kind
    in ``auxiliary_loss()``.

    Paper settings: ``MP(32) - Pool - MP(32) - Pool - MP(32) - GlobalAvgPool - Dense``, i.e.
    ``hidden_channels=32`` and 2 levels of clusters halving the average graph size
    (``clusters_per_level(avg_nodes, 0.5, 2)``); Adam lr 5e-4 (as in PyG's ``mincut_pool.py`` example). Dense:
    memory grows as :math:`B \cdot N_{\max}^2`.

    Args:
        in_channels, out_channels: input features and outputs per graph.
        num_clusters: clusters of each level.
        hidden_channels: width of every layer.
        dropout: in the MLP head.
    """

    def __init__(self, in_channels: int, out_channels: int, num_clusters: Sequence[int], hidden_channels: int = 32,
                 dropout: float = 0.0, node_vocab: tuple[int, ...] | None = None):
        super().__init__(in_channels, out_channels, num_clusters, hidden_channels, dropout, node_vocab)
        c = hidden_channels
        self.conv = GCNConv(c, c)
        self.pools = nn.ModuleList(MinCutPool(c, k) for k in self.num_clusters)
        self.dense_convs = nn.ModuleList(DenseGraphConv(c, c) for _ in self.num_clusters)

    def forward(self, data) -> Tensor:
        edge_index, batch, _ = _graph_inputs(data)
        h = self.encoder(data.x if "x" in data else None, data.num_nodes)
        x, adj, mask = _dense(torch.relu(self.conv(h, edge_index)), edge_index, batch)
        cut, ortho = x.new_zeros(()), x.new_zeros(())
        for pool, conv in zip(self.pools, self.dense_convs):
            x, adj, cut_loss, ortho_loss = pool(x, adj, mask)
            mask = None
            cut, ortho = cut + cut_loss, ortho + ortho_loss
            x = torch.relu(conv(x, adj))
        self._auxiliary = {"mincut": cut, "orthogonality": ortho}
        return self.head(x.mean(dim=1))


# ----------------------------------------------------------------------------------------------------------------
# Building for a benchmark (builders of the entries in gdl_graphs.models.catalog)
# ----------------------------------------------------------------------------------------------------------------
def node_counts(split) -> Tensor:
    """Number of nodes of every graph of a dataset split."""
    return torch.tensor([int(data.num_nodes) for data in split], dtype=torch.float64)


def build_sagpool(entry, benchmark, options):
    """:class:`ScorePoolNet` with SAGPooling; ``num_layers`` (as for every model) is the number of pooling blocks."""
    options = _levels_as("num_blocks", options)
    return lambda width: ScorePoolNet(benchmark.num_features, benchmark.num_targets, width,
                                      node_vocab=benchmark.node_vocab, **options)


def build_topkpool(entry, benchmark, options):
    """:class:`ScorePoolNet` with TopKPooling (ratio 0.8); ``num_layers`` is the number of pooling blocks."""
    options = {"ratio": 0.8, **_levels_as("num_blocks", options)}
    return lambda width: ScorePoolNet(benchmark.num_features, benchmark.num_targets, width, pool=TopKPooling,
                                      node_vocab=benchmark.node_vocab, **options)


def build_diffpool(entry, benchmark, options):
    """:class:`DiffPoolNet`, clusters 25% of the largest training graph per level (1 level unless ``levels`` or
    ``num_layers`` says otherwise, or an explicit ``num_clusters`` list)."""
    options = _levels_as("levels", options)
    max_nodes = options.pop("max_nodes", None) or float(node_counts(benchmark.train).max())
    clusters = options.pop("num_clusters", None) or clusters_per_level(max_nodes, options.pop("pool_ratio", 0.25),
                                                                        options.pop("levels", 1))
    return lambda width: DiffPoolNet(benchmark.num_features, benchmark.num_targets, clusters, width,
                                     node_vocab=benchmark.node_vocab, **options)


def build_mincut(entry, benchmark, options):
    """:class:`MinCutPoolNet`, 2 levels halving the average training graph (``levels`` / ``num_layers`` /
    ``num_clusters`` override)."""
    options = _levels_as("levels", options)
    avg_nodes = float(node_counts(benchmark.train).mean())
    clusters = options.pop("num_clusters", None) or clusters_per_level(avg_nodes, options.pop("pool_ratio", 0.5),
                                                                        options.pop("levels", 2))
    return lambda width: MinCutPoolNet(benchmark.num_features, benchmark.num_targets, clusters, width,
                                       node_vocab=benchmark.node_vocab, **options)


def _levels_as(option: str, options: dict) -> dict:
    """``options`` with the harness-wide ``num_layers`` renamed to the model's number of coarsening levels."""
    options = dict(options)
    if "num_layers" in options:
        options.setdefault(option, options.pop("num_layers"))
    return options
