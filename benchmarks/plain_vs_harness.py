"""A plain PyTorch Geometric training script versus the gdl-bench harness, same model, data and settings, one process.

Question answered: does the harness (``gdl_graphs.bench.training.train_run``: registry model, task loop, Adam,
ReduceLROnPlateau, early stopping, per-epoch evaluation, checkpoint bookkeeping) reach the same test accuracy as a
hand-written loop, and is its time per training epoch no worse?

Plain side (written here, nothing from gdl_graphs on the training path):
    ``torch_geometric.nn.GINConv`` (MLP Linear-BN-ReLU-Linear, ``train_eps=True``) x L, each followed by
    BatchNorm, ReLU, dropout and a residual connection, after a linear input encoder; ``global_add_pool``; an MLP
    head Linear-ReLU-Dropout-Linear. That is the architecture of the harness's ``gin`` model (``GraphNet``), so
    both have the same parameter names and count. A hand-written loop: Adam, cross-entropy, ``DataLoader`` with
    ``shuffle=True`` and a generator seeded with the seed (the harness does the same), evaluation of validation and
    test accuracy after every epoch, test accuracy reported at the first epoch of best validation accuracy.
Harness side: ``train_run(RunConfig(model="gin", ...), benchmark.fold(fold), progress=False)``; the harness's
    ``gin`` layer is ``gdl_graphs.nn.GINConv`` (CSR sparse-dense matmul aggregation) instead of PyG's.

Equal settings: width, depth, readout, dropout, batch size, learning rate, epochs and seed; the harness's gradient
clipping is switched off (``grad_clip=None``), its learning-rate scheduler made inert (``lr_patience`` larger than
the number of epochs) and its early stopping too (``patience=epochs``), because the plain loop has none of them.
With ``--init copy`` (default) the plain model starts from the harness model's initial weights (the harness model
is rebuilt with the same seed right before training and its ``state_dict`` copied), which also leaves the global RNG
in the state the harness starts training from, so dropout masks and batch order are the same too: the two runs
differ only in how the neighbour sums are computed (PyG's scatter vs gdl_graphs' CSR matmul, i.e. floating-point
summation order). ``--init seed`` initialises the plain model from the seed on its own (runs then differ by noise).

Timing: both sides time the same span per epoch with ``time.perf_counter``: iterating the training loader
(collation), forward, loss, backward and optimiser step over all batches, plus reading the loss value. Evaluation
is outside the span on both sides (the harness stores this span as ``train_seconds``; ``sec_per_epoch`` is its
mean). The two sides alternate which runs first from seed to seed. Reported: mean seconds per epoch over all epochs
of all seeds (each harness run contributes its stored mean once per epoch it ran), the plain median for reference,
and the ratio of the means harness / plain (< 1: the harness is faster).

Defaults: PROTEINS fold 0 with the settings of the PROTEINS entry of ``benchmarks/accuracy.yaml`` (4 layers x 32,
sum readout, dropout 0.5, batch 128, lr 0.001), 100 epochs, seeds 0, 1, 2.
Results, machine and command: benchmarks/results/harness_overhead.md.

    flock /tmp/gdl_heavy.lock .venv/bin/python benchmarks/plain_vs_harness.py            # PROTEINS fold 0
    flock /tmp/gdl_heavy.lock .venv/bin/python benchmarks/plain_vs_harness.py --dataset MUTAG --batch-size 32
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch_geometric
from torch import nn
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GINConv, global_add_pool

import gdl_graphs
from gdl_graphs.bench.config import RunConfig
from gdl_graphs.bench.training import train_run
from gdl_graphs.data.registry import load_benchmark
from gdl_graphs.models.registry import build_model


class PlainGIN(nn.Module):
    """Linear encoder -> L x [PyG GINConv, BatchNorm, ReLU, dropout, residual] -> sum pooling -> MLP head."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, num_layers: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.encoder = nn.Linear(in_channels, hidden)
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden)), train_eps=True)
            for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(num_layers))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, out_channels))

    def forward(self, data):
        h = self.encoder(data.x.float())
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.dropout(F.relu(norm(conv(h, data.edge_index))), self.dropout, self.training)
        return self.head(global_add_pool(h, data.batch, data.num_graphs))


def harness_state_to_plain(state: dict) -> dict:
    """Rename a harness ``GraphNet('gin')`` state_dict to :class:`PlainGIN`'s names (same tensors)."""
    renamed = {}
    for key, value in state.items():
        for old, new in (("node_encoder.linear.", "encoder."), ("layers.", "convs.")):
            if key.startswith(old):
                key = new + key[len(old):]
        renamed[key] = value
    return renamed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def accuracy(model: nn.Module, split, batch_size: int) -> float:
    model.eval()
    correct = total = 0
    for data in DataLoader(split, batch_size=max(batch_size, 256)):
        correct += int((model(data).argmax(-1) == data.y.view(-1)).sum())
        total += data.num_graphs
    return correct / total


def plain_run(benchmark, config: RunConfig, init: str) -> dict:
    """The hand-written loop. Returns test accuracy at the best validation epoch and the per-epoch train times."""
    options = config.model_options
    seed_everything(config.seed)
    model = PlainGIN(benchmark.num_features, config.hidden_channels, benchmark.num_targets,
                     options["num_layers"], options["dropout"])
    if init == "copy":  # the harness's initial weights: rebuild its model with the same seed
        seed_everything(config.seed)
        reference = build_model("gin", benchmark, hidden_channels=config.hidden_channels, **options)
        model.load_state_dict(harness_state_to_plain(reference.state_dict()))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loader = DataLoader(benchmark.train, batch_size=config.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(config.seed))
    best_val, best_test, best_epoch, seconds = -1.0, None, -1, []
    for epoch in range(config.epochs):
        started = time.perf_counter()
        model.train()
        for data in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(data), data.y.view(-1))
            loss.backward()
            optimizer.step()
            float(loss.detach())  # the harness reads each batch's loss too
        seconds.append(time.perf_counter() - started)
        val, test = accuracy(model, benchmark.val, config.batch_size), accuracy(model, benchmark.test,
                                                                                config.batch_size)
        if val > best_val:
            best_val, best_test, best_epoch = val, test, epoch
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"val": best_val, "test": best_test, "best_epoch": best_epoch, "seconds": seconds, "params": params}


def harness_run(benchmark, config: RunConfig) -> dict:
    result = train_run(config, benchmark, progress=False)
    seconds = _train_seconds(result)
    return {"val": result.val, "test": result.test, "best_epoch": result.best_epoch, "seconds": seconds,
            "params": result.params, "sec_per_epoch": result.sec_per_epoch}


def _train_seconds(result) -> list[float]:
    """Per-epoch train seconds of a harness run. ``RunResult`` keeps only their mean (``sec_per_epoch``); the curve
    has one entry per epoch, so the mean is repeated once per epoch to weight seeds by their epoch counts."""
    return [result.sec_per_epoch] * len(result.curve)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="PROTEINS")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--init", choices=("copy", "seed"), default="copy")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",")]
    benchmark = load_benchmark(args.dataset, args.data_root).fold(args.fold)
    base = RunConfig(dataset=benchmark.name, model="gin", fold=args.fold, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, budget=None, hidden_channels=args.hidden,
                     patience=args.epochs, lr_patience=args.epochs + 1, grad_clip=None,
                     model_options={"num_layers": args.layers, "readout": "sum", "dropout": args.dropout},
                     device="cpu")
    sizes = benchmark.split_sizes()
    print(f"{benchmark.name} fold {args.fold} (train/val/test graphs {sizes[0]}/{sizes[1]}/{sizes[2]}); gin: "
          f"{args.layers} layers x {args.hidden}, sum readout, dropout {args.dropout}, batch {args.batch_size}, "
          f"Adam lr {args.lr}, {args.epochs} epochs, seeds {seeds}, init {args.init}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, torch_geometric "
          f"{torch_geometric.__version__}, gdl_graphs {gdl_graphs.__version__}, torch threads "
          f"{torch.get_num_threads()}, {platform.processor() or platform.machine()}\n")

    rows, plain_seconds, harness_seconds = [], [], []
    for i, seed in enumerate(seeds):
        config = dataclasses.replace(base, seed=seed)
        order = ("plain", "harness") if i % 2 == 0 else ("harness", "plain")
        results = {}
        for side in order:
            results[side] = plain_run(benchmark, config, args.init) if side == "plain" else \
                harness_run(benchmark, config)
        plain_seconds += results["plain"]["seconds"]
        harness_seconds += results["harness"]["seconds"]
        rows.append((seed, order[0], results))

    print("| seed | ran first | plain test acc (best val epoch) | harness test acc (best val epoch) | "
          "plain s/epoch | harness s/epoch | params (plain / harness) |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for seed, first, r in rows:
        p, h = r["plain"], r["harness"]
        print(f"| {seed} | {first} | {100 * p['test']:.2f} ({p['best_epoch']}) | {100 * h['test']:.2f} "
              f"({h['best_epoch']}) | {statistics.mean(p['seconds']):.4f} | {h['sec_per_epoch']:.4f} | "
              f"{p['params']:,} / {h['params']:,} |")
    plain_tests = [100 * r["plain"]["test"] for _, _, r in rows]
    harness_tests = [100 * r["harness"]["test"] for _, _, r in rows]
    spread = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
    print(f"\ntest accuracy at best val epoch, mean ± std over seeds: plain {statistics.mean(plain_tests):.2f} ± "
          f"{spread(plain_tests):.2f}, harness {statistics.mean(harness_tests):.2f} ± {spread(harness_tests):.2f} "
          f"(difference {statistics.mean(harness_tests) - statistics.mean(plain_tests):+.2f} points)")
    plain_mean, harness_mean = statistics.mean(plain_seconds), statistics.mean(harness_seconds)
    print(f"train seconds per epoch (mean over {len(plain_seconds)} plain / {len(harness_seconds)} harness epochs): "
          f"plain {plain_mean:.4f} (median {statistics.median(plain_seconds):.4f}, the harness stores only the "
          f"mean), harness {harness_mean:.4f}")
    print(f"ratio harness / plain (means): {harness_mean / plain_mean:.3f} "
          f"({'harness no slower' if harness_mean <= plain_mean else 'harness slower'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
