"""benchmarks/temporal_vs_pgt.py: argument checks and our side everywhere; against PyTorch Geometric Temporal where
it can be loaded (it is a benchmark-only extra, absent in CI).

PGT is probed with the benchmark's own loader, not ``pytest.importorskip("torch_geometric_temporal")``: the package's
``__init__`` needs ``torch_sparse``, so importing it fails even where the two modules compared load fine.
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import temporal_vs_pgt as bench
from tests.fixtures.staged import require_staged

MONTEVIDEO = "traffic/MontevideoBus/montevideo_bus.json"


def rows(text: str) -> dict[tuple[str, str], float]:
    """``(model, implementation) -> test MSE`` from the printed table."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in bench.MODELS:
            out[cells[0], cells[1]] = float(cells[6].split()[0])
    return out


def pgt_or_skip() -> dict:
    try:
        classes, _ = bench.load_pgt()
    except bench.PGTUnavailable as error:
        pytest.skip(f"PyTorch Geometric Temporal unavailable: {error}")
    return classes


@pytest.mark.parametrize("argv, message", [
    (["--models", "gwn"], "--models"), (["--models", ","], "--models"), (["--epochs", "0"], "--epochs"),
    (["--limit-windows", "0"], "--limit-windows"), (["--threads", "0"], "--threads"),
    (["--seeds", "a"], "--seeds"), (["--seeds", "1,1"], "--seeds"), (["--seeds", "-1"], "--seeds"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err


def test_defaults_are_the_traffic_suite_settings():
    args = bench.parse_args([])
    assert args.models == ["dcrnn", "stgcn"] and args.threads == 1 and not args.ours_only
    configs = bench.suite_configs(args.suite)
    assert configs["dcrnn"].model_options == {"num_layers": 1, "K": 1}
    assert all(c.dataset_options == {"input_len": 12, "horizon": 12} and c.batch_size == 16 for c in configs.values())


@pytest.mark.data
def test_ours_only_tiny_run_prints_and_appends_the_table(staged_root, tmp_path, capsys):
    root = require_staged(staged_root, MONTEVIDEO)
    page = tmp_path / "page.md"
    argv = ["--ours-only", "--epochs", "1", "--limit-windows", "3", "--seeds", "0,1", "--data-root", str(root),
            "--markdown", str(page)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    found = rows(out)
    assert set(found) == {("dcrnn", "ours"), ("stgcn", "ours"), ("stgcn", "ours at PGT's widths")}
    assert all(math.isfinite(mse) and mse > 0 for mse in found.values())
    table = [line for line in out.splitlines() if line.startswith("| stgcn | ours |")]
    assert len(table) == 1 and "| 1 x 2 |" in table[0] and " ± " in table[0]  # one row over both seeds
    written = page.read_text()
    assert "--ours-only --epochs 1" in written and "torch_geometric_temporal (not used)" in written
    assert set(rows(written)) == set(found)


def test_pgt_wrappers_map_windows_to_forecasts():
    classes = pgt_or_skip()
    torch.manual_seed(0)
    n, edge_index = 5, torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])  # a cycle: every node has in- and out-edges
    edge_weight, x, y = torch.rand(5) + 0.5, torch.randn(2, 12, n, 1), torch.randn(2, 3, n)
    dcrnn = bench.PGTDCRNN(classes["dcrnn"], n, 1, 3, edge_index, edge_weight, hidden_channels=4, num_layers=2, K=1)
    assert dcrnn.encoder[0].K == 2  # one hop of ours is PGT's filter size 2
    out = dcrnn.train()(x, y, teacher_forcing_ratio=1.0)
    assert out.shape == (2, 3, n) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="needs the targets"):
        dcrnn(x, None, teacher_forcing_ratio=0.5)
    stgcn = bench.PGTSTGCN(classes["stgcn"], n, 1, 3, edge_index, edge_weight, in_steps=12, hidden_channels=4,
                           out_channels=8, num_blocks=2, kernel_size=3, K=3)
    out = stgcn(x)
    assert out.shape == (2, 3, n) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in stgcn.parameters())


@pytest.mark.data
def test_tiny_run_against_pgt_has_both_implementations_with_finite_mse(staged_root, capsys):
    pgt_or_skip()
    root = require_staged(staged_root, MONTEVIDEO)
    argv = ["--epochs", "1", "--limit-windows", "2", "--self-loops", "--data-root", str(root)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    found = rows(text)
    expected = {(m, side) for m in bench.MODELS for side in ("ours", "PGT")} | {("stgcn", "ours at PGT's widths")}
    assert set(found) == expected
    assert all(math.isfinite(mse) and mse > 0 for mse in found.values()), text
    assert "torch_geometric_temporal 0." in text and "self-loop on every stop" in text


def test_stgcn_at_pgt_widths_has_pgt_channels_and_the_rest_of_ours():
    """The third STGCN side is ours with PGT's block widths: the same architecture as PGT's up to the differences the
    output lists (temporal gate, normalisation, lambda_max)."""
    from gdl_graphs.models.temporal import STGCN

    n, edge_index = 5, torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])
    paper = STGCN(n, 1, 3, edge_index, channels=(64, 16, 64))
    assert bench.stgcn_channels(paper) == (64, 16, 64)
    assert bench.pgt_widths(bench.stgcn_channels(paper)) == (16, 16, 64)
    same = STGCN(n, 1, 3, edge_index, channels=bench.pgt_widths(bench.stgcn_channels(paper)))
    assert bench.stgcn_channels(same) == (16, 16, 64)
