"""benchmarks/pyg_conv_tests.py: which import lines it rewrites, and how it reads pytest's report."""

import ast
import subprocess
import sys
import textwrap

from benchmarks import pyg_conv_tests

SOURCE = textwrap.dedent("""\
    import torch
    from torch_geometric.nn import GCNConv
    from torch_geometric.nn import MessagePassing, SAGEConv as Sage
    from torch_geometric.nn import (
        GINConv,
        global_add_pool,
    )
    from torch_geometric.nn.conv.gcn_conv import gcn_norm


    def test_body():
        from torch_geometric.nn import GATConv  # inside a function: left alone
        assert GCNConv is not None
""")


def test_drop_in_names_are_the_pyg_namesakes():
    names = pyg_conv_tests.drop_in_names()
    assert names == ["GATConv", "GATv2Conv", "GCNConv", "GINConv", "GINEConv", "NNConv", "PNAConv", "SAGEConv"]


def test_only_drop_in_names_move_to_gdl_graphs():
    swapped = pyg_conv_tests.swap_imports(SOURCE, ["GCNConv", "SAGEConv", "GINConv", "GATConv"])
    imports = {(node.module, alias.name, alias.asname) for node in ast.parse(swapped).body
               if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imports == {("gdl_graphs.nn", "GCNConv", None), ("torch_geometric.nn", "MessagePassing", None),
                       ("gdl_graphs.nn", "SAGEConv", "Sage"), ("gdl_graphs.nn", "GINConv", None),
                       ("torch_geometric.nn", "global_add_pool", None),
                       ("torch_geometric.nn.conv.gcn_conv", "gcn_norm", None)}
    assert "    from torch_geometric.nn import GATConv  # inside a function: left alone\n" in swapped
    assert swapped.endswith("def test_body():\n" + SOURCE.split("def test_body():\n")[1])


def test_report_outcomes_per_file(tmp_path):
    (tmp_path / "test_one.py").write_text(textwrap.dedent("""\
        import pytest

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "one is not two"

        @pytest.mark.skip(reason="not here")
        def test_skipped():
            pass
    """))
    (tmp_path / "test_broken.py").write_text("import a_module_that_does_not_exist\n")
    report = tmp_path / "report.xml"
    pyg_conv_tests.run_pytest(tmp_path, report)
    results = pyg_conv_tests.read_junit(report)
    assert {name: outcome for name, (outcome, _) in results["test_one"].items()} == {
        "test_passes": "passed", "test_fails": "failed", "test_skipped": "skipped"}
    assert "one is not two" in results["test_one"]["test_fails"][1]
    assert results["test_broken"]["<collection>"][0] == "failed"


def test_script_needs_test_files(tmp_path):
    run = subprocess.run([sys.executable, "benchmarks/pyg_conv_tests.py", str(tmp_path)], capture_output=True,
                         text=True, cwd=pyg_conv_tests.REPO)
    assert run.returncode != 0 and "no test_*.py files" in run.stderr
