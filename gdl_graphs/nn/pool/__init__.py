"""Coarsening, the blueprint's third block, one module per family: score-based selection (:mod:`.topk`), dense
learned clustering (:mod:`.dense`) and matching-based clustering (:mod:`.cluster`).

Every layer declares ``symmetry = PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS`` and says in ``pooled_outputs`` how its
outputs read as a pooled graph, which :func:`gdl_graphs.testing.assert_pooling_equivariant` checks.
"""

from gdl_graphs.nn.pool.cluster import GraclusPooling, graclus
from gdl_graphs.nn.pool.dense import DiffPool, MinCutPool, dense_diff_pool, dense_mincut_pool
from gdl_graphs.nn.pool.topk import SAGPooling, TopKPooling

__all__ = ["DiffPool", "GraclusPooling", "MinCutPool", "SAGPooling", "TopKPooling", "dense_diff_pool",
           "dense_mincut_pool", "graclus"]
