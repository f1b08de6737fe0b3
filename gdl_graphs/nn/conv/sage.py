r"""GraphSAGE (Hamilton et al. 2017) on the CSR fast path, drop-in for PyG's ``SAGEConv``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torch_geometric import nn as pyg_nn

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import DropInConv

_LINEAR_AGGREGATIONS = {"mean": "mean", "sum": "sum", "add": "sum"}


class SAGEConv(DropInConv, pyg_nn.SAGEConv):
    r"""GraphSAGE layer :math:`\mathbf{x}'_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2 \cdot
    \mathrm{mean}_{j \in \mathcal{N}(i)} \mathbf{x}_j` (optionally with ``project``: :math:`\mathbf{x}_j \leftarrow
    \mathrm{ReLU}(\mathbf{W}_3\mathbf{x}_j + \mathbf{b})`, and ``normalize``: :math:`\ell_2`-normalised output).

    Same constructor (``in_channels, out_channels, aggr='mean', normalize=False, root_weight=True, project=False,
    bias=True``), parameters and ``state_dict`` as :class:`torch_geometric.nn.SAGEConv`. ``mean``/``sum``
    aggregation is a CSR sparse-dense matmul on the graph's cached adjacency; other aggregators (``max``, ``lstm``,
    lists) and bipartite input use PyG's path.

    Shapes: ``x`` [N, in_channels], ``edge_index`` [2, E] or sparse ``adj_t`` -> [N, out_channels].
    """

    static_graphs = True

    def forward(self, x, edge_index, size=None) -> Tensor:
        self._check_node_input(x, edge_index)
        reduce = _LINEAR_AGGREGATIONS.get(self.aggr) if isinstance(self.aggr, str) else None
        if reduce is None or not self._fast_path_applies(x, edge_index, size):
            return super().forward(x, self._pyg_edge_index(edge_index), size)
        _, _, adj = self._graph(x, edge_index)
        src = self.lin(x).relu() if self.project and hasattr(self, "lin") else x
        out = self.lin_l(aggregate.spmm(adj, src, reduce=reduce))
        if self.root_weight:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out
