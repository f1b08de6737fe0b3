"""Per-epoch training time of a traffic forecaster on a METR-LA-sized synthetic input.

Defaults are the official METR-LA shapes of Graph WaveNet (Wu et al., 2019): 207 sensors, 12 input and 12 output
steps, 2 input features (speed, time of day), 23,974 training windows, batch 64, hence ceil(23974 / 64) = 375
optimiser steps per epoch, with the reference training step (Adam, lr 1e-3, weight decay 1e-4, masked MAE,
gradient norm clipped at 5). A full CPU epoch takes many minutes, so ``--steps`` steps are timed after
``--warmup`` untimed ones and the epoch time is extrapolated as ``step time x 375`` (from the mean and from the
median step, which is robust to other jobs on a shared machine); the output says so.

The input is synthetic (random speeds in the scaled range, a true time-of-day feature, about 8% zero readings
masked out as in METR-LA) and the graph is random with METR-LA's edge count (1,722 including self-loops). The graph
operators are dense, so the step time does not depend on which edges exist.

    flock /tmp/gdl_heavy.lock .venv/bin/python benchmarks/traffic_speed.py --steps 20
    .venv/bin/python benchmarks/traffic_speed.py --device cuda --steps 100
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from gdl_graphs.models import list_models
from gdl_graphs.models.temporal import build_temporal_model


def masked_mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over observed readings (``mask``), the training loss of DCRNN and Graph WaveNet."""
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp(min=1)


def synthetic_batches(count: int, batch: int, in_steps: int, out_steps: int, num_nodes: int, steps_per_day: int,
                      generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``count`` batches (x [B, T_in, N, 2], y [B, T_out, N], mask) with the official feature layout."""
    out = []
    for _ in range(count):
        speed = torch.randn(batch, in_steps + out_steps, num_nodes, generator=generator)
        observed = torch.rand(batch, in_steps + out_steps, num_nodes, generator=generator) > 0.08
        start = torch.randint(0, steps_per_day, (batch, 1), generator=generator)
        tod = ((start + torch.arange(in_steps)) % steps_per_day).float() / steps_per_day
        x = torch.stack([speed[:, :in_steps] * observed[:, :in_steps],
                         tod.unsqueeze(-1).expand(batch, in_steps, num_nodes)], dim=-1)
        out.append((x, speed[:, in_steps:], observed[:, in_steps:].float()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="graph_wavenet", choices=sorted(e.name for e in list_models("temporal")))
    parser.add_argument("--nodes", type=int, default=207)
    parser.add_argument("--edges", type=int, default=1722)
    parser.add_argument("--windows", type=int, default=23974, help="training windows per epoch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--in-steps", type=int, default=12)
    parser.add_argument("--out-steps", type=int, default=12)
    parser.add_argument("--steps-per-day", type=int, default=288)
    parser.add_argument("--steps", type=int, default=20, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimiser steps first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    edge_index = torch.randint(0, args.nodes, (2, args.edges), generator=generator)
    edge_weight = torch.rand(args.edges, generator=generator)
    model = build_temporal_model(args.model, args.nodes, 2, args.out_steps, edge_index, edge_weight).to(device)
    params = list(model.parameters())
    if not params:
        raise SystemExit(f"{args.model} has no parameters to train")
    optimiser = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    batches = [tuple(t.to(device) for t in b) for b in
               synthetic_batches(4, args.batch, args.in_steps, args.out_steps, args.nodes, args.steps_per_day,
                                 generator)]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(i: int) -> float:
        x, y, mask = batches[i % len(batches)]
        sync()
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss = masked_mae(model(x), y, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimiser.step()
        sync()
        return time.perf_counter() - start

    model.train()
    load_before = os.getloadavg()[0]
    for i in range(args.warmup):
        step(i)
    times = [step(i) for i in range(args.steps)]
    load_after = os.getloadavg()[0]
    steps_per_epoch = math.ceil(args.windows / args.batch)
    mean, median = statistics.fmean(times), statistics.median(times)
    hardware = describe(device)
    print(f"model={args.model} params={sum(p.numel() for p in params)} nodes={args.nodes} batch={args.batch} "
          f"windows={args.windows} device={args.device} ({hardware}) torch={torch.__version__}")
    print(f"timed {args.steps} steps after {args.warmup} warm-up: mean {mean * 1e3:.1f} ms/step, "
          f"median {median * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms")
    print(f"epoch estimate (extrapolated, {steps_per_epoch} steps x mean / median step): "
          f"{mean * steps_per_epoch:.1f} s / {median * steps_per_epoch:.1f} s")
    print(f"load average (1 min) before/after: {load_before:.2f}/{load_after:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
