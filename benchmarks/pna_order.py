"""PNAConv's two message orders against PyG, forward + backward, on the workloads that set ``SORTED_MIN_MESSAGES``.

    python benchmarks/pna_order.py            # 128-molecule batches (a new one per call) and 100k / 1.6M x 64

Our layer is timed twice with the threshold forced: always in edge order (``index_add_`` sums, scatter min/max) and
always in CSR order (segment reductions), interleaved with PyG's layer by ``benchmarks/layers.py``'s timer (the CSR
build is part of every call). 4 aggregators x 3 scalers with edge features, as in ``benchmarks/layers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch_geometric.nn as pyg

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.layers import EDGE_DIM, MolecularBatches, random_graph, time_fwd_bwd
import gdl_graphs.nn as gnn
from gdl_graphs.nn.conv import pna

DEG = torch.tensor([0, 10, 20, 30, 20, 10, 5, 3, 1, 1])
OPTIONS = dict(aggregators=["mean", "min", "max", "std"], scalers=["identity", "amplification", "attenuation"],
               deg=DEG, edge_dim=EDGE_DIM, towers=1)


class InOrder(torch.nn.Module):
    """The layer with ``pna.SORTED_MIN_MESSAGES`` set to ``threshold`` during its forward."""

    def __init__(self, layer: torch.nn.Module, threshold: int):
        super().__init__()
        self.layer, self.threshold = layer, threshold

    def forward(self, *args):
        saved, pna.SORTED_MIN_MESSAGES = pna.SORTED_MIN_MESSAGES, self.threshold
        try:
            return self.layer(*args)
        finally:
            pna.SORTED_MIN_MESSAGES = saved


def main() -> int:
    cpu = torch.device("cpu")
    workloads = (("128 molecules x 15-35 atoms, 128 ch, new batch per call", 128, 40,
                  lambda channels: MolecularBatches(128, 15, 35, channels, cpu)),
                 ("random 100,000 / 1,600,000, 64 ch", 64, 3,
                  lambda channels: (lambda graph: lambda: graph)(random_graph(100_000, 1_600_000, channels, cpu))))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| graph | PyG ms | ours, edge order ms | ours, CSR order ms | edge order speed-up | CSR order speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, channels, repeats, source in workloads:
        torch.manual_seed(0)
        ours, reference = gnn.PNAConv(channels, channels, **OPTIONS), pyg.PNAConv(channels, channels, **OPTIONS)
        reference.load_state_dict(ours.state_dict())
        make = source(channels)
        inputs = [make() for _ in range(repeats + 1)]
        runs = [(reference, False), (InOrder(ours, 1 << 62), True), (InOrder(ours, 0), True)]
        pyg_s, edge_s, csr_s = time_fwd_bwd(runs, inputs, repeats, edge=True)
        print(f"| {label} | {1e3 * pyg_s:.1f} | {1e3 * edge_s:.1f} | {1e3 * csr_s:.1f} | {pyg_s / edge_s:.2f}x | "
              f"{pyg_s / csr_s:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
