r"""DCRNN: diffusion convolutional recurrent neural network (Li et al., ICLR 2018).

A GRU whose matrix products are diffusion convolutions (:class:`~gdl_graphs.models.temporal.diffusion.DiffusionConv`
over the forward and backward random walks), stacked in a sequence-to-sequence encoder-decoder trained with
scheduled sampling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import Linear

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.models.temporal.diffusion import (
    DiffusionConv, GraphOperator, check_window, dense_adjacency, diffusion_operators,
)
from gdl_graphs.nn.validation import check_positive_ints


def scheduled_sampling_probability(step: int, decay_steps: float = 2000.0) -> float:
    r"""Probability of feeding the ground truth to the decoder after ``step`` training batches.

    The inverse sigmoid decay of DCRNN's scheduled sampling, :math:`\epsilon_i = \tau / (\tau + e^{i/\tau})`
    with :math:`\tau` = ``decay_steps`` (2000 in the reference configuration).
    """
    if decay_steps <= 0:
        raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return decay_steps / (decay_steps + math.exp(min(step / decay_steps, 700.0)))


class DCGRUCell(nn.Module):
    r"""Diffusion-convolutional GRU cell.

    .. math::
        \mathbf{r}, \mathbf{u} &= \sigma(\Theta_{r,u} \star_{\mathcal{G}} [\mathbf{X}, \mathbf{H}]) \\
        \mathbf{C} &= \tanh(\Theta_C \star_{\mathcal{G}} [\mathbf{X}, \mathbf{r} \odot \mathbf{H}]) \\
        \mathbf{H}' &= \mathbf{u} \odot \mathbf{H} + (1 - \mathbf{u}) \odot \mathbf{C}

    where :math:`\star_{\mathcal{G}}` is a :class:`DiffusionConv`. Gate biases start at 1 (reference code).

    Shapes:
        x ``[B, N, C_in]``, h ``[B, N, C_h]``, ``supports`` :math:`S` tensors ``[N, N]`` -> ``[B, N, C_h]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, in_channels: int, hidden_channels: int, num_supports: int = 2, K: int = 2):
        super().__init__()
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.gates = DiffusionConv(in_channels + hidden_channels, 2 * hidden_channels, num_supports, K)
        self.candidate = DiffusionConv(in_channels + hidden_channels, hidden_channels, num_supports, K)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.gates.reset_parameters()
        self.candidate.reset_parameters()
        nn.init.constant_(self.gates.lin.bias, 1.0)

    def forward(self, x: Tensor, h: Tensor, supports: list[Tensor]) -> Tensor:
        r, u = torch.sigmoid(self.gates(torch.cat([x, h], dim=-1), supports)).chunk(2, dim=-1)
        c = torch.tanh(self.candidate(torch.cat([x, r * h], dim=-1), supports))
        return u * h + (1.0 - u) * c

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, K={self.gates.K})"


class DCRNN(nn.Module):
    r"""DCRNN sequence-to-sequence forecaster.

    The encoder runs ``num_layers`` stacked :class:`DCGRUCell`\ s over the input window; the decoder (own
    parameters) starts from the encoder states and a zero "GO" input and emits
    :math:`\hat{y}_{t} = \mathbf{H}^{(L)}_t \mathbf{w} + b` per node, feeding back its prediction as the next input.
    With scheduled sampling (training mode only, ``teacher_forcing_ratio`` > 0 and targets ``y`` given) the next
    input is instead the ground truth, with that probability, drawn once per decoder step for the whole batch (as
    in the reference code); :func:`scheduled_sampling_probability` gives the paper's decay. In evaluation mode ``y`` is
    ignored, so targets never leak into a test forecast.

    The graph is held as the forward/backward random-walk operators (:func:`diffusion_operators`, as
    :class:`GraphOperator`\ s: sparse or dense by density), built once here from ``edge_index``/``edge_weight``.
    They are non-persistent buffers: a state dict holds only learned parameters, so it can be loaded into a model
    built on a relabelled copy of the graph.

    Args:
        num_nodes: sensors :math:`N`.
        in_channels: input features :math:`F` (feature 0 is the target signal).
        out_horizon: forecast steps :math:`T_{out}`.
        edge_index: ``[2, E]`` directed edges (sources first).
        edge_weight: ``[E]`` non-negative weights (ones if ``None``).
        hidden_channels: GRU state size (64 in the paper).
        num_layers: stacked cells in encoder and decoder (2).
        K: diffusion hops (2).

    Shapes:
        x ``[B, T_in, N, F]``, y ``[B, T_out, N]`` (optional) -> ``[B, T_out, N]``.
    """

    symmetry = PERMUTATION_EQUIVARIANT

    def __init__(self, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                 edge_weight: Tensor | None = None, *, hidden_channels: int = 64, num_layers: int = 2, K: int = 2):
        super().__init__()
        check_positive_ints(in_channels=in_channels, out_horizon=out_horizon, hidden_channels=hidden_channels,
                            num_layers=num_layers)
        self.num_nodes, self.in_channels, self.out_horizon = num_nodes, in_channels, out_horizon
        self.hidden_channels, self.num_layers, self.K = hidden_channels, num_layers, K
        self.supports = nn.ModuleList(GraphOperator(op) for op in
                                      diffusion_operators(dense_adjacency(edge_index, edge_weight, num_nodes)))
        self.encoder = nn.ModuleList(DCGRUCell(in_channels if i == 0 else hidden_channels, hidden_channels, 2, K)
                                     for i in range(num_layers))
        self.decoder = nn.ModuleList(DCGRUCell(1 if i == 0 else hidden_channels, hidden_channels, 2, K)
                                     for i in range(num_layers))
        self.head = Linear(hidden_channels, 1, weight_initializer="glorot", bias_initializer="zeros")

    def reset_parameters(self) -> None:
        for cell in (*self.encoder, *self.decoder):
            cell.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, y: Tensor | None = None, teacher_forcing_ratio: float = 0.0) -> Tensor:
        check_window(x, self.num_nodes, self.in_channels)
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        teacher = self.training and teacher_forcing_ratio > 0.0
        if teacher:
            expected = (x.size(0), self.out_horizon, self.num_nodes)
            if y is None:
                raise ValueError("teacher_forcing_ratio > 0 needs the targets y [batch, out_horizon, num_nodes]")
            if tuple(y.shape) != expected:
                raise ValueError(f"y must have shape {list(expected)}, got {list(y.shape)}")
        supports = list(self.supports)
        states = [x.new_zeros(x.size(0), self.num_nodes, self.hidden_channels) for _ in range(self.num_layers)]
        for t in range(x.size(1)):
            inp = x[:, t]
            for i, cell in enumerate(self.encoder):
                states[i] = inp = cell(inp, states[i], supports)
        inp = x.new_zeros(x.size(0), self.num_nodes, 1)
        outputs = []
        for t in range(self.out_horizon):
            for i, cell in enumerate(self.decoder):
                states[i] = inp = cell(inp, states[i], supports)
            out = self.head(inp)
            outputs.append(out)
            use_truth = teacher and float(torch.rand(())) < teacher_forcing_ratio
            inp = y[:, t].unsqueeze(-1) if use_truth else out
        return torch.cat(outputs, dim=-1).transpose(1, 2)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_nodes={self.num_nodes}, in_channels={self.in_channels}, "
                f"out_horizon={self.out_horizon}, hidden_channels={self.hidden_channels}, "
                f"num_layers={self.num_layers}, K={self.K})")
