"""Complete-graph attention, forward+backward: gdl_graphs (padded fused SDPA) against PyG's TransformerConv and
GATConv on the explicit complete-graph edge list, same inputs, same run.

    flock /tmp/gdl_heavy.lock .venv/bin/python benchmarks/attention.py                 # CPU
    python benchmarks/attention.py --device cuda --sweep 32,64,128,256,512,1024        # GPU

All three compute multi-head attention of every node over all nodes of its graph (``channels / heads`` per head):
``GraphMultiheadAttention(C, H)`` (QKV + output projections), ``TransformerConv(C, C/H, heads=H,
root_weight=False)`` (Q, K, V projections) and ``GATConv(C, C/H, heads=H, add_self_loops=False)`` (GAT's additive
attention, one projection). PyG gets the complete-graph ``edge_index`` (self-pairs included) prebuilt; building it is
not timed, and its size is reported.

Time: median (and minimum) over ``--repeats`` steps after warm-up, the methods of one size interleaved step by step
(so load from other processes hits all of them alike); a step is ``zero_grad``, forward, ``backward`` with a fixed
random output gradient. Peak memory: bytes allocated during one step above what was allocated before it (inputs,
parameters, edge list): ``torch.cuda.max_memory_allocated`` on GPU; on CPU, the running sum of the tensor
allocation/free events recorded by ``torch.profiler`` with ``profile_memory=True``. On CPU an address-space limit
(``--cpu-memory-limit-gb``) turns a too-large run into a reported "OOM" instead of exhausting the shared machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_geometric
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch_geometric.nn import GATConv, TransformerConv

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from gdl_graphs.nn.attention import GraphMultiheadAttention

METHODS = {
    "sdpa": "gdl_graphs padded SDPA",
    "transformer_conv": "PyG TransformerConv (complete edge list)",
    "gat_conv": "PyG GATConv (complete edge list)",
}


@dataclass
class Result:
    method: str
    graphs: int
    nodes: int
    time_ms: float | None = None
    min_ms: float | None = None
    peak_mb: float | None = None
    status: str = "ok"


def build(method: str, channels: int, heads: int) -> nn.Module:
    if method == "sdpa":
        return GraphMultiheadAttention(channels, heads)
    if method == "transformer_conv":
        return TransformerConv(channels, channels // heads, heads=heads, root_weight=False)
    return GATConv(channels, channels // heads, heads=heads, add_self_loops=False)


def complete_graph_edge_index(graphs: int, nodes: int, device: torch.device) -> torch.Tensor:
    """All ordered pairs within each of ``graphs`` graphs of ``nodes`` nodes: [2, graphs * nodes^2]."""
    local = torch.arange(nodes, device=device)
    src, dst = local.repeat(nodes), local.repeat_interleave(nodes)
    offset = (torch.arange(graphs, device=device) * nodes).repeat_interleave(nodes * nodes)
    return torch.stack([src.repeat(graphs) + offset, dst.repeat(graphs) + offset])


def is_oom(error: BaseException) -> bool:
    """CUDA out-of-memory, a CPU allocation refused under the address-space limit, or cuBLAS failing to allocate."""
    messages = ("can't allocate memory", "out of memory", "CUBLAS_STATUS_ALLOC_FAILED")
    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in messages))


def peak_cpu_bytes(step) -> int:
    """Peak of the running sum of tensor allocations during ``step()``, from the profiler's memory events."""
    from torch._C._profiler import _EventType

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation:
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return peak


class Case:
    """One method on one input size: module, inputs and a fixed output gradient."""

    def __init__(self, method: str, graphs: int, nodes: int, args):
        device = torch.device(args.device)
        torch.manual_seed(0)
        self.module = build(method, args.channels, args.heads).to(device)
        self.x = torch.randn(graphs * nodes, args.channels, device=device, requires_grad=True)
        self.grad = torch.randn(graphs * nodes, args.channels, device=device)
        if method == "sdpa":
            self.inputs = (self.x, torch.arange(graphs, device=device).repeat_interleave(nodes))
        else:
            self.inputs = (self.x, complete_graph_edge_index(graphs, nodes, device))

    def step(self) -> None:
        """zero_grad, forward, backward."""
        self.module.zero_grad(set_to_none=True)
        self.x.grad = None
        self.module(*self.inputs).backward(self.grad)


def run_size(methods: list[str], graphs: int, nodes: int, args) -> dict[str, Result]:
    """Warm up and measure the peak memory of each method, then time them interleaved (step of method 1, of
    method 2, ..., repeated), so that load from other processes hits every method alike."""
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    results = {m: Result(METHODS[m], graphs, nodes) for m in methods}
    cases, times, slowest = {}, {m: [] for m in methods}, 0.0

    def guarded(method, work):
        try:
            work()
            return True
        except Exception as error:  # noqa: BLE001 - only out-of-memory is expected; anything else is re-raised
            if not is_oom(error):
                raise
            results[method].status = "OOM"
            cases.pop(method, None)
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            return False

    for method in methods:
        def prepare(method=method):
            nonlocal slowest
            case = cases[method] = Case(method, graphs, nodes, args)
            start = time.perf_counter()
            for _ in range(args.warmup):
                case.step()
            sync()
            slowest = max(slowest, (time.perf_counter() - start) / max(args.warmup, 1))
            case.module.zero_grad(set_to_none=True)
            case.x.grad = None
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                case.step()
                sync()
                results[method].peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
            else:
                results[method].peak_mb = peak_cpu_bytes(case.step) / 2**20

        guarded(method, prepare)

    repeats = max(1, min(args.repeats, int(args.budget_s / slowest))) if slowest > 0 else args.repeats
    for _ in range(repeats):
        for method in list(cases):
            def timed(method=method):
                sync()
                start = time.perf_counter()
                cases[method].step()
                sync()
                times[method].append(time.perf_counter() - start)

            guarded(method, timed)
    for method in methods:
        if results[method].status == "ok":
            results[method].time_ms = 1e3 * statistics.median(times[method])
            results[method].min_ms = 1e3 * min(times[method])
    cases.clear()
    gc.collect()
    return results



def cell(r: Result) -> str:
    return f"{r.time_ms:.1f} [{r.min_ms:.1f}] ms / {r.peak_mb:.0f} MB" if r.status == "ok" else r.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--graphs", type=int, default=64)
    parser.add_argument("--nodes", type=int, default=128)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {list(METHODS)}")
    parser.add_argument("--sweep", default="32,64,128,256,512,1024",
                        help="comma-separated node counts per graph for the size sweep ('' to skip)")
    parser.add_argument("--sweep-graphs", type=int, default=None, help="graphs per batch in the sweep (--graphs)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: cuda 3, cpu 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default: cuda 20, cpu 5)")
    parser.add_argument("--budget-s", type=float, default=30.0, help="fewer repeats when a step is this slow")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--cpu-memory-limit-gb", type=float, default=8.0,
                        help="address-space limit on CPU; larger runs report OOM (0: no limit)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.warmup = (3 if cuda else 1) if args.warmup is None else args.warmup
    args.repeats = (20 if cuda else 5) if args.repeats is None else args.repeats
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if args.channels % args.heads:
        parser.error("--heads must divide --channels")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not cuda and args.cpu_memory_limit_gb > 0:
        limit = int(args.cpu_memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    print(f"# Complete-graph attention, forward+backward ({describe(device)})\n")
    print(f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, float32, "
          f"{args.channels} channels, {args.heads} heads"
          + ("" if cuda or args.cpu_memory_limit_gb <= 0 else f", CPU address-space limit "
             f"{args.cpu_memory_limit_gb:g} GiB") + f"; load average at start {os.getloadavg()[0]:.2f}\n")

    results = list(run_size(methods, args.graphs, args.nodes, args).values())
    reference = next((r for r in results if r.method == METHODS["transformer_conv"] and r.status == "ok"), None)
    edges = args.graphs * args.nodes ** 2
    print(f"## {args.graphs} graphs x {args.nodes} nodes (complete edge list: {edges:,} edges, "
          f"{16 * edges / 2**20:.0f} MB as int64)\n")
    print("| method | time (ms), median [min] | peak memory (MB) | TransformerConv time / this (medians) | "
          "TransformerConv memory / this |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        if r.status != "ok":
            print(f"| {r.method} | {r.status} | | | |")
            continue
        speedup = f"{reference.time_ms / r.time_ms:.1f}x" if reference else "-"
        memory = f"{reference.peak_mb / r.peak_mb:.1f}x" if reference else "-"
        print(f"| {r.method} | {r.time_ms:.1f} [{r.min_ms:.1f}] | {r.peak_mb:.1f} | {speedup} | {memory} |",
              flush=True)

    sizes = [int(n) for n in args.sweep.split(",") if n]
    if sizes:
        graphs = args.sweep_graphs or args.graphs
        print(f"\n## Size sweep: {graphs} graphs x n nodes (median [min] time / peak memory)\n")
        print("| n | " + " | ".join(METHODS[m] for m in methods) + " |")
        print("|---:|" + "---|" * len(methods))
        out_of_memory: set[str] = set()
        for n in sizes:
            results = run_size([m for m in methods if m not in out_of_memory], graphs, n, args)
            out_of_memory |= {m for m, r in results.items() if r.status == "OOM"}
            row = [cell(results[m]) if m in results else "OOM (a smaller n did)" for m in methods]
            print(f"| {n} | " + " | ".join(row) + " |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
