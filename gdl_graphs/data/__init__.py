"""Benchmark data: where it lives (:mod:`~gdl_graphs.data.root`) and how it loads."""

from gdl_graphs.data.root import DATA_ENV, data_root, require_data

__all__ = ["DATA_ENV", "data_root", "require_data"]
