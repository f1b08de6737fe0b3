"""The benchmark harness and the ``gdl-bench`` command line."""
