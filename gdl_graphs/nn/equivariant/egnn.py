r"""E(n)-equivariant graph neural networks (Satorras, Hoogeboom & Welling, ICML 2021).

Node features :math:`\mathbf{h}_i` are E(n)-invariant, coordinates :math:`\mathbf{x}_i \in \mathbb{R}^n` are
E(n)-equivariant: rotating, reflecting or translating the input coordinates does the same to the output
coordinates and leaves the features unchanged, and permuting the nodes permutes both.

Edges follow PyG's convention: ``edge_index[0]`` holds the sources :math:`j`, ``edge_index[1]`` the targets
:math:`i`. Messages are reduced onto targets with :func:`gdl_graphs.nn.aggregate.reduce_edges` on the graph's
cached :class:`~gdl_graphs.nn.aggregate.Adjacency` (CSR incidence matmul in eager mode, built once per
``edge_index`` and shared by every layer of a forward and backward pass; scatter while compiling). Without an
``edge_index`` the layers use the complete graph of each graph in the batch (:func:`complete_graph`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch_geometric.utils import cumsum

from gdl_graphs.groups import EN_EQUIVARIANT
from gdl_graphs.nn.aggregate import Adjacency, adjacency, reduce_edges
from gdl_graphs.nn.validation import check_geometric_inputs, check_matches_layer

TASKS = ("property", "dynamics")
COORD_REDUCTIONS = ("mean", "sum")
READOUTS = ("sum", "mean")


def complete_graph(num_nodes: int, batch: Tensor | None = None, device: torch.device | None = None) -> Tensor:
    r"""Edges between every ordered pair of distinct nodes of the same graph, no edge across graphs.

    Built block by block (one dense :math:`n_g \times n_g` block per graph, minus the diagonal), so memory is
    :math:`O(\sum_g n_g^2)` whatever the mix of graph sizes. Edges are sorted by target.

    Args:
        num_nodes: total number of nodes :math:`N`.
        batch: LongTensor ``[N]``, sorted graph id of each node (PyG's ``batch``); ``None`` for a single graph.
        device: where to build the edges when ``batch`` is ``None``.

    Returns:
        LongTensor ``[2, \sum_g n_g (n_g - 1)]``, ``edge_index[0]`` the sources, ``edge_index[1]`` the targets.
    """
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [{num_nodes}], got {tuple(batch.shape)}")
    if num_nodes == 0:
        return torch.empty(2, 0, dtype=torch.long, device=batch.device)
    if bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (nodes of each graph contiguous), as PyG's Batch builds it")
    sizes = torch.bincount(batch)                               # n_g for every graph id
    ptr = cumsum(sizes)                                         # first node of each graph
    block = sizes[batch]                                        # n_g of each node's graph
    target = torch.repeat_interleave(torch.arange(num_nodes, device=batch.device), block)
    start = torch.repeat_interleave(cumsum(block)[:-1], block)  # where each target's row of the block starts
    source = ptr[batch][target] + torch.arange(target.numel(), device=batch.device) - start
    keep = source != target
    return torch.stack([source[keep], target[keep]])


def _mlp(channels: list[int], act: Callable[[], nn.Module], final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(channels) - 2 or final_act:
            layers.append(act())
    return nn.Sequential(*layers)


class EGNNLayer(nn.Module):
    r"""E(n)-equivariant graph convolution layer (E-GCL) of `Satorras et al. (2021)
    <https://arxiv.org/abs/2102.09844>`_, with the optional velocity term and edge-inference gate.

    .. math::
        \mathbf{m}_{ij} &= \phi_e\big(\mathbf{h}_i, \mathbf{h}_j, \lVert\mathbf{x}_i - \mathbf{x}_j\rVert^2,
            \mathbf{a}_{ij}\big) \\
        \mathbf{x}_i' &= \mathbf{x}_i + C \sum_{j \in \mathcal{N}(i)} \frac{\mathbf{x}_i - \mathbf{x}_j}{d_{ij}}\,
            \phi_x(\mathbf{m}_{ij}) \;\big[+\; \phi_v(\mathbf{h}_i)\, \mathbf{v}_i\big] \\
        \mathbf{h}_i' &= \big[\mathbf{h}_i +\big]\; \phi_h\Big(\mathbf{h}_i, \sum_{j \in \mathcal{N}(i)}
            e_{ij}\, \mathbf{m}_{ij}\Big)

    with :math:`C = 1/|\mathcal{N}(i)|` (``coord_reduce='mean'``, the paper's :math:`1/(M-1)` on a complete
    graph) or :math:`C = 1` (``'sum'``); :math:`d_{ij} = \sqrt{\lVert\mathbf{x}_i - \mathbf{x}_j\rVert^2 +
    \epsilon} + c` (``norm_constant`` :math:`c`) with ``normalize=True`` (the default), which keeps coordinate
    updates bounded when coordinates are large, or :math:`d_{ij} = 1` with ``normalize=False`` (the paper's
    update, which overflows for coordinates scaled by :math:`10^3`);
    :math:`e_{ij} = \sigma(\phi_{inf}(\mathbf{m}_{ij}))` with ``edge_inference=True``, else 1; :math:`\phi_x`
    ends in ``coord_bound * tanh`` when ``coord_bound`` is set. The velocity term uses the input velocities :math:`\mathbf{v}_i` (the paper's Eq. 7). The residual
    :math:`\mathbf{h}_i +` applies when ``in_channels == out_channels``.

    The first linear map of :math:`\phi_e` is applied to the node features *before* gathering them onto edges
    (a linear map commutes with indexing) and its bias is added per node, which saves an ``[E, 2F] x [2F, H]``
    matrix product per layer; the distance term is one fused multiply-add. The result is the same as
    concatenating :math:`(\mathbf{h}_i, \mathbf{h}_j, \ldots)` per edge (``benchmarks/egnn.py`` checks it).
    Reductions go through :func:`~gdl_graphs.nn.aggregate.reduce_edges` on the graph's cached
    :class:`~gdl_graphs.nn.aggregate.Adjacency`.

    Args:
        in_channels: node feature size :math:`F`.
        out_channels: output node feature size.
        hidden_channels: message size :math:`H` (default ``out_channels``).
        edge_dim: size of the edge attributes :math:`\mathbf{a}_{ij}` (0 for none).
        velocity: add the velocity term (``vel`` is then required).
        edge_inference: gate messages with :math:`e_{ij}` (soft edge inference).
        update_pos: update coordinates; with ``False`` the layer is E(n)-invariant and returns ``pos`` unchanged.
        normalize: divide coordinate differences by :math:`d_{ij}` as above, for stability (``False``: the paper).
        norm_constant: :math:`c` in :math:`d_{ij}`.
        coord_reduce: ``'mean'`` or ``'sum'`` over neighbours for the coordinate update.
        coord_bound: if set, :math:`\phi_x = \text{coord\_bound} \cdot \tanh(\cdot)`.
        act: activation module class (default :class:`~torch.nn.SiLU`).
        eps: :math:`\epsilon` under the square root.

    Shapes:
        - **input:** ``x`` ``[N, F]``, ``pos`` ``[N, n]``, ``edge_index`` ``[2, E]`` or ``None`` (complete graph
          of each graph in ``batch``), ``batch`` ``[N]``, ``edge_attr`` ``[E, edge_dim]``, ``vel`` ``[N, n]``
        - **output:** ``(x', pos')`` of shapes ``[N, out_channels]`` and ``[N, n]``
    """

    symmetry = EN_EQUIVARIANT

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | None = None, edge_dim: int = 0,
                 velocity: bool = False, edge_inference: bool = False, update_pos: bool = True,
                 normalize: bool = True, norm_constant: float = 1.0, coord_reduce: str = "mean",
                 coord_bound: float | None = None, act: Callable[[], nn.Module] = nn.SiLU, eps: float = 1e-8):
        super().__init__()
        hidden_channels = out_channels if hidden_channels is None else hidden_channels
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden_channels", hidden_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if edge_dim < 0:
            raise ValueError(f"edge_dim must be >= 0, got {edge_dim}")
        if coord_reduce not in COORD_REDUCTIONS:
            raise ValueError(f"coord_reduce must be one of {COORD_REDUCTIONS}, got {coord_reduce!r}")
        if coord_bound is not None and coord_bound <= 0:
            raise ValueError(f"coord_bound must be positive or None, got {coord_bound}")
        if norm_constant < 0 or eps <= 0:
            raise ValueError(f"norm_constant must be >= 0 and eps > 0, got {norm_constant}, {eps}")
        if velocity and not update_pos:
            raise ValueError("velocity=True needs update_pos=True (the velocity term moves coordinates)")
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        self.edge_dim, self.velocity, self.edge_inference = edge_dim, velocity, edge_inference
        self.update_pos, self.normalize, self.norm_constant = update_pos, normalize, norm_constant
        self.coord_reduce, self.coord_bound, self.eps = coord_reduce, coord_bound, eps
        self.residual = in_channels == out_channels

        # phi_e, first layer split by input: [h_i | h_j] on nodes, ||x_i - x_j||^2 and a_ij on edges.
        self.lin_node = nn.Linear(in_channels, 2 * hidden_channels, bias=False)
        self.lin_radial = nn.Linear(1, hidden_channels, bias=False)
        self.lin_edge = nn.Linear(edge_dim, hidden_channels, bias=False) if edge_dim else None
        self.bias_edge = nn.Parameter(torch.empty(hidden_channels))
        self.act = act()
        self.lin_message = nn.Linear(hidden_channels, hidden_channels)
        self.gate = nn.Linear(hidden_channels, 1) if edge_inference else None
        self.phi_h = _mlp([in_channels + hidden_channels, hidden_channels, out_channels], act)
        # phi_x ends in a bias-free layer with a tiny initialisation (see reset_parameters), as in the paper's code.
        self.phi_x = (nn.Sequential(nn.Linear(hidden_channels, hidden_channels), act(),
                                    nn.Linear(hidden_channels, 1, bias=False)) if update_pos else None)
        self.phi_v = _mlp([in_channels, hidden_channels, 1], act) if velocity else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise all weights (PyTorch defaults; the first message layer as one ``nn.Linear`` over the
        concatenated edge input; the last layer of :math:`\\phi_x` Xavier-uniform with gain 0.001)."""
        fan_in = 2 * self.in_channels + 1 + self.edge_dim
        bound = 1.0 / math.sqrt(fan_in)
        for lin in (self.lin_node, self.lin_radial, self.lin_edge):
            if lin is not None:
                nn.init.uniform_(lin.weight, -bound, bound)
        nn.init.uniform_(self.bias_edge, -bound, bound)
        for module in (self.lin_message, self.gate, self.phi_h, self.phi_x, self.phi_v):
            if module is None:
                continue
            for lin in module.modules():
                if isinstance(lin, nn.Linear):
                    lin.reset_parameters()
        if self.phi_x is not None:
            nn.init.xavier_uniform_(self.phi_x[-1].weight, gain=0.001)

    def forward(self, x: Tensor, pos: Tensor, edge_index: Tensor | None = None, batch: Tensor | None = None,
                edge_attr: Tensor | None = None, vel: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return the updated ``(x, pos)``; ``edge_index=None`` uses the complete graph of each graph in ``batch``."""
        check_geometric_inputs(x, pos, edge_index, batch, edge_attr, vel, self.in_channels, self.edge_dim)
        for name, tensor in (("x", x), ("pos", pos), ("edge_attr", edge_attr), ("vel", vel)):
            if tensor is not None:
                check_matches_layer(tensor, self, name)
        if edge_index is not None:
            edge_index = edge_index.long()
        if self.velocity and vel is None:
            raise ValueError("vel is required: the layer was built with velocity=True")
        if not self.velocity and vel is not None:
            raise ValueError("vel was given but the layer was built with velocity=False")
        if edge_index is None:
            edge_index = complete_graph(x.size(0), batch, device=x.device)
        return self._propagate(x, pos, edge_index, edge_attr, vel)

    def _propagate(self, x: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor | None,
                   vel: Tensor | None, adj: Adjacency | None = None) -> tuple[Tensor, Tensor]:
        num_nodes = x.size(0)
        if adj is None:
            adj = adjacency(edge_index, num_nodes)
        source, target = edge_index
        diff = pos.index_select(0, target) - pos.index_select(0, source)      # x_i - x_j, [E, n]
        radial = (diff * diff).sum(dim=-1, keepdim=True)                      # [E, 1]

        to_target, to_source = self.lin_node(x).chunk(2, dim=-1)              # W_i h, W_j h: [N, H] each
        to_target = to_target + self.bias_edge                                # the bias, added per node not per edge
        pre = to_target.index_select(0, target) + to_source.index_select(0, source)
        pre = torch.addcmul(pre, radial, self.lin_radial.weight.view(1, -1))  # + w_r ||x_i - x_j||^2, fused
        if self.lin_edge is not None:
            pre = pre + self.lin_edge(edge_attr)
        message = self.act(self.lin_message(self.act(pre)))                  # m_ij, [E, H]

        gated = message if self.gate is None else message * torch.sigmoid(self.gate(message))
        # Sums and means over the cached CSR incidence of the graph (one build per edge_index, shared by all layers).
        # The [E, n] coordinate messages are too small for a fused reduction with the [E, H] ones to pay off.
        aggregated = reduce_edges(gated, target, num_nodes, "sum", adj)
        pos_out = pos
        if self.phi_x is not None:
            weight = self.phi_x(message)
            if self.coord_bound is not None:
                weight = self.coord_bound * torch.tanh(weight)
            if self.normalize:
                diff = diff / (torch.sqrt(radial + self.eps) + self.norm_constant)
            pos_out = pos + reduce_edges(diff * weight, target, num_nodes, self.coord_reduce, adj)
            if self.phi_v is not None:
                pos_out = pos_out + self.phi_v(x) * vel

        out = self.phi_h(torch.cat([x, aggregated], dim=-1))
        if self.residual:
            out = x + out
        return out, pos_out

    def __repr__(self) -> str:
        extras = [f"hidden_channels={self.hidden_channels}"]
        if self.edge_dim:
            extras.append(f"edge_dim={self.edge_dim}")
        for flag in ("velocity", "edge_inference"):
            if getattr(self, flag):
                extras.append(f"{flag}=True")
        if not self.update_pos:
            extras.append("update_pos=False")
        else:
            extras.append(f"coord_reduce={self.coord_reduce!r}")
            extras.append(f"normalize={self.normalize}")
        if self.coord_bound is not None:
            extras.append(f"coord_bound={self.coord_bound}")
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {', '.join(extras)})"


class EGNN(nn.Module):
    r"""A stack of :class:`EGNNLayer` with an invariant readout (``task='property'``) or an equivariant
    coordinate output (``task='dynamics'``).

    .. math::
        \mathbf{h}^{0}_i = W\mathbf{x}_i\,[+\,E_{z_i}], \quad
        (\mathbf{h}^{l+1}, \mathbf{X}^{l+1}) = \mathrm{EGCL}_l(\mathbf{h}^{l}, \mathbf{X}^{l}), \quad
        \hat{y}_G = \phi_{out}\Big(\bigoplus_{i \in G} \phi_{node}(\mathbf{h}^{L}_i)\Big)
        \;\text{ or }\; \hat{\mathbf{X}} = \mathbf{X}^{L}

    ``'property'`` is the paper's QM9 model: by default its layers do not move coordinates (``update_pos=False``,
    as in the paper's QM9 code) and the readout is a sum over the nodes of each graph, so the prediction is
    E(n)- and permutation-invariant. ``'dynamics'`` is the paper's N-body model: coordinates are updated in every
    layer, with the velocity term by default, and the output is the final coordinates.

    Args:
        in_channels: node feature size (0 if only atomic numbers ``z`` are used).
        hidden_channels: width of every layer.
        out_channels: number of graph-level targets (``'property'``), or the coordinate dimension ``n``
            (``'dynamics'``; checked against ``pos``).
        num_layers: number of :class:`EGNNLayer`.
        edge_dim: size of ``edge_attr`` (0 for none).
        task: ``'property'`` or ``'dynamics'``.
        num_atom_types: if set, an embedding of ``z`` (values in ``[0, num_atom_types)``) is added to the input.
        velocity: velocity term in every layer (default: ``task == 'dynamics'``).
        update_pos: move coordinates between layers (default: ``task == 'dynamics'``).
        readout: ``'sum'`` or ``'mean'`` pooling of the ``'property'`` head.
        **layer_kwargs: passed on to :class:`EGNNLayer` (``edge_inference``, ``normalize``, ``coord_reduce``,
            ``coord_bound``, ``norm_constant``, ``act``).

    Shapes:
        - **input:** ``x`` ``[N, in_channels]``, ``pos`` ``[N, n]``, ``edge_index`` ``[2, E]`` or ``None``
          (complete graph of each graph), ``batch`` ``[N]``, ``edge_attr`` ``[E, edge_dim]``, ``vel`` ``[N, n]``,
          ``z`` ``[N]``
        - **output:** ``[num_graphs, out_channels]`` (``'property'``) or ``[N, n]`` (``'dynamics'``)

    Example::

        # N-body (load_benchmark("nbody")): x = (charge, speed), edge_attr = q_i q_j, predicted positions [N, 3]
        model = EGNN(2, 64, 3, num_layers=4, edge_dim=1, task="dynamics")
        pos_pred = model(b.x, b.pos, b.edge_index, b.batch, edge_attr=b.edge_attr, vel=b.vel)
        # QM9 (load_benchmark("QM9", target="homo")): complete graph of each molecule, one value per molecule
        model = EGNN(5, 128, 1, num_layers=7)
        homo = model(b.x, b.pos, batch=b.batch)                      # [num_graphs, 1]
    """

    symmetry = EN_EQUIVARIANT

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 4,
                 edge_dim: int = 0, task: str = "property", num_atom_types: int | None = None,
                 velocity: bool | None = None, update_pos: bool | None = None, readout: str = "sum",
                 **layer_kwargs):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if in_channels < 0 or (in_channels == 0 and not num_atom_types):
            raise ValueError(f"in_channels must be >= 1 (or 0 with num_atom_types), got {in_channels}")
        if hidden_channels < 1 or out_channels < 1:
            raise ValueError(f"hidden_channels and out_channels must be >= 1, got {hidden_channels}, {out_channels}")
        dynamics = task == "dynamics"
        velocity = dynamics if velocity is None else velocity
        update_pos = dynamics if update_pos is None else update_pos
        if dynamics and not update_pos:
            raise ValueError("task='dynamics' predicts coordinates, so update_pos must be True")
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.num_layers, self.edge_dim, self.task, self.readout = num_layers, edge_dim, task, readout
        self.num_atom_types, self.velocity, self.update_pos = num_atom_types, velocity, update_pos

        self.embed_x = nn.Linear(in_channels, hidden_channels) if in_channels else None
        self.embed_z = nn.Embedding(num_atom_types, hidden_channels) if num_atom_types else None
        # In a property model the last layer's coordinates are never read, so it does not compute them.
        moves = [update_pos and (dynamics or k < num_layers - 1) for k in range(num_layers)]
        self.layers = nn.ModuleList(
            EGNNLayer(hidden_channels, hidden_channels, edge_dim=edge_dim, velocity=velocity and move,
                      update_pos=move, **layer_kwargs)
            for move in moves)
        if dynamics:
            self.node_head = self.graph_head = None
        else:
            act = layer_kwargs.get("act", nn.SiLU)
            self.node_head = _mlp([hidden_channels, hidden_channels, hidden_channels], act)
            self.graph_head = _mlp([hidden_channels, hidden_channels, out_channels], act)

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        for module in (self.embed_x, self.embed_z, *self.layers):
            if module is not None:
                module.reset_parameters()
        for head in (self.node_head, self.graph_head):
            if head is not None:
                for lin in head:
                    if isinstance(lin, nn.Linear):
                        lin.reset_parameters()

    def forward(self, x: Tensor | None = None, pos: Tensor | None = None, edge_index: Tensor | None = None,
                batch: Tensor | None = None, edge_attr: Tensor | None = None, vel: Tensor | None = None,
                z: Tensor | None = None) -> Tensor:
        """Graph-level predictions ``[num_graphs, out_channels]`` (``'property'``) or predicted coordinates
        ``[N, n]`` (``'dynamics'``). ``edge_index=None`` uses the complete graph of each graph in ``batch``;
        ``edge_attr`` is required when ``edge_dim > 0``, ``vel`` when ``velocity`` is on, ``z`` with
        ``num_atom_types`` (ignored otherwise)."""
        if pos is None:
            raise ValueError("pos is required")
        h = self._embed(x, z, pos)
        if self.task == "dynamics" and pos.size(-1) != self.out_channels:
            raise ValueError(f"pos has {pos.size(-1)} coordinates but out_channels={self.out_channels}")
        check_geometric_inputs(h, pos, edge_index, batch, edge_attr, vel, self.hidden_channels, self.edge_dim)
        if self.velocity and vel is None:
            raise ValueError("vel is required: the model was built with velocity=True")
        if edge_index is None:
            edge_index = complete_graph(pos.size(0), batch, device=pos.device)
        vel = vel if self.velocity else None
        adj = adjacency(edge_index, pos.size(0))
        for layer in self.layers:
            h, pos = layer._propagate(h, pos, edge_index, edge_attr, vel, adj)
        if self.task == "dynamics":
            return pos
        h = self.node_head(h)
        if batch is None:
            batch = torch.zeros(h.size(0), dtype=torch.long, device=h.device)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return self.graph_head(reduce_edges(h, batch, num_graphs, self.readout))

    def _embed(self, x: Tensor | None, z: Tensor | None, pos: Tensor) -> Tensor:
        h = None
        if self.embed_x is not None:
            if x is None:
                raise ValueError(f"x is required: the model was built with in_channels={self.in_channels}")
            if x.dim() != 2 or x.size(1) != self.in_channels or x.size(0) != pos.size(0):
                raise ValueError(f"x must have shape [{pos.size(0)}, {self.in_channels}], got {tuple(x.shape)}")
            h = self.embed_x(x)
        if self.embed_z is not None:
            if z is None:
                raise ValueError(f"z is required: the model was built with num_atom_types={self.num_atom_types}")
            if z.shape != (pos.size(0),) or z.dtype != torch.long:
                raise ValueError(f"z must be a LongTensor of shape [{pos.size(0)}], got {tuple(z.shape)} {z.dtype}")
            if z.numel() and (int(z.min()) < 0 or int(z.max()) >= self.num_atom_types):
                raise ValueError(f"z has values outside [0, {self.num_atom_types})")
            emb = self.embed_z(z)
            h = emb if h is None else h + emb
        return h

    def __repr__(self) -> str:
        parts = [f"{self.in_channels}", f"{self.hidden_channels}", f"{self.out_channels}",
                 f"num_layers={self.num_layers}", f"task={self.task!r}"]
        if self.num_atom_types:
            parts.append(f"num_atom_types={self.num_atom_types}")
        if self.edge_dim:
            parts.append(f"edge_dim={self.edge_dim}")
        if self.velocity:
            parts.append("velocity=True")
        if self.task == "property":
            parts.append(f"readout={self.readout!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
