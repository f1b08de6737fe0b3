"""Forward+backward time of gdl_graphs layers against their PyG namesakes, same inputs, same run.

    python benchmarks/layers.py                         # CPU: Cora and a 100k-node / 1.6M-edge random graph
    python benchmarks/layers.py --device cuda --sizes 1000000:16000000:128
    python benchmarks/layers.py --markdown benchmarks/results/layers.md
    python benchmarks/layers.py --compile --no-cora --sizes 10000:200000:64   # ours: eager vs torch.compile
    python benchmarks/layers.py --no-cora --sizes "" --molecular 128:15:35:128   # a new molecular batch per call

Every timed call of a gdl_graphs layer starts from an empty adjacency cache, so the CSR build is part of each
measurement. Times are medians over ``--repeats`` runs after one warm-up run; the ratio is PyG time / our time.
"max output difference" is the largest absolute difference between the two forward outputs on the first input
(same weights). A layer that raises on a device or size (out of memory, say) gets a row saying so, and the table
goes on.

``--molecular GRAPHS:MIN:MAX:CHANNELS`` adds the workload of graph classification on molecules: every call (warm-up
and timed) gets a *new* batch of GRAPHS molecule-like graphs of MIN-MAX atoms (a chain plus ring bonds, both
directions, grouped by graph as PyG's ``Batch`` lays them out), so nothing about the graph can be reused between
calls, as in training.

``--stack L`` times each layer as a network uses it: L copies in sequence (ReLU between) on the same graph, so
the per-graph work (our CSR structure, built on a graph's second use) is shared by the L layers of one call.

``--memory`` adds each implementation's peak memory of one forward+backward pass above what the inputs and the
layer already held: on CUDA ``torch.cuda.max_memory_allocated`` (reset before each pass, in this process); on CPU
the highest resident set a watcher thread sees during the pass (polled every 0.5 ms from ``/proc/self/statm``)
minus the resident set before it, in a fresh subprocess per layer and implementation. Memory the allocator keeps
from earlier frees can hide part of a small pass, so values under 10 MB are printed as ``<10`` and not compared.

``--compile`` times our layers eager and under ``torch.compile`` (Inductor, ``fullgraph=True``), and PyG's namesake
under ``torch.compile``, in the same run on the same inputs (compilation happens in two warm-up runs outside the
timing); eager / compiled >= 1 means compiling does not lose the fast path, and compiled PyG / compiled ours >= 1
that ours stays ahead when both are compiled.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import subprocess
import threading
import statistics
import sys
import time
from pathlib import Path

import torch
import torch_geometric
import torch_geometric.nn as pyg
from torch import nn

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
import gdl_graphs.nn as gnn
from gdl_graphs.data import data_root
from gdl_graphs.nn import aggregate

EDGE_DIM = 8


def layer_pairs(channels: int) -> dict:
    """name -> (factory of ours, factory of PyG's equivalent, needs edge_attr)."""
    def mlp():
        return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))

    pairs = {
        "GCNConv": (lambda: gnn.GCNConv(channels, channels), lambda: pyg.GCNConv(channels, channels), False),
        "GINConv": (lambda: gnn.GINConv(mlp()), lambda: pyg.GINConv(mlp()), False),
        "SAGEConv": (lambda: gnn.SAGEConv(channels, channels), lambda: pyg.SAGEConv(channels, channels), False),
        "GINEConv": (lambda: gnn.GINEConv(mlp(), edge_dim=EDGE_DIM),
                     lambda: pyg.GINEConv(mlp(), edge_dim=EDGE_DIM), True),
        "GATConv": (lambda: gnn.GATConv(channels, channels // 4, heads=4),
                    lambda: pyg.GATConv(channels, channels // 4, heads=4), False),
        "GATv2Conv": (lambda: gnn.GATv2Conv(channels, channels // 4, heads=4),
                      lambda: pyg.GATv2Conv(channels, channels // 4, heads=4), False),
    }
    pairs.update(_extra_pairs(channels))
    return pairs


def _extra_pairs(channels: int) -> dict:
    """Layers whose PyG counterpart has another name (present once gdl_graphs exports them)."""
    extra = {}
    if hasattr(gnn, "PNAConv"):
        deg = torch.tensor([0, 10, 20, 30, 20, 10, 5, 3, 1, 1])
        kwargs = dict(aggregators=["mean", "min", "max", "std"], scalers=["identity", "amplification",
                      "attenuation"], deg=deg, edge_dim=EDGE_DIM, towers=1)
        extra["PNAConv"] = (lambda: gnn.PNAConv(channels, channels, **kwargs),
                            lambda: pyg.PNAConv(channels, channels, **kwargs), True)
    if hasattr(gnn, "NNConv"):
        small = max(channels // 4, 4)

        def edge_net():
            return nn.Sequential(nn.Linear(EDGE_DIM, 16), nn.ReLU(), nn.Linear(16, small * small))

        extra["NNConv"] = (lambda: gnn.NNConv(small, small, edge_net()),
                           lambda: pyg.NNConv(small, small, edge_net()), True)
    return extra


def random_graph(num_nodes: int, num_edges: int, channels: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, channels, generator=g)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    edge_attr = torch.randn(num_edges, EDGE_DIM, generator=g)
    return x.to(device), edge_index.to(device), edge_attr.to(device)


class MolecularBatches:
    """An endless supply of new molecule-like batches (``x``, ``edge_index``, ``edge_attr``), one per call."""

    def __init__(self, graphs: int, low: int, high: int, channels: int, device: torch.device, seed: int = 0):
        self.graphs, self.low, self.high, self.channels, self.device = graphs, low, high, channels, device
        self.generator = torch.Generator().manual_seed(seed)

    def next(self):
        g = self.generator
        sizes = torch.randint(self.low, self.high + 1, (self.graphs,), generator=g)
        offsets = torch.cumsum(sizes, 0) - sizes
        edges = []
        for size, offset in zip(sizes.tolist(), offsets.tolist()):
            chain = torch.stack([torch.arange(size - 1), torch.arange(1, size)])
            rings = torch.randint(0, size, (2, max(size // 6, 1)), generator=g)  # ring closures / branches
            rings = rings[:, rings[0] != rings[1]]
            bonds = torch.cat([chain, rings], dim=1) + offset
            edges.append(torch.cat([bonds, bonds.flip(0)], dim=1))
        edge_index = torch.cat(edges, dim=1)
        x = torch.randn(int(sizes.sum()), self.channels, generator=g)
        edge_attr = torch.randn(edge_index.size(1), EDGE_DIM, generator=g)
        return x.to(self.device), edge_index.to(self.device), edge_attr.to(self.device)

    def __call__(self):
        return self.next()


def cora(device: torch.device, root: str | None, channels: int = 64):
    """The Cora graph with its 1433 bag-of-words features projected to ``channels`` (a hidden layer's width) by a
    fixed random matrix: the layers are timed as they run inside a network, not on the raw input width."""
    from torch_geometric.datasets import Planetoid

    path = data_root(root)
    if not (path / "Cora" / "raw").is_dir():
        print(f"[layers] Cora not staged under {path}; skipping it", file=sys.stderr)
        return None
    data = Planetoid(str(path), "Cora")[0]
    g = torch.Generator().manual_seed(0)
    edge_attr = torch.randn(data.edge_index.size(1), EDGE_DIM, generator=g)
    x = data.x @ torch.randn(data.x.size(1), channels, generator=g)
    return x.to(device), data.edge_index.to(device), edge_attr.to(device)


class Stack(nn.Module):
    """``depth`` layers in sequence with a ReLU between them, on one graph (``--stack``)."""

    def __init__(self, make_layer, depth: int, edge: bool):
        super().__init__()
        self.layers = nn.ModuleList(make_layer() for _ in range(depth))
        self.edge = edge

    def forward(self, x, edge_index, edge_attr=None):
        for position, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_attr) if self.edge else layer(x, edge_index)
            x = x.relu() if position < len(self.layers) - 1 else x
        return x


COMPILED_LAYERS = ("GCNConv", "SAGEConv", "GINConv", "GATConv", "GINEConv", "PNAConv")


def time_fwd_bwd(runs, inputs, repeats: int, edge: bool, warmups: int = 1) -> list[float]:
    """Median seconds of one forward+backward pass (input gradient included) of each ``(layer, ours)`` in ``runs``,
    after ``warmups`` untimed runs of each. The timed runs are interleaved: input ``i`` goes through every layer in
    turn, starting with a different one each time, so a drift in the machine's speed reaches all of them alike.
    ``inputs`` holds the ``(x, edge_index, edge_attr)`` of each call (``warmups + repeats`` of them: the same graph
    repeated, or a new molecular batch each time)."""
    def step(layer, ours, x, edge_index, edge_attr):
        if ours:
            aggregate.clear_cache()  # the CSR build is part of every measurement
        xin = x.detach().requires_grad_()
        out = layer(xin, edge_index, edge_attr) if edge else layer(xin, edge_index)
        out.sum().backward()

    def timed(run, call):
        _sync(call[0].device)
        start = time.perf_counter()
        step(*run, *call)
        _sync(call[0].device)
        return time.perf_counter() - start

    for run in runs:
        for call in inputs[:warmups]:
            step(*run, *call)
    times = [[] for _ in runs]
    for i, call in enumerate(inputs[warmups:warmups + repeats]):
        for k in range(len(runs)):
            position = (i + k) % len(runs)
            times[position].append(timed(runs[position], call))
    return [statistics.median(t) for t in times]


MEASURABLE_MB = 10


def _resident_bytes() -> int:
    """The process's current resident set (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_memory_mb(layer, call, edge: bool) -> float:
    """Peak memory (MB) of one forward+backward pass above what is allocated before it (see the module docstring)."""
    x, edge_index, edge_attr = call
    aggregate.clear_cache()
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:  # torch releases the GIL in its kernels, so a thread can watch the resident set grow and shrink
        before, peak, done = _resident_bytes(), [0], threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], _resident_bytes())
                time.sleep(0.0005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    xin = x.detach().requires_grad_()
    out = layer(xin, edge_index, edge_attr) if edge else layer(xin, edge_index)
    out.sum().backward()
    if cuda:
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    done.set()
    watcher.join()
    return (max(peak[0], _resident_bytes()) - before) / 2**20


def _memory_in_subprocess(name: str, ours: bool, spec: dict, device: torch.device) -> float:
    """:func:`peak_memory_mb` in a fresh interpreter (a CPU process's peak resident set never goes down)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--_memory-probe",
               json.dumps({"name": name, "ours": ours, "graph": spec, "device": str(device)})]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def _memory_probe(request: dict) -> float:
    device = torch.device(request["device"])
    call = make_graph(request["graph"], device)()
    make_ours, make_pyg, edge = layer_pairs(call[0].size(1))[request["name"]]
    torch.manual_seed(0)
    layer = (make_ours if request["ours"] else make_pyg)().to(device)
    if request["name"] == "NNConv":
        call = (call[0][:, :layer.in_channels], *call[1:])
    return peak_memory_mb(layer, call, edge)


def make_graph(spec: dict, device: torch.device):
    """A supplier of layer inputs from a graph spec: ``{"kind": "random"|"molecular"|"cora", ...}``."""
    if spec["kind"] == "random":
        graph = random_graph(spec["nodes"], spec["edges"], spec["channels"], device)
        return lambda: graph
    if spec["kind"] == "molecular":
        return MolecularBatches(spec["graphs"], spec["low"], spec["high"], spec["channels"], device)
    graph = cora(device, spec.get("root"))
    return None if graph is None else (lambda: graph)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--sizes", default="100000:1600000:64",
                        help="comma-separated NODES:EDGES:CHANNELS random graphs (default: 100000:1600000:64)")
    parser.add_argument("--no-cora", action="store_true", help="skip the Cora graph")
    parser.add_argument("--molecular", default="", help="comma-separated GRAPHS:MIN:MAX:CHANNELS: a new batch of "
                        "GRAPHS molecule-like graphs of MIN-MAX atoms on every call (e.g. 128:15:35:128)")
    parser.add_argument("--layers", default="", help="comma-separated subset of layer names")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default: 3)")
    parser.add_argument("--stack", type=int, default=1,
                        help="time L layers in sequence on each graph, as in a network (default: 1)")
    parser.add_argument("--data-root", default=None, help="data root holding Cora/raw (default: $GDL_DATA)")
    parser.add_argument("--markdown", type=Path, default=None, help="append the table to this markdown file")
    parser.add_argument("--compile", action="store_true",
                        help=f"time ours eager, ours compiled and PyG compiled instead (default layers: "
                             f"{', '.join(COMPILED_LAYERS)})")
    parser.add_argument("--memory", action="store_true", help="also measure each implementation's peak memory")
    parser.add_argument("--_memory-probe", dest="memory_probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe is not None:  # a child process of --memory: print one number
        print(_memory_probe(json.loads(args.memory_probe)))
        return 0

    device = torch.device(args.device)
    specs = [] if args.no_cora else [("Cora (2708 / 10556), 64 ch", {"kind": "cora", "root": args.data_root})]
    for spec in filter(None, args.sizes.split(",")):
        n, e, c = (int(v) for v in spec.split(":"))
        specs.append((f"random {n:,} / {e:,}, {c} ch", {"kind": "random", "nodes": n, "edges": e, "channels": c}))
    for spec in filter(None, args.molecular.split(",")):
        b, low, high, c = (int(v) for v in spec.split(":"))
        specs.append((f"new batch per call: {b} molecules x {low}-{high} atoms, {c} ch",
                      {"kind": "molecular", "graphs": b, "low": low, "high": high, "channels": c}))

    wanted = set(filter(None, args.layers.split(",")))
    calls = 2 + args.repeats  # warm-up runs (two when compiling) and timed runs
    graphs = []
    for name, spec in specs:
        supply = make_graph(spec, device)
        if supply is not None:
            graphs.append((name, spec, [supply() for _ in range(calls)]))
    if args.compile:
        header, rows = compile_rows(graphs, wanted, device, args.repeats)
    else:
        header, rows = pyg_rows(graphs, wanted, device, args.repeats, args.memory, args.stack)

    if args.markdown is not None:
        machine = describe(device)
        with args.markdown.open("a") as f:
            f.write(f"\n### {device.type.upper()}: {machine}\n\n")
            f.write(f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, "
                    f"python {platform.python_version()}; command: `python benchmarks/layers.py "
                    f"{shlex.join(argv if argv is not None else sys.argv[1:])}`\n\n")
            f.write(header + "\n" + "\n".join(rows) + "\n")
    return 0


def pyg_rows(graphs, wanted: set[str], device: torch.device, repeats: int,
             memory: bool = False, stack: int = 1) -> tuple[str, list[str]]:
    """Ours against PyG's namesake, forward+backward, same weights and inputs (and peak memory with ``memory``);
    ``stack`` layers in sequence per call."""
    if memory and stack != 1:
        raise ValueError("--memory measures single layers: use it without --stack")
    header = "| layer | graph | PyG ms | gdl_graphs ms | speed-up | max output difference |"
    rule = "|---|---|---:|---:|---:|---:|"
    if memory:
        header, rule = header + " PyG peak MB | gdl_graphs peak MB | memory saving |", rule + "---:|---:|---:|"
    header = header + "\n" + rule
    rows = []
    print(header, flush=True)
    for graph_name, spec, inputs in graphs:
        for name, (make_ours, make_pyg, edge) in layer_pairs(inputs[0][0].size(1)).items():
            if wanted and name not in wanted:
                continue
            label = graph_name if stack == 1 else f"{graph_name}, {stack} layers"
            try:
                row = _pyg_row(name, label, make_ours, make_pyg, edge, spec, inputs, device, repeats, memory, stack)
            except Exception as error:  # a layer that fails on this device or size is a row of the table too
                message = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
                row = f"| {name} | {label} | failed: {type(error).__name__} {message} |"
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(row, flush=True)
    return header, rows


def _pyg_row(name, label, make_ours, make_pyg, edge, spec, inputs, device, repeats, memory, stack) -> str:
    """One row of :func:`pyg_rows`: times, the largest output difference on the first input, peak memory."""
    torch.manual_seed(0)
    if stack == 1:
        ours, theirs = make_ours().to(device), make_pyg().to(device)
    else:
        ours, theirs = Stack(make_ours, stack, edge).to(device), Stack(make_pyg, stack, edge).to(device)
    theirs.load_state_dict(ours.state_dict())
    calls = inputs
    if name == "NNConv":  # the edge network runs at a narrower width
        width = (ours if stack == 1 else ours.layers[0]).in_channels
        calls = [(x[:, :width], *rest) for x, *rest in inputs]
    with torch.no_grad():
        x, edge_index, edge_attr = calls[0]
        outputs = [layer(x, edge_index, edge_attr) if edge else layer(x, edge_index) for layer in (theirs, ours)]
        difference = (outputs[0] - outputs[1]).abs().max().item()
        del outputs
    t_pyg, t_ours = time_fwd_bwd([(theirs, False), (ours, True)], calls, repeats, edge)
    row = f"| {name} | {label} | {t_pyg * 1e3:.1f} | {t_ours * 1e3:.1f} | {t_pyg / t_ours:.2f}x | {difference:.1e} |"
    if memory:
        if device.type == "cuda":  # the allocator's peak counter is reset per pass: no fresh process needed
            m_pyg, m_ours = (peak_memory_mb(layer, calls[0], edge) for layer in (theirs, ours))
        else:
            m_pyg, m_ours = (_memory_in_subprocess(name, impl, spec, device) for impl in (False, True))
        row += (f" {m_pyg:.0f} | {m_ours:.0f} | {m_pyg / m_ours:.2f}x |" if min(m_pyg, m_ours) >= MEASURABLE_MB
                else f" <{MEASURABLE_MB} | <{MEASURABLE_MB} | - |" if max(m_pyg, m_ours) < MEASURABLE_MB
                else f" {m_pyg:.0f} | {m_ours:.0f} | - |")
    return row


def compile_rows(graphs, wanted: set[str], device: torch.device, repeats: int) -> tuple[str, list[str]]:
    """Ours eager, ours under ``torch.compile`` and PyG's namesake under ``torch.compile`` (same weights and
    inputs), forward+backward."""
    import torch._dynamo
    header = ("| layer | graph | ours eager ms | ours compiled ms | PyG compiled ms | eager / compiled | "
              "compiled PyG / compiled ours |\n|---|---|---:|---:|---:|---:|---:|")
    rows = []
    print(header, flush=True)
    for graph_name, _, inputs in graphs:
        for name, (make_ours, make_pyg, edge) in layer_pairs(inputs[0][0].size(1)).items():
            if name not in (wanted or COMPILED_LAYERS):
                continue
            torch.manual_seed(0)
            layer, theirs = make_ours().to(device), make_pyg().to(device)
            theirs.load_state_dict(layer.state_dict())
            torch._dynamo.reset()
            runs = [(layer, True), (torch.compile(layer, fullgraph=True), True), (torch.compile(theirs), False)]
            t_eager, t_compiled, t_pyg = time_fwd_bwd(runs, inputs, repeats, edge, warmups=2)
            row = (f"| {name} | {graph_name} | {t_eager * 1e3:.1f} | {t_compiled * 1e3:.1f} | {t_pyg * 1e3:.1f} | "
                   f"{t_eager / t_compiled:.2f}x | {t_pyg / t_compiled:.2f}x |")
            rows.append(row)
            print(row, flush=True)
    return header, rows


if __name__ == "__main__":
    sys.exit(main())
