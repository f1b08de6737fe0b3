r"""A seeded synthetic node-classification graph at ogbn-products size, for sampler and training benchmarks.

:func:`products_like_graph` defaults to ogbn-products' shape: 2,449,029 nodes, 61,859,140 undirected edges (stored
in both directions, as PyG stores products), 100 float features, 47 classes, and OGB's split proportions
(196,615 / 39,323 / 2,213,091). It is not products' data; it has the properties a benchmark of neighbour
sampling or mini-batch training needs:

* **heavy-tailed degrees**: edge endpoints are drawn inside their class with the skewed position
  :math:`\lfloor m\,u^{a}\rfloor` (:math:`u` uniform, :math:`m` the class size, ``degree_skew`` :math:`a`), and node
  ids are a random permutation of the positions, so hubs are spread over the id range;
* **homophily**: a fraction ``homophily`` of the edges joins two nodes of the same class, the rest a node of a class
  drawn in proportion to class sizes;
* **learnable features**: ``x = centroid[y] + noise``, centroids :math:`\mathcal{N}(0, \text{separation}^2)`,
  noise :math:`\mathcal{N}(0, 1)`; class sizes follow a Zipf law (exponent ``class_skew``), imbalanced as products'.

Memory: edges are generated in fixed chunks into one pre-allocated array of ``u * N + v`` keys (``16 E`` bytes,
0.99 GB at full size) that is sorted in place (NumPy) and deduplicated into a copy; the result is ``edge_index``
(``32 E`` bytes, 1.98 GB) and ``x`` (``4 N F`` bytes, 0.98 GB), so the peak stays near 5 GB at full size. Self-loops and repeated
pairs are dropped (``info['num_edges']`` counts what is left; at full size a few per cent of the pairs repeat).
The output depends only on the arguments (the chunk size is fixed), not on the machine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data

from gdl_graphs.data.benchmark import Benchmark

PRODUCTS_SHAPE = {"num_nodes": 2_449_029, "num_edges": 61_859_140, "num_features": 100, "num_classes": 47}
PRODUCTS_SPLIT = (196_615, 39_323, 2_213_091)
_CHUNK = 1 << 22


def _positions(counts: torch.Tensor, starts: torch.Tensor, classes: torch.Tensor, skew: float,
               generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(classes.numel(), generator=generator, dtype=torch.float64)
    offset = (counts[classes].double() * u.pow(skew)).long().clamp_max_(counts[classes] - 1)
    return starts[classes] + offset


def products_like_graph(num_nodes: int = PRODUCTS_SHAPE["num_nodes"], num_edges: int = PRODUCTS_SHAPE["num_edges"],
                        num_features: int = PRODUCTS_SHAPE["num_features"],
                        num_classes: int = PRODUCTS_SHAPE["num_classes"], homophily: float = 0.8,
                        degree_skew: float = 2.0, class_skew: float = 0.8, separation: float = 0.5,
                        split: tuple[float, float, float] | None = None, seed: int = 0,
                        progress: bool = True) -> Data:
    """Generate the graph (see the module docstring).

    Args:
        num_nodes, num_edges: nodes and undirected edge draws (``edge_index`` has up to ``2 * num_edges`` columns).
        num_features, num_classes: width of ``x`` and number of labels.
        homophily: fraction of edges drawn inside a class (in ``[0, 1]``).
        degree_skew: exponent ``a >= 1`` of the endpoint positions (1 = uniform degrees).
        class_skew: Zipf exponent of the class sizes (0 = balanced).
        separation: std of the class centroids relative to the unit feature noise.
        split: train / val / test fractions (default: ogbn-products' proportions).
        seed: everything is drawn from ``torch.Generator().manual_seed(seed)``.
        progress: show a progress bar over the edge chunks.

    Returns:
        :class:`~torch_geometric.data.Data` with ``x`` ``[N, F]`` float, ``y`` ``[N]`` long, ``edge_index``
        ``[2, E']`` (symmetric, coalesced, no self-loops) and ``train_mask`` / ``val_mask`` / ``test_mask``.
    """
    from tqdm import tqdm

    if num_nodes < num_classes or num_classes < 1 or num_edges < 1 or num_features < 1:
        raise ValueError(f"need num_nodes >= num_classes >= 1, num_edges >= 1, num_features >= 1; got "
                         f"{num_nodes}, {num_classes}, {num_edges}, {num_features}")
    if not 0 <= homophily <= 1 or degree_skew < 1 or class_skew < 0:
        raise ValueError(f"need 0 <= homophily <= 1, degree_skew >= 1, class_skew >= 0; got {homophily}, "
                         f"{degree_skew}, {class_skew}")
    fractions = split or tuple(s / sum(PRODUCTS_SPLIT) for s in PRODUCTS_SPLIT)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split}")
    g = torch.Generator().manual_seed(seed)

    # classes: Zipf sizes, at least one node each; positions [starts[c], starts[c] + counts[c]) belong to class c
    weights = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float64).pow(class_skew)
    counts = torch.ones(num_classes, dtype=torch.long) + torch.bincount(
        torch.multinomial(weights, num_nodes - num_classes, replacement=True, generator=g), minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    node_of_position = torch.randperm(num_nodes, generator=g)
    y = torch.empty(num_nodes, dtype=torch.long)
    y[node_of_position] = torch.repeat_interleave(torch.arange(num_classes), counts)

    # edges: keys u * N + v of both directions, written chunk by chunk, sorted in place, deduplicated
    keys = np.empty(2 * num_edges, dtype=np.int64)
    class_probs = counts.double() / num_nodes
    done = filled = 0
    with tqdm(total=num_edges, desc="synthetic graph: edges", unit="edge", unit_scale=True, disable=not progress,
              mininterval=1.0) as bar:
        while done < num_edges:
            m = min(_CHUNK, num_edges - done)
            src_class = torch.multinomial(class_probs, m, replacement=True, generator=g)
            other = torch.multinomial(class_probs, m, replacement=True, generator=g)
            same = torch.rand(m, generator=g) < homophily
            dst_class = torch.where(same, src_class, other)
            src = node_of_position[_positions(counts, starts, src_class, degree_skew, g)]
            dst = node_of_position[_positions(counts, starts, dst_class, degree_skew, g)]
            loop = src == dst                                  # self-loops are dropped
            src, dst = src[~loop], dst[~loop]
            keys[filled:filled + len(src)] = (src * num_nodes + dst).numpy()
            keys[filled + len(src):filled + 2 * len(src)] = (dst * num_nodes + src).numpy()
            filled += 2 * len(src)
            done += m
            bar.update(m)
    keys = keys[:filled]
    keys.sort()                                                # in place
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    keys = keys[keep]                                          # repeated pairs dropped
    edge_index = torch.empty(2, len(keys), dtype=torch.long)
    keys_t = torch.from_numpy(keys)
    torch.div(keys_t, num_nodes, rounding_mode="floor", out=edge_index[0])
    torch.remainder(keys_t, num_nodes, out=edge_index[1])
    del keys, keys_t

    # features: centroid of the class plus unit noise, filled in chunks
    centroids = torch.randn(num_classes, num_features, generator=g) * separation
    x = torch.empty(num_nodes, num_features)
    for begin in range(0, num_nodes, _CHUNK // 4):
        end = min(begin + _CHUNK // 4, num_nodes)
        x[begin:end] = torch.randn(end - begin, num_features, generator=g)
        x[begin:end] += centroids[y[begin:end]]

    order = torch.randperm(num_nodes, generator=g)
    n_train, n_val = round(fractions[0] * num_nodes), round(fractions[1] * num_nodes)
    masks = {}
    for key, idx in (("train_mask", order[:n_train]), ("val_mask", order[n_train:n_train + n_val]),
                     ("test_mask", order[n_train + n_val:])):
        masks[key] = torch.zeros(num_nodes, dtype=torch.bool)
        masks[key][idx] = True
    return Data(x=x, y=y, edge_index=edge_index, num_nodes=num_nodes, **masks)


def load_synthetic_products(root=None, **options) -> Benchmark:
    """:func:`products_like_graph` as a node-classification :class:`Benchmark` (generated in memory on every load,
    nothing written; ``root`` is unused). ``options`` go to the generator (sizes, ``seed``, ...)."""
    data = products_like_graph(**options)
    num_classes = options.get("num_classes", PRODUCTS_SHAPE["num_classes"])
    info = {"split": "random, ogbn-products proportions" if options.get("split") is None else "random",
            "seed": options.get("seed", 0), "num_edges": data.edge_index.size(1) // 2,
            "generator": "gdl_graphs.data.synthetic_graphs.products_like_graph"}
    return Benchmark(name="SyntheticProducts", task="node_classification", metric="accuracy", train=data, val=data,
                     test=data, num_features=data.num_node_features, num_targets=num_classes, dataset=[data],
                     info=info)


__all__ = ["products_like_graph", "load_synthetic_products", "PRODUCTS_SHAPE", "PRODUCTS_SPLIT"]
