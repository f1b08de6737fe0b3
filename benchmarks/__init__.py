"""Speed and comparison benchmarks (scripts) and the suites of ``gdl-bench``; importable as a package so that tests
and scripts share helpers (:mod:`benchmarks.machine`). Run a script as ``python -m benchmarks.egnn`` or
``python benchmarks/egnn.py``."""
