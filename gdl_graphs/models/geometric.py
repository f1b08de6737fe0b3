"""Models on point clouds with coordinates: an :class:`~gdl_graphs.nn.equivariant.EGNN` called on PyG batches."""

from __future__ import annotations

from torch import Tensor, nn

from gdl_graphs.groups import EN_EQUIVARIANT, PERMUTATION_INVARIANT


class EGNNOnData(nn.Module):
    """Calls an :class:`~gdl_graphs.nn.equivariant.EGNN` on a PyG batch: ``x`` / ``z``, ``pos``, ``edge_index``,
    ``batch``, and ``edge_attr`` / ``vel`` where the model was built to use them. Dynamics models output positions
    (E(n)-equivariant); property models one invariant vector per graph."""

    def __init__(self, egnn: nn.Module):
        super().__init__()
        self.egnn = egnn
        self.symmetry = EN_EQUIVARIANT if egnn.task == "dynamics" else PERMUTATION_INVARIANT

    def forward(self, data) -> Tensor:
        def field(key: str, wanted: bool = True):
            return getattr(data, key) if wanted and key in data else None

        return self.egnn(x=field("x"), pos=data.pos, edge_index=data.edge_index, batch=field("batch"),
                         edge_attr=field("edge_attr", self.egnn.edge_dim > 0), vel=field("vel", self.egnn.velocity),
                         z=field("z", self.egnn.num_atom_types is not None))
