r"""Graph attention layers GAT (Veličković et al. 2018) and GATv2 (Brody et al. 2022), drop-in for PyG's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from torch_geometric import nn as pyg_nn

from gdl_graphs.nn import aggregate
from gdl_graphs.nn.conv.base import DropInConv
from gdl_graphs.nn.validation import check_edge_features, check_matches_layer


SCORE_CHUNK_ELEMENTS = 1 << 22
"""GATv2 on a large graph computes its ``[E, H, C]`` score pre-activation this many elements at a time, recomputing
each chunk in the backward pass. Measured on 100k / 1.6M, 4 x 16 channels, 1 CPU thread: peak memory 2204 MB
unchunked, 683 MB in 4M-element chunks (1.65x PyG's speed) and 594 MB in 1M-element ones (1.39x)."""

CUDA_SCORE_CHUNK_ELEMENTS = 1 << 27
""":data:`SCORE_CHUNK_ELEMENTS` on a GPU, where each chunk's launches and recomputation cost more than its
memory: on an H200, 1M nodes / 16M edges at 4 x 32 channels in 4M-element chunks (512 of them) took 960 ms against
PyG's 240 ms (peak memory 4.7 GB against 51.6 GB; benchmarks/results/layers_gpu.md). 128M-element chunks (0.5 GB
of float32 each, 16 chunks on that graph) are not measured yet: `bash benchmarks/gpu_layers.sh` measures them."""

_FAST_FILL_VALUES = ("mean", "add")  # string fill values of self-loop edge features computed here; others: PyG


class _AttentionConv(DropInConv):
    """Shared forward of GAT and GATv2: self-loops, attention scores -> softmax -> weighted sum, head merge."""

    edge_attr_needs_edge_dim = False  # PyG's GATConv ignores edge_attr without edge_dim; GATv2Conv refuses it

    def _takes_fast_path(self, x, edge_index, edge_attr, size, return_attention_weights) -> bool:
        """Validate the inputs; whether the fast path reproduces PyG's answer for them."""
        self._check_node_input(x, edge_index)
        if edge_attr is not None:
            if self.lin_edge is None and self.edge_attr_needs_edge_dim:
                raise ValueError(f"{type(self).__name__} was built with edge_dim=None and takes no edge_attr; set "
                                 f"edge_dim to use edge features")
            if self.lin_edge is not None:
                check_matches_layer(edge_attr, self, "edge_attr")
        return (self._fast_path_applies(x, edge_index, size)
                and not (isinstance(self.fill_value, str) and self.fill_value not in _FAST_FILL_VALUES)
                and not (return_attention_weights and torch.compiler.is_compiling()))

    def _attention_forward(self, x, edge_index, edge_attr, return_attention_weights):
        edge_attr = edge_attr if self.lin_edge is not None else None  # PyG's GATConv ignores it then
        edge_index, _, adj = self._graph(x, edge_index)
        if edge_attr is not None:
            check_edge_features(edge_attr, edge_index.size(1), None, False, type(self).__name__)
        res = self.res(x) if self.res is not None else None
        x_src, x_dst = self._project(x)
        replaced = None  # per edge of the extended list: an existing self-loop that an appended one replaces
        if self.add_self_loops:
            adj, excluded = aggregate.with_self_loops(adj)
            if edge_attr is not None:
                edge_attr = _with_loop_attr(edge_attr, edge_index, excluded, self.fill_value, x.size(0), adj)
            edge_index = adj.edge_index
            replaced = torch.cat([excluded, excluded.new_zeros(adj.num_dst)])
        scores = self._scores(x_src, x_dst, adj, edge_attr)
        if replaced is not None:
            scores = scores.masked_fill(replaced.unsqueeze(-1), float("-inf"))
        alpha = aggregate.softmax_edges(scores, edge_index[1], adj.num_dst, adj)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = aggregate.spmm(adj, x_src, alpha)
        out = out.reshape(-1, self.heads * self.out_channels) if self.concat else out.mean(dim=1)
        if res is not None:
            out = out + res
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            if replaced is not None:
                keep = ~replaced
                return out, (edge_index[:, keep], alpha[keep])
            return out, (edge_index, alpha)
        return out


@torch.library.custom_op("gdl_graphs::score_leaky_relu", mutates_args=())
def _score_leaky_relu(scores: Tensor, negative_slope: float) -> Tensor:
    """GAT's LeakyReLU of the ``[E, H]`` scores as one opaque operator whose backward reads the scores themselves,
    as eager autograd does: Inductor instead saved a boolean mask and stored it 4 values (heads) at a time with 16-wide
    vector code, which made compiled GAT on 10k / 200k slower than eager (torch 2.13, CPU)."""
    return F.leaky_relu(scores, negative_slope)


@_score_leaky_relu.register_fake
def _(scores, negative_slope):
    return torch.empty_like(scores)


def _score_leaky_relu_setup(ctx, inputs, output):
    ctx.negative_slope = inputs[1]
    ctx.save_for_backward(inputs[0])


def _score_leaky_relu_backward(ctx, grad):
    (scores,) = ctx.saved_tensors
    return torch.ops.gdl_graphs.score_leaky_relu_backward(grad, scores, ctx.negative_slope), None


@torch.library.custom_op("gdl_graphs::score_leaky_relu_backward", mutates_args=())
def _score_leaky_relu_grad(grad: Tensor, scores: Tensor, negative_slope: float) -> Tensor:
    return torch.ops.aten.leaky_relu_backward(grad, scores, negative_slope, False)


@_score_leaky_relu_grad.register_fake
def _(grad, scores, negative_slope):
    return torch.empty_like(scores)


_score_leaky_relu.register_autograd(_score_leaky_relu_backward, setup_context=_score_leaky_relu_setup)


def _with_loop_attr(edge_attr: Tensor, edge_index: Tensor, excluded: Tensor, fill_value, num_nodes: int,
                    adj: aggregate.Adjacency) -> Tensor:
    """Edge features of the appended self-loops, as PyG's ``add_self_loops`` computes them after removing loops."""
    if edge_attr.dim() == 1:
        edge_attr = edge_attr.unsqueeze(-1)
    if isinstance(fill_value, str):
        kept = (~excluded).to(edge_attr.dtype).unsqueeze(-1)
        loop_attr = aggregate.reduce_edges(edge_attr * kept, edge_index[1], num_nodes, "sum")
        if fill_value == "mean":
            count = aggregate.reduce_edges(kept, edge_index[1], num_nodes, "sum")
            loop_attr = loop_attr / count.clamp(min=1)
    else:
        loop_attr = torch.as_tensor(fill_value, dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr = loop_attr.expand(num_nodes, edge_attr.size(-1)) if loop_attr.dim() <= 1 else loop_attr
    return torch.cat([edge_attr, loop_attr.to(edge_attr.dtype)], dim=0)


class GATConv(_AttentionConv, pyg_nn.GATConv):
    r"""Graph attention layer :math:`\mathbf{x}'_i = \big\Vert_{h}\, \sum_{j \in \mathcal{N}(i) \cup \{i\}}
    \alpha^{h}_{i,j}\mathbf{\Theta}^{h}_s\mathbf{x}_j` with

    .. math::
        \alpha^h_{i,j} = \mathrm{softmax}_j\Big(\mathrm{LeakyReLU}\big(\mathbf{a}^{h\top}_s\mathbf{\Theta}^h_s
        \mathbf{x}_j + \mathbf{a}^{h\top}_t\mathbf{\Theta}^h_t\mathbf{x}_i + \mathbf{a}^{h\top}_e
        \mathbf{\Theta}^h_e\mathbf{e}_{j,i}\big)\Big).

    Same constructor, defaults, parameters and ``state_dict`` as :class:`torch_geometric.nn.GATConv` (``heads``,
    ``concat``, ``negative_slope``, ``dropout``, ``add_self_loops``, ``edge_dim``, ``fill_value``, ``bias``,
    ``residual``). The softmax denominators and the weighted neighbour sums (one CSR matmul per head) run on the
    graph's cached adjacency, so the ``[E, heads, C]`` message tensor is never built. Bipartite input uses PyG's path.

    Shapes: ``x`` [N, in_channels], ``edge_index`` [2, E] or sparse ``adj_t``, ``edge_attr`` [E, edge_dim]
    -> [N, heads * out_channels] (``concat=True``) or [N, out_channels].
    """

    def forward(self, x, edge_index, edge_attr: Tensor | None = None, size=None,
                return_attention_weights: bool | None = None):
        if not self._takes_fast_path(x, edge_index, edge_attr, size, return_attention_weights):
            return super().forward(x, self._pyg_edge_index(edge_index), edge_attr, size, return_attention_weights)
        return self._attention_forward(x, edge_index, edge_attr, return_attention_weights)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        heads, channels = self.heads, self.out_channels
        if self.lin is not None:
            h = self.lin(x).view(-1, heads, channels)
            return h, h
        return self.lin_src(x).view(-1, heads, channels), self.lin_dst(x).view(-1, heads, channels)

    def _scores(self, x_src, x_dst, adj, edge_attr):
        score_src = (x_src * self.att_src).sum(-1)
        score_dst = (x_dst * self.att_dst).sum(-1)
        scores = (aggregate.gather_edges(adj, score_src, by_target=False)
                  + aggregate.gather_edges(adj, score_dst, by_target=True))
        if edge_attr is not None and self.lin_edge is not None:
            if edge_attr.dim() == 1:
                edge_attr = edge_attr.unsqueeze(-1)
            edge = self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
            scores = scores + (edge * self.att_edge).sum(-1)
        if not torch.compiler.is_compiling():  # eager autograd already saves the scores, not a mask
            return F.leaky_relu(scores, self.negative_slope)
        return torch.ops.gdl_graphs.score_leaky_relu(scores, self.negative_slope)


class GATv2Conv(_AttentionConv, pyg_nn.GATv2Conv):
    r"""GATv2 layer (dynamic attention) :math:`\mathbf{x}'_i = \big\Vert_h \sum_{j \in \mathcal{N}(i) \cup \{i\}}
    \alpha^h_{i,j}\mathbf{\Theta}^h_s\mathbf{x}_j` with

    .. math::
        \alpha^h_{i,j} = \mathrm{softmax}_j\Big(\mathbf{a}^{h\top}\mathrm{LeakyReLU}\big(\mathbf{\Theta}^h_s
        \mathbf{x}_j + \mathbf{\Theta}^h_t\mathbf{x}_i + \mathbf{\Theta}^h_e\mathbf{e}_{j,i}\big)\Big).

    Same constructor, defaults, parameters and ``state_dict`` as :class:`torch_geometric.nn.GATv2Conv`
    (``share_weights`` included). Aggregation as in :class:`GATConv`.

    Shapes as in :class:`GATConv`.
    """

    edge_attr_needs_edge_dim = True

    def forward(self, x, edge_index, edge_attr: Tensor | None = None, return_attention_weights: bool | None = None):
        if not self._takes_fast_path(x, edge_index, edge_attr, None, return_attention_weights):
            return super().forward(x, self._pyg_edge_index(edge_index), edge_attr, return_attention_weights)
        return self._attention_forward(x, edge_index, edge_attr, return_attention_weights)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        heads, channels = self.heads, self.out_channels
        x_l = self.lin_l(x).view(-1, heads, channels)
        return x_l, (x_l if self.share_weights else self.lin_r(x).view(-1, heads, channels))

    def _scores(self, x_src, x_dst, adj, edge_attr):
        edge_index = adj.edge_index
        if edge_attr is not None and edge_attr.dim() == 1:
            edge_attr = edge_attr.unsqueeze(-1)
        num_edges, width = edge_index.size(1), self.heads * self.out_channels
        if torch.compiler.is_compiling() or num_edges * width < aggregate.PER_HEAD_MIN_MESSAGES:
            return self._edge_scores(x_src, x_dst, edge_index, edge_attr)
        # large graphs: the [E, H, C] pre-activation exists for one chunk of edges at a time, forward and backward
        # (each chunk is recomputed in the backward pass instead of being kept)
        chunk = SCORE_CHUNK_ELEMENTS if x_src.device.type == "cpu" else CUDA_SCORE_CHUNK_ELEMENTS
        step = max(1, chunk // width)
        return torch.cat([checkpoint(self._edge_scores, x_src, x_dst, edge_index[:, start:start + step],
                                     None if edge_attr is None else edge_attr[start:start + step],
                                     use_reentrant=False)
                          for start in range(0, max(num_edges, 1), step)])  # one chunk at least

    def _edge_scores(self, x_src, x_dst, edge_index, edge_attr):
        h = x_src.index_select(0, edge_index[0]) + x_dst.index_select(0, edge_index[1])
        if edge_attr is not None:
            h = h + self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
        h = F.leaky_relu(h, self.negative_slope)
        return (h * self.att).sum(-1)
