"""Forward + backward speed of stacks of :class:`gdl_graphs.nn.equivariant.EGNNLayer` against a plain-PyTorch
reference formulation of the same equations.

The reference (:class:`ReferenceEGCL`) is the formulation of the EGNN authors' code (``E_GCL`` in
vgsatorras/egnn): per edge it concatenates ``[h_i, h_j, ||x_i - x_j||^2]``, runs the edge MLP on the
concatenation and sums messages onto nodes with ``index_add_`` (the original uses the equivalent ``scatter_add_``).
Both compute the same function: the benchmark copies the weights across, layer by layer, and reports the largest
output difference. Both run on the same QM9-sized batches: random batches of real QM9 molecules (``QM9Pack``,
complete graph of each molecule, 18 atoms on average) when ``qm9pack`` is installed, else synthetic molecules of
10-26 atoms.

Every layer updates features and coordinates (the full E-GCL, as in the N-body model; the paper's QM9 model skips
the coordinate update, which is cheaper for both). The complete-graph ``edge_index`` of each batch is built before
timing (the reference gets it from its data loader too), but gdl_graphs' cached CSR structure of the graph is
dropped before every step, so its construction is timed, once per batch as in training.

    python benchmarks/egnn.py                                # CPU, and CUDA when available; 1, 4 and 7 layers
    python benchmarks/egnn.py --device cuda --batch-size 96 256 --layers 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

import torch_geometric

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.equivariant import EGNNLayer, complete_graph


class ReferenceEGCL(nn.Module):
    """The E-GCL equations written as in the original code: concatenate per edge, ``index_add_`` onto nodes."""

    def __init__(self, channels: int, normalize: bool = True, norm_constant: float = 1.0, eps: float = 1e-8):
        super().__init__()
        self.normalize, self.norm_constant, self.eps = normalize, norm_constant, eps
        self.edge_mlp = nn.Sequential(nn.Linear(2 * channels + 1, channels), nn.SiLU(),
                                      nn.Linear(channels, channels), nn.SiLU())
        self.coord_mlp = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, 1, bias=False))
        self.node_mlp = nn.Sequential(nn.Linear(2 * channels, channels), nn.SiLU(), nn.Linear(channels, channels))

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        source, target = edge_index
        diff = pos[target] - pos[source]
        radial = (diff ** 2).sum(dim=1, keepdim=True)
        if self.normalize:
            diff = diff / (torch.sqrt(radial + self.eps) + self.norm_constant)
        message = self.edge_mlp(torch.cat([h[target], h[source], radial], dim=1))
        trans = diff * self.coord_mlp(message)
        count = torch.zeros(pos.size(0), 1, dtype=pos.dtype, device=pos.device).index_add_(
            0, target, torch.ones_like(radial))
        shift = torch.zeros_like(pos).index_add_(0, target, trans) / count.clamp(min=1)
        aggregated = torch.zeros(h.size(0), message.size(1), dtype=h.dtype, device=h.device).index_add_(
            0, target, message)
        return h + self.node_mlp(torch.cat([h, aggregated], dim=1)), pos + shift


@torch.no_grad()
def copy_reference_weights(reference: ReferenceEGCL, layer: EGNNLayer) -> None:
    """Load the reference's weights into ``layer`` (same function: the first edge weight split by input)."""
    channels = layer.hidden_channels
    weight = reference.edge_mlp[0].weight                              # [H, 2F + 1]: [h_i | h_j | radial]
    layer.lin_node.weight.copy_(torch.cat([weight[:, :channels], weight[:, channels:2 * channels]], dim=0))
    layer.lin_radial.weight.copy_(weight[:, 2 * channels:])
    layer.bias_edge.copy_(reference.edge_mlp[0].bias)
    layer.lin_message.load_state_dict(reference.edge_mlp[2].state_dict())
    layer.phi_x.load_state_dict(reference.coord_mlp.state_dict())
    layer.phi_h.load_state_dict(reference.node_mlp.state_dict())


class ReferenceStack(nn.Module):
    """``num_layers`` reference layers applied in sequence to ``(h, pos)``."""

    def __init__(self, channels: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(ReferenceEGCL(channels) for _ in range(num_layers))

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        for layer in self.layers:
            h, pos = layer(h, pos, edge_index)
        return h, pos


class OurStack(nn.Module):
    """``num_layers`` :class:`EGNNLayer` applied in sequence through their public ``forward``."""

    def __init__(self, channels: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(EGNNLayer(channels, channels, channels) for _ in range(num_layers))

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        for layer in self.layers:
            h, pos = layer(h, pos, edge_index)
        return h, pos


def copy_stack_weights(reference: ReferenceStack, ours: OurStack) -> None:
    for ref_layer, our_layer in zip(reference.layers, ours.layers):
        copy_reference_weights(ref_layer, our_layer)


def qm9_batches(batch_size: int, count: int, seed: int, source: str) -> tuple[list[tuple[Tensor, Tensor]], str]:
    """``count`` batches of ``(pos, batch)`` with ``batch_size`` molecules each, and a description."""
    generator = torch.Generator().manual_seed(seed)
    if source in ("auto", "qm9pack"):
        try:
            from gdl_graphs.data.qm9 import QM9Pack
            dataset = QM9Pack()
        except ImportError:
            if source == "qm9pack":
                raise
        else:
            out = []
            for _ in range(count):
                idx = torch.randperm(len(dataset), generator=generator)[:batch_size]
                mols = [dataset[int(i)] for i in idx]
                pos = torch.cat([m.pos for m in mols])
                batch = torch.repeat_interleave(torch.arange(batch_size), torch.tensor([m.num_nodes for m in mols]))
                out.append((pos, batch))
            return out, "random QM9 molecules (QM9Pack)"
    out = []
    for _ in range(count):
        sizes = torch.randint(10, 27, (batch_size,), generator=generator)
        pos = torch.randn(int(sizes.sum()), 3, generator=generator) * 1.5
        out.append((pos, torch.repeat_interleave(torch.arange(batch_size), sizes)))
    return out, "synthetic molecules of 10-26 atoms"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(device: torch.device, batch_size: int, channels: int, num_layers: int, repeats: int, warmup: int,
              seed: int, source: str) -> dict:
    """Median and minimum fwd+bwd milliseconds of ours and the reference, timed alternately on the same batches."""
    torch.manual_seed(seed)
    reference = ReferenceStack(channels, num_layers).to(device)
    ours = OurStack(channels, num_layers).to(device)
    copy_stack_weights(reference, ours)
    batches, description = qm9_batches(batch_size, 4, seed, source)
    inputs = []
    for pos, batch in batches:
        pos, batch = pos.to(device), batch.to(device)
        edge_index = complete_graph(pos.size(0), batch)
        h = torch.randn(pos.size(0), channels, device=device)
        inputs.append((h.requires_grad_(), pos.requires_grad_(), edge_index))

    with torch.no_grad():
        h, pos, edge_index = inputs[0]
        (h_ref, x_ref), (h_our, x_our) = reference(h, pos, edge_index), ours(h, pos, edge_index)
        max_diff = max(float((h_ref - h_our).abs().max()), float((x_ref - x_our).abs().max()))

    def step(module: nn.Module, k: int) -> float:
        h, pos, edge_index = inputs[k % len(inputs)]
        module.zero_grad(set_to_none=True)
        h.grad = pos.grad = None
        aggregate.clear_cache()  # ours rebuilds the CSR structure of the batch inside the timed step
        _sync(device)
        start = time.perf_counter()
        h_out, pos_out = module(h, pos, edge_index)
        (h_out.sum() + pos_out.sum()).backward()
        _sync(device)
        return time.perf_counter() - start

    for k in range(warmup):
        step(reference, k), step(ours, k)
    times = {"reference": [], "ours": []}
    for k in range(repeats):
        times["reference"].append(step(reference, k))
        times["ours"].append(step(ours, k))
    ms = {name: 1e3 * statistics.median(values) for name, values in times.items()}
    best = {name: 1e3 * min(values) for name, values in times.items()}
    nodes = statistics.mean(inp[0].size(0) for inp in inputs)
    edges = statistics.mean(inp[2].size(1) for inp in inputs)
    return {"device": device.type, "batch_size": batch_size, "layers": num_layers, "nodes": nodes, "edges": edges,
            "data": description, "reference_ms": ms["reference"], "ours_ms": ms["ours"],
            "reference_min_ms": best["reference"], "ours_min_ms": best["ours"],
            "speedup": ms["reference"] / ms["ours"], "max_abs_diff": max_diff}



def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", nargs="+", default=None,
                        help="devices to run on (default: cpu, and cuda when available)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[96], help="molecules per batch (EGNN: 96)")
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 4, 7], help="layers in the stack (EGNN: 4 "
                        "on N-body, 7 on QM9)")
    parser.add_argument("--channels", type=int, default=128, help="hidden size (EGNN on QM9: 128)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--data", choices=("auto", "qm9pack", "synthetic"), default="auto")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, Python "
          f"{platform.python_version()}; load average {load:.2f} at the start")
    print(f"EGNNLayer stack vs reference E-GCL stack, fwd+bwd, float32, channels={args.channels}; "
          f"median [min] of {args.repeats} steps")
    print("| device | machine | molecules | layers | nodes | edges | reference ms | ours ms | reference / ours "
          "| max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda requested but CUDA is not available")
        for batch_size in args.batch_size:
            for num_layers in args.layers:
                r = benchmark(device, batch_size, args.channels, num_layers, args.repeats, args.warmup, args.seed,
                              args.data)
                results.append(r)
                print(f"| {r['device']} | {describe(device)} | {batch_size} | {num_layers} | {r['nodes']:.0f} | "
                      f"{r['edges']:.0f} | {r['reference_ms']:.1f} [{r['reference_min_ms']:.1f}] | "
                      f"{r['ours_ms']:.1f} [{r['ours_min_ms']:.1f}] | {r['speedup']:.2f}x | "
                      f"{r['max_abs_diff']:.1e} |", flush=True)
    if results:
        print(f"data: {results[0]['data']}; load average {os.getloadavg()[0]:.2f} at the end")
    return results


if __name__ == "__main__":
    main()
