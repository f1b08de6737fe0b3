"""Neighbour sampling at ogbn-products scale: seeds/s of ``gdl_graphs.loader.NeighborLoader`` at [15, 10] and one
GraphSAGE training epoch (time, peak memory), on a seeded synthetic graph.

    flock /tmp/gdl_heavy.lock .venv/bin/python -m benchmarks.sampler --json benchmarks/results/sampler.json
    python -m benchmarks.sampler --nodes 5000 --edges 50000 --batches 5 --epoch-batches 3      # smoke test

Graph (defaults: ogbn-products' size): ``--nodes`` nodes, ``--edges`` directed edges stored in both directions
(``--edges / 2`` random pairs), in-degrees skewed like a web/product graph (one end of each pair drawn with density
proportional to ``rank ** -0.5``, node ids shuffled), ``--features`` Gaussian features, ``--classes`` random labels,
``--train-fraction`` of the nodes as training seeds (products: 8%). Generated in the process, seeded, not timed.

Throughput: the first ``--batches`` shuffled batches of ``--batch-size`` training seeds, after one warm-up batch:

* ``sample``: ``loader.node_sampler.sample_from_nodes`` only (the neighbourhoods);
* ``loader``: iterating the loader (sampling plus PyG's slicing of ``x``/``y`` into the batch ``Data``).

seeds/s = seeds / wall-clock seconds. PyG's own ``NeighborLoader`` is measured the same way when pyg-lib or
torch-sparse is installed (otherwise it cannot run and is reported as unavailable). CSR construction (once per
loader) is timed separately.

Epoch: a 2-layer GraphSAGE (``gdl_graphs.nn.SAGEConv``, ``--hidden`` channels, ReLU, dropout 0.5), Adam, cross
entropy on the seeds (``out[:batch.batch_size]``), one pass over all training seeds (or ``--epoch-batches``).
Peak memory: the process's resident-set high-water mark (``VmHWM``) during the epoch, reset before it through
``/proc/self/clear_refs`` (it includes the graph and features already resident); on CUDA also
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_geometric
import torch_geometric.typing
from torch import nn
from torch_geometric.data import Data

from benchmarks.machine import describe
from gdl_graphs.loader import NeighborLoader, pyg_lib_available
from gdl_graphs.nn import SAGEConv
from gdl_graphs.nn.aggregate import clear_cache

PRODUCTS = {"nodes": 2_449_029, "edges": 61_859_140, "features": 100, "classes": 47, "train_fraction": 0.0803}


def synthetic_graph(num_nodes: int, num_edges: int, num_features: int, num_classes: int, train_fraction: float,
                    seed: int) -> Data:
    """A seeded random graph with skewed degrees, both directions of every edge, features, labels, a train mask."""
    g = torch.Generator().manual_seed(seed)
    pairs = num_edges // 2
    uniform_end = torch.randint(0, num_nodes, (pairs,), generator=g)
    skewed_end = (torch.rand(pairs, generator=g, dtype=torch.float64).pow(2) * num_nodes).long()
    relabel = torch.randperm(num_nodes, generator=g)
    skewed_end = relabel[skewed_end.clamp_(max=num_nodes - 1)]
    edge_index = torch.stack([torch.cat([uniform_end, skewed_end]), torch.cat([skewed_end, uniform_end])])
    del uniform_end, skewed_end
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    train_mask[torch.randperm(num_nodes, generator=g)[:int(train_fraction * num_nodes)]] = True
    return Data(x=torch.randn(num_nodes, num_features, generator=g), edge_index=edge_index,
                y=torch.randint(0, num_classes, (num_nodes,), generator=g), train_mask=train_mask)


def peak_rss_reset() -> bool:
    """Reset the resident-set high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_gib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib / 2 ** 20


def throughput(make_loader, batches: int) -> dict:
    """seeds/s of sampling alone and of the whole loader over the first ``batches`` batches (one warm-up)."""
    start = time.perf_counter()
    loader = make_loader()
    build_s = time.perf_counter() - start
    order = torch.randperm(len(loader.dataset), generator=torch.Generator().manual_seed(1))
    chunks = order.split(loader.batch_size)[:batches + 1]
    loader.node_sampler.sample_from_nodes(loader.input_data[chunks[0]])
    start = time.perf_counter()
    for chunk in chunks[1:]:
        loader.node_sampler.sample_from_nodes(loader.input_data[chunk])
    sample_s = time.perf_counter() - start
    seeds = sum(chunk.numel() for chunk in chunks[1:])
    iterator = iter(loader)
    next(iterator)
    count, nodes, edges = 0, 0, 0
    start = time.perf_counter()
    for batch in iterator:
        count += batch.batch_size
        nodes, edges = nodes + batch.num_nodes, edges + batch.num_edges
        if count >= seeds:
            break
    loader_s = time.perf_counter() - start
    done = max(1, count // loader.batch_size)
    return {"build_s": build_s, "sample_seeds_per_s": seeds / sample_s, "loader_seeds_per_s": count / loader_s,
            "nodes_per_batch": nodes / done, "edges_per_batch": edges / done, "seeds_timed": seeds}


class GraphSAGE(nn.Module):
    def __init__(self, in_channels: int, hidden: int, out_channels: int):
        super().__init__()
        self.conv1, self.conv2 = SAGEConv(in_channels, hidden), SAGEConv(hidden, out_channels)

    def forward(self, x, edge_index):
        x = F.dropout(self.conv1(x, edge_index).relu(), p=0.5, training=self.training)
        return self.conv2(x, edge_index)


def sage_epoch(data: Data, num_neighbors: list[int], batch_size: int, hidden: int, num_classes: int,
               device: torch.device, epoch_batches: int | None, num_workers: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = GraphSAGE(data.num_features, hidden, num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    loader = NeighborLoader(data, num_neighbors=num_neighbors, batch_size=batch_size, input_nodes=data.train_mask,
                            shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    reset = peak_rss_reset()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    losses, seeds = [], 0
    start = time.perf_counter()
    for step, batch in enumerate(loader):
        if epoch_batches is not None and step >= epoch_batches:
            break
        batch = batch.to(device)
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index)[:batch.batch_size]
        loss = F.cross_entropy(out, batch.y[:batch.batch_size])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        seeds += batch.batch_size
    epoch_s = time.perf_counter() - start
    result = {"epoch_s": epoch_s, "batches": len(losses), "seeds": seeds, "first_loss": losses[0],
              "last_loss": losses[-1], "peak_rss_gib": peak_rss_gib(), "peak_rss_is_epoch_only": reset,
              "backend": loader.backend}
    if device.type == "cuda":
        result["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=PRODUCTS["nodes"])
    parser.add_argument("--edges", type=int, default=PRODUCTS["edges"])
    parser.add_argument("--features", type=int, default=PRODUCTS["features"])
    parser.add_argument("--classes", type=int, default=PRODUCTS["classes"])
    parser.add_argument("--train-fraction", type=float, default=PRODUCTS["train_fraction"])
    parser.add_argument("--num-neighbors", type=int, nargs="+", default=[15, 10])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=50, help="batches timed for throughput")
    parser.add_argument("--epoch-batches", type=int, default=None, help="stop the epoch early (default: full)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers in the epoch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="append the run (JSON lines) to this file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    run = {"command": " ".join(["benchmarks/sampler.py", *(argv if argv is not None else sys.argv[1:])]),
           "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": describe(device),
           "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
           "load_average_start": os.getloadavg()[0], "settings": vars(args) | {"json": str(args.json)}}
    print(f"{run['machine']}; torch {torch.__version__}, torch_geometric {torch_geometric.__version__}; "
          f"load average {run['load_average_start']:.2f}", flush=True)

    start = time.perf_counter()
    data = synthetic_graph(args.nodes, args.edges, args.features, args.classes, args.train_fraction, args.seed)
    print(f"graph: {data.num_nodes:,} nodes, {data.num_edges:,} edges, {args.features} features, "
          f"{int(data.train_mask.sum()):,} training seeds (generated in {time.perf_counter() - start:.1f} s; "
          f"resident {peak_rss_gib():.2f} GiB peak so far)", flush=True)
    run["graph"] = {"nodes": data.num_nodes, "edges": data.num_edges, "train_seeds": int(data.train_mask.sum())}

    def ours():
        clear_cache()
        return NeighborLoader(data, num_neighbors=args.num_neighbors, batch_size=args.batch_size,
                              input_nodes=data.train_mask, shuffle=True)
    loaders = {f"gdl_graphs ({'pyg-lib' if pyg_lib_available() else 'torch'})": ours}
    if torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE:
        loaders["PyG NeighborLoader"] = lambda: torch_geometric.loader.NeighborLoader(
            data, num_neighbors=args.num_neighbors, batch_size=args.batch_size, input_nodes=data.train_mask,
            shuffle=True)
    else:
        print("PyG NeighborLoader: unavailable (needs pyg-lib or torch-sparse)")
    print(f"\nthroughput at {args.num_neighbors}, batch {args.batch_size}, {args.batches} batches")
    print("| loader | CSR build s | sample seeds/s | loader seeds/s | nodes/batch | edges/batch |")
    print("|---|---:|---:|---:|---:|---:|")
    run["throughput"] = {}
    for name, make in loaders.items():
        r = throughput(make, args.batches)
        run["throughput"][name] = r
        print(f"| {name} | {r['build_s']:.1f} | {r['sample_seeds_per_s']:,.0f} | {r['loader_seeds_per_s']:,.0f} | "
              f"{r['nodes_per_batch']:,.0f} | {r['edges_per_batch']:,.0f} |", flush=True)

    if not args.skip_epoch:
        clear_cache()
        r = sage_epoch(data, args.num_neighbors, args.batch_size, args.hidden, args.classes, device,
                       args.epoch_batches, args.num_workers, args.seed)
        run["epoch"] = r
        memory = f"peak RSS {r['peak_rss_gib']:.2f} GiB" + ("" if r["peak_rss_is_epoch_only"] else
                                                            " (process lifetime: reset unavailable)")
        if "cuda_peak_gib" in r:
            memory += f", CUDA peak {r['cuda_peak_gib']:.2f} GiB"
        print(f"\nGraphSAGE {args.num_neighbors}, hidden {args.hidden}, {args.device}: {r['batches']} batches, "
              f"{r['seeds']:,} seeds in {r['epoch_s']:.1f} s; {memory}; loss {r['first_loss']:.3f} -> "
              f"{r['last_loss']:.3f}", flush=True)
    run["load_average_end"] = os.getloadavg()[0]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a") as f:
            f.write(json.dumps(run) + "\n")
    return run


if __name__ == "__main__":
    main()
