"""GraphSAGE on Cora with neighbour-sampled mini-batches: PyG's own training loop and layer-wise inference, with
``gdl_graphs.loader.NeighborLoader`` in place of PyG's (no pyg-lib or torch-sparse needed).

    python examples/neighbor_sampling.py                    # [15, 10] mini-batches vs full batch, 3 seeds
    python examples/neighbor_sampling.py --epochs 5 --seeds 1

Evaluation is layer-wise and exact: every layer is computed for all nodes from their full 1-hop neighbourhood
(``num_neighbors=[-1]``), as in PyG's examples.
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch_geometric.nn.models import GraphSAGE

from gdl_graphs.data import load_benchmark
from gdl_graphs.loader import NeighborLoader


def accuracy(out, data, mask) -> float:
    return float((out[mask].argmax(-1) == data.y[mask]).float().mean())


def train_minibatch(data, seed: int, epochs: int, num_neighbors: list[int], batch_size: int) -> float:
    torch.manual_seed(seed)
    model = GraphSAGE(data.num_features, 64, num_layers=len(num_neighbors), out_channels=7, dropout=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    train_loader = NeighborLoader(data, num_neighbors=num_neighbors, batch_size=batch_size,
                                  input_nodes=data.train_mask, shuffle=True,
                                  generator=torch.Generator().manual_seed(seed))
    # layer-wise inference: one full hop per layer over all nodes, features only (as in PyG's reddit.py)
    subgraph_loader = NeighborLoader(copy.copy(data), num_neighbors=[-1], batch_size=512)
    print(f"sampling backend: {train_loader.backend}")
    best_val = test_at_best = 0.0
    for _ in range(epochs):
        model.train()
        for batch in train_loader:
            optimizer.zero_grad()
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            F.cross_entropy(out, batch.y[:batch.batch_size]).backward()
            optimizer.step()
        model.eval()
        out = model.inference(subgraph_loader)
        val, test = accuracy(out, data, data.val_mask), accuracy(out, data, data.test_mask)
        if val > best_val:
            best_val, test_at_best = val, test
    return test_at_best


def train_full_batch(data, seed: int, epochs: int, num_layers: int) -> float:
    torch.manual_seed(seed)
    model = GraphSAGE(data.num_features, 64, num_layers=num_layers, out_channels=7, dropout=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_val = test_at_best = 0.0
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(data.x, data.edge_index)
        val, test = accuracy(out, data, data.val_mask), accuracy(out, data, data.test_mask)
        if val > best_val:
            best_val, test_at_best = val, test
    return test_at_best


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-neighbors", type=int, nargs="+", default=[15, 10])
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    data = load_benchmark("cora").train
    results = {"minibatch": [], "full_batch": []}
    for seed in range(args.seeds):
        results["minibatch"].append(train_minibatch(data, seed, args.epochs, args.num_neighbors, args.batch_size))
        results["full_batch"].append(train_full_batch(data, seed, args.epochs, len(args.num_neighbors)))
        print(f"seed {seed}: test accuracy at best val: mini-batch {results['minibatch'][-1]:.4f}, "
              f"full batch {results['full_batch'][-1]:.4f}")
    for name, values in results.items():
        mean = sum(values) / len(values)
        print(f"{name}: mean test accuracy {mean:.4f} over {len(values)} seeds")
    return results


if __name__ == "__main__":
    main()
