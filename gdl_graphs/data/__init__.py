"""Benchmark data: where it lives (:mod:`~gdl_graphs.data.root`) and how it loads.

``load_benchmark(name, root=None, **options)`` returns a :class:`Benchmark` (splits, task, metric, feature sizes)
for any dataset of :func:`list_benchmarks`; loaders live in :mod:`~gdl_graphs.data.molecules`,
:mod:`~gdl_graphs.data.lrgb`, :mod:`~gdl_graphs.data.social` (with :mod:`~gdl_graphs.data.gin_format`),
:mod:`~gdl_graphs.data.ogbn` and :mod:`~gdl_graphs.data.traffic`. :func:`from_smiles` turns your own SMILES into
graphs with OGB's features.
"""

from gdl_graphs.data.benchmark import METRICS, TASKS, Benchmark, ForecastSpec, Metric, benchmark_is_single_graph
from gdl_graphs.data.checksums import ChecksumError
from gdl_graphs.data.registry import REGISTRY, DatasetSpec, get_spec, list_benchmarks, load_benchmark
from gdl_graphs.data.root import DATA_ENV, data_root, default_root, export_data_root, require_data

__all__ = ["DATA_ENV", "data_root", "default_root", "export_data_root", "require_data", "Benchmark", "ForecastSpec",
           "TASKS", "METRICS", "Metric", "benchmark_is_single_graph", "ChecksumError", "DatasetSpec", "REGISTRY",
           "get_spec", "list_benchmarks", "load_benchmark", "from_smiles"]


def __getattr__(name: str):
    """``from_smiles`` is imported on first use (it pulls in RDKit and OGB), so ``import gdl_graphs.data`` stays
    cheap."""
    if name == "from_smiles":
        from gdl_graphs.data.molecules import from_smiles

        return from_smiles
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
