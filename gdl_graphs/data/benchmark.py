"""The :class:`Benchmark` bundle every loader returns: splits, task, metric and the dimensions a model needs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torch_geometric.data.data import BaseData

TASKS = ("graph_classification", "graph_regression", "graph_multilabel", "node_classification", "forecasting",
         "dynamics")
"""Task kinds. ``graph_multilabel`` is multi-task binary classification, scored by ROC-AUC (molhiv, BBBP, HIV) or
by average precision (Peptides-func); the ``Benchmark.metric`` says which."""


@dataclass(frozen=True)
class Metric:
    """A headline metric and its direction.

    Attributes:
        name: the key under which tasks report it.
        higher_is_better: ``True`` for scores (accuracy, ROC-AUC), ``False`` for errors.
        percent: shown as a percentage in tables.
    """

    name: str
    higher_is_better: bool
    percent: bool = False


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", higher_is_better=True, percent=True),
    Metric("mae", higher_is_better=False),
    Metric("rmse", higher_is_better=False),
    Metric("mse", higher_is_better=False),
    Metric("rocauc", higher_is_better=True, percent=True),
    Metric("ap", higher_is_better=True, percent=True),
)}
"""Headline metrics by name, the one place that says which way is better. For forecasting, ``mae`` is DCRNN's
masked MAE (:func:`gdl_graphs.data.traffic.masked_mae`); ``ap`` is average precision averaged over tasks (OGB's /
LRGB's, Peptides-func)."""


@dataclass
class ForecastSpec:
    """What a spatio-temporal forecasting task adds: the static sensor graph, window sizes and the scaler.

    Items of the window datasets are ``(x, y)``: ``x`` ``[input_len, num_nodes, num_features]`` with channel 0
    standardised by ``scaler`` (fitted on the training inputs only) and ``y`` ``[horizon, num_nodes]`` in the
    original units, so ``scaler.inverse_transform(prediction)`` is compared with ``y`` directly. Where
    ``null_value`` is not ``None``, targets equal to it are missing readings and the masked metrics skip them.
    """

    edge_index: Tensor
    edge_weight: Tensor
    num_nodes: int
    input_len: int
    horizon: int
    scaler: Any
    null_value: float | None = 0.0


@dataclass
class Benchmark:
    """One benchmark dataset ready for training.

    Attributes:
        name: canonical dataset name (``"MUTAG"``, ``"molhiv"``, ``"METR-LA"``).
        task: one of :data:`TASKS` (its training loop, loss and evaluation are the task kind of that name in
            :data:`gdl_graphs.bench.tasks.TASK_KINDS`).
        metric: the headline metric, one of :data:`METRICS`.
        train, val, test: PyG datasets or index subsets of one; for transductive node tasks the single graph (a
            :class:`~torch_geometric.data.Data` with ``train_mask`` / ``val_mask`` / ``test_mask``); for forecasting
            window datasets (see :class:`ForecastSpec`).
        num_features: node input channels (columns of ``x``; 0 when a dataset has no ``x``).
        num_targets: number of classes for classification, number of tasks for ``graph_multilabel``, number of
            regression targets otherwise.
        num_edge_features: columns of ``edge_attr`` (0 if none).
        node_vocab, edge_vocab: for integer-coded (categorical) features, the number of values of each column (for
            embedding tables, like OGB's ``AtomEncoder``); ``None`` when features are dense floats.
        folds: for cross-validated datasets and repeated random splits, ``(train_idx, val_idx, test_idx)`` index
            tensors into ``dataset``; ``train/val/test`` hold fold 0. ``None`` otherwise.
        dataset: the whole dataset the split indices refer to (``None`` when splits are separate files).
        evaluator: the official evaluator object where one exists (``ogb.graphproppred.Evaluator``), else ``None``.
        forecast: the extra settings of forecasting tasks, else ``None``.
        info: counts and provenance (skipped rows, split rule, source) for reports.
    """

    name: str
    task: str
    metric: str
    train: Any
    val: Any
    test: Any
    num_features: int
    num_targets: int
    num_edge_features: int = 0
    node_vocab: tuple[int, ...] | None = None
    edge_vocab: tuple[int, ...] | None = None
    folds: list[tuple[Tensor, Tensor, Tensor]] | None = None
    dataset: Any = None
    evaluator: Any = None
    forecast: ForecastSpec | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Benchmark {self.name!r}: task {self.task!r} is not one of {TASKS}")
        if self.metric not in METRICS:
            raise ValueError(f"Benchmark {self.name!r}: metric {self.metric!r} is not one of {tuple(METRICS)}")
        if self.task == "forecasting" and self.forecast is None:
            raise ValueError(f"Benchmark {self.name!r}: a forecasting task needs a ForecastSpec")

    @property
    def num_folds(self) -> int:
        """Number of cross-validation folds or repeated random splits (1 for datasets with a single split)."""
        return len(self.folds) if self.folds else 1

    def split_sizes(self) -> tuple[int, int, int]:
        """Number of training / validation / test examples (nodes under the masks for transductive tasks)."""
        if self.task == "node_classification":
            return tuple(int(getattr(self.train, f"{k}_mask").sum()) for k in ("train", "val", "test"))
        return len(self.train), len(self.val), len(self.test)

    def fold(self, i: int) -> Benchmark:
        """The same benchmark with ``train/val/test`` taken from fold ``i``.

        Datasets with one official split accept only ``i == 0`` and return ``self``, so a harness can loop over
        ``range(b.num_folds)`` for every dataset.
        """
        if not self.folds:
            if i != 0:
                raise IndexError(f"Benchmark {self.name!r} has a single official split; fold {i} does not exist")
            return self
        if not 0 <= i < len(self.folds):
            raise IndexError(f"Benchmark {self.name!r} has {len(self.folds)} folds; fold {i} does not exist")
        return dataclasses.replace(self.with_split(*self.folds[i]), info={**self.info, "fold": i})

    def with_split(self, train_idx: Tensor, val_idx: Tensor, test_idx: Tensor) -> Benchmark:
        """The same benchmark with ``train/val/test`` the graphs of ``dataset`` (a PyG dataset or a list) at these
        indices."""
        def take(index: Tensor):
            return [self.dataset[i] for i in index.tolist()] if isinstance(self.dataset, list) else self.dataset[index]

        return dataclasses.replace(self, train=take(train_idx), val=take(val_idx), test=take(test_idx))


def benchmark_is_single_graph(split) -> bool:
    """Whether a split is one graph (transductive) rather than a dataset of graphs."""
    return isinstance(split, BaseData)
