r"""Graph isomorphism network layers (Xu et al. 2019; Hu et al. 2020 for edge features), drop-in for PyG's."""

from __future__ import annotations

from torch import Tensor
from torch_geometric import nn as pyg_nn

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import DropInConv
from gdl_graphs.nn.validation import check_edge_features, check_matches_layer, input_width, require_edge_attr


class GINConv(DropInConv, pyg_nn.GINConv):
    r"""GIN layer :math:`\mathbf{x}'_i = h_{\mathbf{\Theta}}\big((1 + \epsilon)\,\mathbf{x}_i +
    \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j\big)`.

    Same constructor (``nn, eps=0., train_eps=False``), parameters and ``state_dict`` as
    :class:`torch_geometric.nn.GINConv`. The neighbour sum is a CSR sparse-dense matmul on the graph's cached
    adjacency. Bipartite input (a tuple ``x``) uses PyG's path.

    Shapes: ``x`` [N, F], ``edge_index`` [2, E] or sparse ``adj_t`` -> [N, F'] (``F'`` set by ``nn``).
    """

    static_graphs = True

    def forward(self, x, edge_index, size=None) -> Tensor:
        self._check_node_input(x, edge_index, input_width(self.nn))
        if not self._fast_path_applies(x, edge_index, size):
            return super().forward(x, self._pyg_edge_index(edge_index), size)
        _, _, adj = self._graph(x, edge_index, in_channels=-1)
        out = aggregate.spmm(adj, x)
        return self.nn(out + (1 + self.eps) * x)


class GINEConv(DropInConv, pyg_nn.GINEConv):
    r"""GIN layer with edge features :math:`\mathbf{x}'_i = h_{\mathbf{\Theta}}\big((1 + \epsilon)\,\mathbf{x}_i +
    \sum_{j \in \mathcal{N}(i)} \mathrm{ReLU}(\mathbf{x}_j + \mathbf{W}\mathbf{e}_{j,i})\big)`
    (:math:`\mathbf{W}` only when ``edge_dim`` is set; otherwise edge and node features must have equal size).

    Same constructor (``nn, eps=0., train_eps=False, edge_dim=None``), parameters and ``state_dict`` as
    :class:`torch_geometric.nn.GINEConv`. Messages are formed and summed by one operator
    (:func:`~gdl_graphs.nn.aggregate.relu_message_sum`: no saved ``[E, C]`` message tensor, one opaque call when compiled).

    Shapes: ``x`` [N, F], ``edge_index`` [2, E], ``edge_attr`` [E, D] -> [N, F'].
    """

    static_graphs = True

    def forward(self, x, edge_index, edge_attr: Tensor | None = None, size=None) -> Tensor:
        self._check_node_input(x, edge_index, input_width(self.nn))
        require_edge_attr(edge_attr, edge_index, "GINEConv")
        if edge_attr is not None:
            check_matches_layer(edge_attr, self, "edge_attr")
            edge_attr = edge_attr.unsqueeze(-1) if edge_attr.dim() == 1 else edge_attr  # [E] means [E, 1]
        if not self._fast_path_applies(x, edge_index, size):
            return super().forward(x, self._pyg_edge_index(edge_index), edge_attr, size)
        edge_index, _, adj = self._graph(x, edge_index, in_channels=-1)
        edge_dim = self.lin.in_channels if self.lin is not None else x.size(-1)
        check_edge_features(edge_attr, edge_index.size(1), edge_dim if edge_dim > 0 else None, True, "GINEConv")
        if type(self).message is pyg_nn.GINEConv.message:  # PyG's message: ReLU(x_j + W e_ji), one fused operator
            edges = self.lin(edge_attr) if self.lin is not None else edge_attr
            out = aggregate.relu_message_sum(adj, x, edges)
        else:  # a subclass's own message
            messages = self.message(x.index_select(0, edge_index[0]), edge_attr)
            out = aggregate.reduce_edges(messages, edge_index[1], x.size(0), "sum", adj)
        return self.nn(out + (1 + self.eps) * x)
