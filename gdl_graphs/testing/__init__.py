"""Public symmetry checks for your own layers and models (see :mod:`gdl_graphs.testing.symmetry`).

Every gdl_graphs layer and model declares the group it respects in a class attribute ``symmetry``
(:data:`PERMUTATION_EQUIVARIANT`, :data:`PERMUTATION_INVARIANT`, :data:`EN_EQUIVARIANT` or, for pooling layers,
:data:`PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS`, defined in :mod:`gdl_graphs.groups`);
:func:`check_symmetry` runs the matching check.
"""

from torch import nn
from torch_geometric.data import Data

from gdl_graphs.groups import (EN_EQUIVARIANT, PERMUTATION_EQUIVARIANT, PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS,
                               PERMUTATION_INVARIANT)
from gdl_graphs.testing.pooling import PoolThenReadout, assert_pooling_equivariant
from gdl_graphs.testing.symmetry import (
    assert_en_equivariant,
    assert_permutation_equivariant,
    assert_permutation_invariant,
    default_call,
    permute_graph,
    random_node_permutation,
    random_orthogonal,
)

_CHECKS = {
    PERMUTATION_EQUIVARIANT: assert_permutation_equivariant,
    PERMUTATION_INVARIANT: assert_permutation_invariant,
    EN_EQUIVARIANT: assert_en_equivariant,
    PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS: assert_pooling_equivariant,
}


def check_symmetry(module: nn.Module, data: Data, **kwargs) -> float:
    """Run the check that matches ``module.symmetry`` and return the max error (see the ``assert_*`` helpers)."""
    group = getattr(module, "symmetry", None)
    if group not in _CHECKS:
        raise ValueError(f"{type(module).__name__} declares no known symmetry (symmetry={group!r}); "
                         f"expected one of {sorted(_CHECKS)}")
    return _CHECKS[group](module, data, **kwargs)


__all__ = [
    "PoolThenReadout",
    "EN_EQUIVARIANT", "PERMUTATION_EQUIVARIANT", "PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS", "PERMUTATION_INVARIANT",
    "assert_en_equivariant", "assert_permutation_equivariant", "assert_permutation_invariant",
    "assert_pooling_equivariant",
    "check_symmetry", "default_call", "permute_graph", "random_node_permutation", "random_orthogonal",
]
