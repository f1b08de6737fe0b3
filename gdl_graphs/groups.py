"""Names of the symmetry groups that layers and models declare in their ``symmetry`` class attribute.

:mod:`gdl_graphs.testing` maps each name to the check that certifies it.
"""

PERMUTATION_EQUIVARIANT = "S_n-equivariant"
"""Node permutations act on inputs and outputs alike (message-passing layers, attention layers)."""

PERMUTATION_INVARIANT = "S_n-invariant"
"""Node permutations leave the output unchanged (readouts, graph-level models)."""

EN_EQUIVARIANT = "E(n) x S_n-equivariant"
"""Rotations, reflections, translations and node permutations (EGNN and other geometric layers)."""

PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS = "S_n-equivariant up to a permutation of the clusters"
"""Coarsening: relabelling the input nodes maps the pooled graph (features, adjacency, assignments) onto itself up to
a relabelling of the pooled nodes (clusters); a readout after it is then :data:`PERMUTATION_INVARIANT`."""
