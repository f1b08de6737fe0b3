"""Forward + backward speed of :class:`gdl_graphs.nn.equivariant.EGNNLayer` against a plain-PyTorch reference.

The reference (:class:`ReferenceEGCL`) is the formulation of the EGNN authors' code (``E_GCL`` in
vgsatorras/egnn): per edge it concatenates ``[h_i, h_j, ||x_i - x_j||^2]``, runs the edge MLP on the
concatenation and sums messages onto nodes with ``index_add_`` (the original uses the equivalent ``scatter_add_``).
It computes the same function as our layer; the benchmark copies the weights across and checks the outputs agree
before timing. Both run on the same QM9-sized batches: random batches of real QM9 molecules (``QM9Pack``, complete
graph of each molecule) when ``qm9pack`` is installed, else synthetic molecules of 10-26 atoms (QM9 has 18 on
average).

    python benchmarks/egnn.py                       # CPU, and CUDA when available
    python benchmarks/egnn.py --device cuda --batch-size 96 256
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import Tensor, nn

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


def benchmark(device: torch.device, batch_size: int, channels: int, repeats: int, warmup: int, seed: int,
              source: str) -> dict:
    """Median fwd+bwd milliseconds of ours and the reference, timed alternately on the same batches."""
    torch.manual_seed(seed)
    reference = ReferenceEGCL(channels).to(device)
    ours = EGNNLayer(channels, channels, channels).to(device)
    copy_reference_weights(reference, ours)
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
    nodes = statistics.mean(inp[0].size(0) for inp in inputs)
    edges = statistics.mean(inp[2].size(1) for inp in inputs)
    return {"device": device.type, "batch_size": batch_size, "nodes": nodes, "edges": edges, "data": description,
            "reference_ms": ms["reference"], "ours_ms": ms["ours"], "speedup": ms["reference"] / ms["ours"],
            "max_abs_diff": max_diff}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", nargs="+", default=None,
                        help="devices to run on (default: cpu, and cuda when available)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[96], help="molecules per batch (EGNN: 96)")
    parser.add_argument("--channels", type=int, default=128, help="hidden size (EGNN on QM9: 128)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=("auto", "qm9pack", "synthetic"), default="auto")
    args = parser.parse_args(argv)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__}; EGNNLayer vs reference E-GCL, fwd+bwd, float32, channels={args.channels}")
    print("| device | machine | batch (molecules) | nodes | edges | reference ms | ours ms | speedup | max |diff| |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda requested but CUDA is not available")
        for batch_size in args.batch_size:
            r = benchmark(device, batch_size, args.channels, args.repeats, args.warmup, args.seed, args.data)
            results.append(r)
            print(f"| {r['device']} | {machine(device)} | {batch_size} | {r['nodes']:.0f} | {r['edges']:.0f} | "
                  f"{r['reference_ms']:.2f} | {r['ours_ms']:.2f} | {r['speedup']:.2f}x | {r['max_abs_diff']:.1e} |")
    print(f"data: {results[0]['data']}" if results else "no run")
    return results


if __name__ == "__main__":
    main()
