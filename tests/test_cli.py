import pytest

from gdl_graphs.bench.cli import main
from gdl_graphs.bench.verify import Entry, verify


def test_verify_certifies_every_conv_layer(capsys):
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    for name in ("GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv", "GATv2Conv"):
        assert name in out
    assert "S_n-equivariant" in out and "layers and models certified" in out
    for name in ("GraphTransformerLayer", "GPSLayer", "EGNNLayer", "model:gin", "model:gps", "model:egnn (dynamics)",
                 "model:egnn (property)", "model:gin (dynamics)"):
        assert name in out
    assert "S_n-invariant" in out and "E(n) x S_n-equivariant" in out


def test_verify_reports_a_broken_layer():
    import torch
    from torch import nn

    class Broken(nn.Module):
        symmetry = "S_n-equivariant"

        def forward(self, x, edge_index):
            return x + torch.arange(x.size(0)).unsqueeze(-1)

    rows = verify([Entry("Broken", Broken)])
    assert rows[0][3].startswith("FAILED") and "max abs error" in rows[0][3]


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nonsense"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
