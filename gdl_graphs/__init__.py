"""gdl_graphs: graph neural networks on the Geometric Deep Learning blueprint.

A network is a stack of local layers equivariant to the symmetry group of its domain (node permutations on graphs,
E(n) x S_n on point clouds), with nonlinearities, optional coarsening and a global invariant readout.

Subpackages: :mod:`gdl_graphs.nn` (layers), :mod:`gdl_graphs.models` (architectures),
:mod:`gdl_graphs.data` (benchmark loaders), :mod:`gdl_graphs.bench` (the ``gdl-bench`` harness) and
:mod:`gdl_graphs.testing` (symmetry checks you can run on your own layers).
"""

__version__ = "0.1.0"
