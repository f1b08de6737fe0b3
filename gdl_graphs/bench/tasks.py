"""Task kinds as types: each class owns how a model is trained for one epoch on its kind of
:data:`gdl_graphs.data.TASKS` (batching, loss) and how it is evaluated (metrics); :data:`TASK_KINDS` maps the
kind's name to its class and :func:`make_task` picks it for a benchmark.

- :class:`GraphClassification` (cross-entropy, accuracy), :class:`GraphRegression` (targets standardised on the
  training set; L1 loss for MAE benchmarks, MSE otherwise), :class:`GraphMultilabel` (masked BCE on NaN-free labels,
  ROC-AUC through OGB's ``Evaluator`` where the benchmark has one), :class:`Dynamics` (MSE of predicted positions),
  all on mini-batches of graphs (:class:`GraphBatches`);
- :class:`NodeClassification`: transductive, masks; full batch, or neighbour-sampled mini-batches with a suite's
  ``sampler`` (:mod:`gdl_graphs.bench.minibatch`; kinds declaring :attr:`Task.accepts_sampler` take one);
- :class:`Forecasting`: traffic windows (masked MAE on inverse-scaled predictions; MAE / RMSE / MAPE overall and at
  horizons 3 / 6 / 12; DCRNN's scheduled sampling where the model declares teacher forcing).

The direction of each metric is :data:`gdl_graphs.data.METRICS`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader as TorchLoader
from torch.utils.data import Subset
from torch_geometric.loader import DataLoader

from gdl_graphs.bench.minibatch import SamplerSettings, neighbour_batches
from gdl_graphs.data.benchmark import METRICS, Benchmark, benchmark_is_single_graph
from gdl_graphs.data.traffic import masked_mae, masked_mape, masked_mse, masked_rmse
from gdl_graphs.models.registry import ModelEntry

HORIZONS = (3, 6, 12)


def _mean_over_tasks(score, name: str, y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean of ``score`` over the tasks with both classes present, NaN labels ignored (OGB's rule)."""
    scores = []
    for task in range(y_true.shape[1]):
        labelled = ~np.isnan(y_true[:, task])
        labels = y_true[labelled, task]
        if labels.size and 0 < labels.sum() < labels.size:
            scores.append(score(labels, y_score[labelled, task]))
    if not scores:
        raise ValueError(f"{name} is undefined: no task has both positive and negative labels in this split")
    return float(np.mean(scores))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over the tasks with both classes present, NaN labels ignored (OGB's rule)."""
    from sklearn.metrics import roc_auc_score

    return _mean_over_tasks(roc_auc_score, "ROC-AUC", y_true, y_score)


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean average precision over the tasks with both classes present, NaN labels ignored (LRGB's AP)."""
    from sklearn.metrics import average_precision_score

    return _mean_over_tasks(average_precision_score, "AP", y_true, y_score)


MULTILABEL_METRICS = {"rocauc": roc_auc, "ap": average_precision}


def improves(value: float, best: float | None, higher_is_better: bool) -> bool:
    """Whether ``value`` beats ``best`` (``None`` or NaN: any non-NaN value does)."""
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if higher_is_better else value < best


class Task:
    """Base of the task kinds. ``train_epoch`` returns the mean training loss; ``evaluate`` the metrics of a split
    (``"train"``, ``"val"``, ``"test"``) with the headline metric under ``benchmark.metric``.

    Args:
        benchmark: the data (its ``task`` is this class's :attr:`kind`).
        batch_size, device, seed: the loop's settings (``seed`` drives the shuffling).
        train_limit: train on this many training examples (a quick subset).
        sampler_factory: ``sampler_factory(train_split)`` -> a sampler (distributed training), or ``None``.
        entry: the registered model, whose declarations (teacher forcing, a baseline fitted on the training
            series, auxiliary losses) the loop follows; ``None``: nothing declared.
        sampler: neighbour-sampled mini-batches (a suite's ``sampler``), for the kinds that declare
            :attr:`accepts_sampler`; ``None``: the kind's own batching.
    """

    kind: ClassVar[str]
    """The name of the task kind in :data:`gdl_graphs.data.TASKS`."""

    accepts_sampler: ClassVar[bool] = False
    """Whether the kind trains on neighbour-sampled mini-batches (checked by the suite's config validation)."""

    reports_loss: ClassVar[bool] = False
    """Whether :meth:`evaluate` also returns the split's mean ``loss`` (what ``select_by: loss`` selects on)."""

    def __init__(self, benchmark: Benchmark, batch_size: int, device: torch.device, seed: int,
                 train_limit: int | None = None, sampler_factory=None, entry: ModelEntry | None = None,
                 sampler: SamplerSettings | None = None):
        if benchmark.task != self.kind:
            raise ValueError(f"{type(self).__name__} trains {self.kind!r} benchmarks, got {benchmark.name} "
                             f"({benchmark.task})")
        if sampler is not None and not self.accepts_sampler:
            raise ValueError(f"sampler: {benchmark.name} ({benchmark.task}) does not train on neighbour-sampled "
                             f"mini-batches (node classification does)")
        self.benchmark, self.batch_size, self.device = benchmark, batch_size, device
        self.seed, self.sampler = seed, sampler
        self.entry = entry
        self.metric = benchmark.metric
        self.higher_is_better = METRICS[self.metric].higher_is_better
        self.generator = torch.Generator().manual_seed(seed)
        self.sampler_factory = sampler_factory
        self.train_split = benchmark.train
        if train_limit is not None and not benchmark_is_single_graph(self.train_split):
            order = torch.randperm(len(self.train_split), generator=torch.Generator().manual_seed(seed))
            self.train_split = Subset(self.train_split, order[:train_limit].tolist()) \
                if not hasattr(self.train_split, "index_select") else self.train_split[order[:train_limit]]
        self.epoch = 0

    def _train_loader(self, loader_class):
        sampler = self.sampler_factory(self.train_split) if self.sampler_factory else None
        if sampler is not None:
            sampler.set_epoch(self.epoch)
        return loader_class(self.train_split, batch_size=self.batch_size, shuffle=sampler is None,
                            sampler=sampler, generator=self.generator if sampler is None else None)

    def _split(self, name: str):
        return {"train": self.train_split, "val": self.benchmark.val, "test": self.benchmark.test}[name]

    def _step(self, model: nn.Module, optimizer, loss: Tensor, grad_clip: float | None) -> Tensor:
        """Add the model's declared auxiliary losses, back-propagate, clip and step; returns the total loss."""
        if self.entry is not None and self.entry.aux_losses:
            loss = loss + sum(_unwrapped(model).auxiliary_loss().values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return loss

    def state(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = state["epoch"]


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class GraphBatches(Task):
    """Mini-batches of graphs: a subclass says how outputs are scored (:meth:`loss`, :meth:`metrics`) and may map
    outputs to the benchmark's units (:meth:`to_units`)."""

    reports_loss = True

    def loss(self, out: Tensor, data) -> Tensor:
        raise NotImplementedError

    def metrics(self, out: Tensor, y: Tensor) -> dict:
        raise NotImplementedError

    def to_units(self, out: Tensor) -> Tensor:
        return out

    def targets(self, data, out: Tensor) -> Tensor:
        return data.y.view(out.shape[0], -1)

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        model.train()
        total, count = 0.0, 0
        for data in self._train_loader(DataLoader):
            data = data.to(self.device)
            with autocast():
                out = model(data)
            loss = self._step(model, optimizer, self.loss(out.float(), data), grad_clip)
            total = total + loss.detach().double() * data.num_graphs  # summed on the device: no sync per step
            count += data.num_graphs
        self.epoch += 1
        return float(total) / max(count, 1)

    @torch.no_grad()
    def predict(self, model, split) -> tuple[Tensor, Tensor, float]:
        """Predictions in the benchmark's units, the targets of a split, and the mean training loss over it
        (without auxiliary losses)."""
        model.eval()
        outs, ys, loss, count = [], [], 0.0, 0
        for data in DataLoader(split, batch_size=max(self.batch_size, 256)):
            data = data.to(self.device)
            raw = model(data).float()
            loss += float(self.loss(raw, data)) * data.num_graphs
            count += data.num_graphs
            out = self.to_units(raw)
            outs.append(out.cpu())
            ys.append(self.targets(data, out).cpu())
        return torch.cat(outs), torch.cat(ys), loss / max(count, 1)

    def evaluate(self, model, name: str) -> dict:
        out, y, loss = self.predict(model, self._split(name))
        return {**self.metrics(out, y), "loss": loss}


def _errors(out: Tensor, y: Tensor) -> dict:
    error = out - y.view(out.shape).float()
    metrics = {"mae": float(error.abs().mean()), "mse": float((error ** 2).mean())}
    metrics["rmse"] = math.sqrt(metrics["mse"])
    return metrics


class GraphClassification(GraphBatches):
    """One class per graph: cross-entropy, accuracy."""

    kind = "graph_classification"

    def loss(self, out: Tensor, data) -> Tensor:
        return F.cross_entropy(out, data.y.view(-1).long())

    def metrics(self, out: Tensor, y: Tensor) -> dict:
        return {"accuracy": float((out.argmax(-1) == y.view(-1)).float().mean())}


class GraphMultilabel(GraphBatches):
    """Binary tasks per graph with missing (NaN) labels: masked BCE; the benchmark's metric (mean ROC-AUC, or AP
    for LRGB) from its ``Evaluator`` where it has one."""

    kind = "graph_multilabel"

    def loss(self, out: Tensor, data) -> Tensor:
        y = data.y.view(out.shape).float()
        labelled = ~torch.isnan(y)
        return F.binary_cross_entropy_with_logits(out[labelled], y[labelled])

    def metrics(self, out: Tensor, y: Tensor) -> dict:
        y_true, y_score = y.view(out.shape).numpy(), out.numpy()
        evaluator, metric = self.benchmark.evaluator, self.benchmark.metric
        if metric not in MULTILABEL_METRICS:
            raise ValueError(f"graph_multilabel: metric {metric!r} is not one of {sorted(MULTILABEL_METRICS)}")
        value = evaluator.eval({"y_true": y_true, "y_pred": y_score})[metric] if evaluator is not None \
            else MULTILABEL_METRICS[metric](y_true, y_score)
        return {metric: float(value)}


class GraphRegression(GraphBatches):
    """Real targets per graph, standardised with the training mean and std: L1 loss for MAE benchmarks, MSE
    otherwise; errors reported in the targets' units."""

    kind = "graph_regression"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ys = torch.cat([data.y.view(1, -1).float() for data in self.train_split])
        self.mean, self.std = ys.mean(0).to(self.device), ys.std(0).clamp(min=1e-8).to(self.device)

    def loss(self, out: Tensor, data) -> Tensor:
        target = (data.y.view(out.shape).float() - self.mean) / self.std
        return F.l1_loss(out, target) if self.metric == "mae" else F.mse_loss(out, target)

    def to_units(self, out: Tensor) -> Tensor:
        return out * self.std + self.mean

    def metrics(self, out: Tensor, y: Tensor) -> dict:
        return _errors(out, y)


class Dynamics(GraphBatches):
    """Predicted node positions (E(n) dynamics): MSE loss, errors of the positions."""

    kind = "dynamics"

    def loss(self, out: Tensor, data) -> Tensor:
        return F.mse_loss(out, data.y.view(out.shape).float())

    def targets(self, data, out: Tensor) -> Tensor:
        return data.y

    def metrics(self, out: Tensor, y: Tensor) -> dict:
        return _errors(out, y)


class NodeClassification(Task):
    """Transductive node classification on one graph with ``train_mask`` / ``val_mask`` / ``test_mask``: cross
    entropy, accuracy. Full batch, or, with a ``sampler``, one optimiser step per batch of ``batch_size`` shuffled
    training seeds in their sampled ``num_neighbors`` neighbourhood (loss on the seeds' outputs), drawn from the
    task's generator so that a resumed run continues the same batches. Evaluation with a sampler is exact
    (``eval="full"``: one full-graph forward) or an estimate on sampled neighbourhoods (``eval="sampled"``: the
    split's nodes as seeds, from a generator seeded afresh by the run's seed, the same subgraphs every epoch)."""

    kind = "node_classification"
    accepts_sampler = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = self.benchmark.train.to(self.device)

    def _batches(self, mask: Tensor, generator: torch.Generator, shuffle: bool):
        """The sampled batches around the nodes under ``mask``, on the task's device (sampling runs on the CPU)."""
        for batch in neighbour_batches(self.benchmark.train, self.sampler, mask.cpu(), generator, shuffle):
            yield batch.to(self.device)

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        model.train()
        loss = self._train_full_batch(model, optimizer, grad_clip, autocast) if self.sampler is None \
            else self._train_sampled(model, optimizer, grad_clip, autocast)
        self.epoch += 1
        return loss

    def _train_full_batch(self, model, optimizer, grad_clip, autocast) -> float:
        with autocast():
            out = model(self.data)
        mask = self.data.train_mask
        loss = self._step(model, optimizer, F.cross_entropy(out.float()[mask], self.data.y[mask]), grad_clip)
        return float(loss.detach())

    def _train_sampled(self, model, optimizer, grad_clip, autocast) -> float:
        total, seeds = 0.0, 0
        for batch in self._batches(self.data.train_mask, self.generator, shuffle=True):
            with autocast():
                out = model(batch)[:batch.batch_size]
            loss = self._step(model, optimizer, F.cross_entropy(out.float(), batch.y[:batch.batch_size]), grad_clip)
            total = total + loss.detach().double() * batch.batch_size  # summed on the device: no sync per step
            seeds += batch.batch_size
        return float(total) / max(seeds, 1)

    @torch.no_grad()
    def evaluate(self, model, name: str) -> dict:
        model.eval()
        mask = getattr(self.data, f"{name}_mask")
        if self.sampler is not None and self.sampler.eval == "sampled":
            batches = list(self._batches(mask, torch.Generator().manual_seed(self.seed), shuffle=False))
            out = torch.cat([model(batch)[:batch.batch_size].float() for batch in batches])
            y = torch.cat([batch.y[:batch.batch_size] for batch in batches])
        else:
            out, y = model(self.data).float()[mask], self.data.y[mask]
        return {"accuracy": float((out.argmax(-1) == y).float().mean())}


class Forecasting(Task):
    """Sliding-window traffic forecasting: the model maps ``x [B, T_in, N, F]`` (scaled) to ``[B, T_out, N]``
    (scaled); predictions are inverse-scaled and compared with the raw targets by the masked metrics."""

    kind = "forecasting"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = self.benchmark.forecast
        self.step_count = 0
        self.teacher_forcing = self.entry is not None and self.entry.teacher_forcing

    def _forward(self, model, x: Tensor, y: Tensor | None = None) -> Tensor:
        if y is not None and model.training and self.teacher_forcing:
            from gdl_graphs.models.temporal import scheduled_sampling_probability

            ratio = scheduled_sampling_probability(self.step_count)
            return model(x, self.spec.scaler.transform(y), teacher_forcing_ratio=ratio)
        return model(x)

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        model.train()
        total, count = 0.0, 0
        for x, y in self._train_loader(TorchLoader):
            x, y = x.to(self.device).float(), y.to(self.device).float()
            with autocast():
                out = self._forward(model, x, y)
            loss = masked_mae(self.spec.scaler.inverse_transform(out.float()), y, self.spec.null_value)
            loss = self._step(model, optimizer, loss, grad_clip)
            self.step_count += 1
            total = total + loss.detach().double() * x.size(0)  # summed on the device: no sync per step
            count += x.size(0)
        self.epoch += 1
        return float(total) / max(count, 1)

    @torch.no_grad()
    def evaluate(self, model, name: str) -> dict:
        model.eval()
        self._fit_calendar_baseline(model)
        preds, targets = [], []
        for x, y in TorchLoader(self._split(name), batch_size=max(self.batch_size, 64)):
            preds.append(self.spec.scaler.inverse_transform(self._forward(model, x.to(self.device).float()).float())
                         .cpu())
            targets.append(y.float())
        pred, target = torch.cat(preds), torch.cat(targets)
        null = self.spec.null_value
        metrics = {"mae": float(masked_mae(pred, target, null)), "rmse": float(masked_rmse(pred, target, null)),
                   "mape": float(masked_mape(pred, target, null)),
                   "mse": float(masked_mse(pred, target, null))}  # the headline metric of the PyG-Temporal series
        for h in HORIZONS:
            if h <= pred.size(1):
                p, t = pred[:, h - 1], target[:, h - 1]
                metrics.update({f"mae@{h}": float(masked_mae(p, t, null)), f"rmse@{h}": float(masked_rmse(p, t, null)),
                                f"mape@{h}": float(masked_mape(p, t, null))})
        return metrics

    def _fit_calendar_baseline(self, model) -> None:
        """A model declaring ``fits_training_series`` (``HistoricalAverage`` with a calendar) is fitted once, on the
        training series (scaled, the units it predicts; missing readings masked), before it is first evaluated."""
        inner = _unwrapped(model)
        if self.entry is None or not self.entry.fits_training_series or not inner.needs_fit:
            return
        train, null = self.benchmark.train, self.spec.null_value
        target = train.target[train.span]
        mask = ~torch.isnan(target)
        if null is not None and not math.isnan(null):
            mask &= target != null
        inner.fit(self.spec.scaler.transform(target), train.features[train.span, 0, inner.time_feature], mask)

    def state(self) -> dict:
        return {**super().state(), "step_count": self.step_count}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.step_count = state["step_count"]


TASK_KINDS: dict[str, type[Task]] = {cls.kind: cls for cls in (
    GraphClassification, GraphRegression, GraphMultilabel, NodeClassification, Forecasting, Dynamics)}
"""Task kinds by name (the keys are :data:`gdl_graphs.data.TASKS`)."""


def make_task(benchmark: Benchmark, **kwargs) -> Task:
    """The task kind of ``benchmark.task``, built with ``kwargs`` (see :class:`Task`)."""
    return TASK_KINDS[benchmark.task](benchmark, **kwargs)
