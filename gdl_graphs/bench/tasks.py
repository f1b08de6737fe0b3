"""Task loops: how a model is trained for one epoch and evaluated, per task kind of
:data:`gdl_graphs.data.TASKS`.

- graph classification (cross-entropy, accuracy), graph regression (targets standardised on the training set;
  L1 loss for MAE benchmarks, MSE otherwise), multi-label (masked BCE on NaN-free labels, ROC-AUC through OGB's
  ``Evaluator`` where the benchmark has one), E(n) dynamics (MSE of predicted positions);
- transductive node classification (full batch, masks);
- traffic forecasting (masked MAE on inverse-scaled predictions; MAE / RMSE / MAPE overall and at horizons
  3 / 6 / 12; DCRNN's scheduled sampling when the model supports it).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader as TorchLoader
from torch.utils.data import Subset
from torch_geometric.loader import DataLoader

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.models.registry import benchmark_is_single_graph

HIGHER_IS_BETTER = {"accuracy": True, "rocauc": True, "mae": False, "rmse": False, "mse": False}
HORIZONS = (3, 6, 12)


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over the tasks with both classes present, NaN labels ignored (OGB's rule)."""
    from sklearn.metrics import roc_auc_score

    scores = []
    for task in range(y_true.shape[1]):
        labelled = ~np.isnan(y_true[:, task])
        labels = y_true[labelled, task]
        if labels.size and 0 < labels.sum() < labels.size:
            scores.append(roc_auc_score(labels, y_score[labelled, task]))
    if not scores:
        raise ValueError("ROC-AUC is undefined: no task has both positive and negative labels in this split")
    return float(np.mean(scores))


class Task:
    """Base of the task loops. ``train_epoch`` returns the mean training loss; ``evaluate`` the metrics of a
    split (``"train"``, ``"val"``, ``"test"``) with the headline metric under ``benchmark.metric``."""

    def __init__(self, benchmark: Benchmark, batch_size: int, device: torch.device, seed: int,
                 train_limit: int | None = None, sampler_factory=None):
        self.benchmark, self.batch_size, self.device = benchmark, batch_size, device
        self.metric = benchmark.metric
        self.higher_is_better = HIGHER_IS_BETTER[self.metric]
        self.generator = torch.Generator().manual_seed(seed)
        self.sampler_factory = sampler_factory
        self.train_split = benchmark.train
        if train_limit is not None and not benchmark_is_single_graph(self.train_split):
            order = torch.randperm(len(self.train_split), generator=torch.Generator().manual_seed(seed))
            self.train_split = Subset(self.train_split, order[:train_limit].tolist()) \
                if not hasattr(self.train_split, "index_select") else self.train_split[order[:train_limit]]
        self.epoch = 0

    def better(self, value: float, best: float | None) -> bool:
        if best is None or math.isnan(best):
            return not math.isnan(value)
        return value > best if self.higher_is_better else value < best

    def _train_loader(self, loader_class):
        sampler = self.sampler_factory(self.train_split) if self.sampler_factory else None
        if sampler is not None:
            sampler.set_epoch(self.epoch)
        return loader_class(self.train_split, batch_size=self.batch_size, shuffle=sampler is None,
                            sampler=sampler, generator=self.generator if sampler is None else None)

    def _split(self, name: str):
        return {"train": self.train_split, "val": self.benchmark.val, "test": self.benchmark.test}[name]

    def state(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch = state["epoch"]


def _step(model: nn.Module, optimizer, loss: Tensor, grad_clip: float | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


class GraphTask(Task):
    """Mini-batches of graphs: classification, regression, multi-label and dynamics."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = self.benchmark.task
        self.mean = self.std = None
        if self.kind == "graph_regression":
            ys = torch.cat([data.y.view(1, -1).float() for data in self.train_split])
            self.mean, self.std = ys.mean(0).to(self.device), ys.std(0).clamp(min=1e-8).to(self.device)

    def loss(self, out: Tensor, data) -> Tensor:
        y = data.y
        if self.kind == "graph_classification":
            return F.cross_entropy(out, y.view(-1).long())
        if self.kind == "graph_multilabel":
            y = y.view(out.shape).float()
            labelled = ~torch.isnan(y)
            return F.binary_cross_entropy_with_logits(out[labelled], y[labelled])
        if self.kind == "graph_regression":
            target = (y.view(out.shape).float() - self.mean) / self.std
            return F.l1_loss(out, target) if self.metric == "mae" else F.mse_loss(out, target)
        return F.mse_loss(out, y.view(out.shape).float())  # dynamics: positions

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        model.train()
        total, count = 0.0, 0
        for data in self._train_loader(DataLoader):
            data = data.to(self.device)
            with autocast():
                out = model(data)
            loss = self.loss(out.float(), data)
            _step(model, optimizer, loss, grad_clip)
            total += float(loss.detach()) * data.num_graphs
            count += data.num_graphs
        self.epoch += 1
        return total / max(count, 1)

    @torch.no_grad()
    def predict(self, model, split) -> tuple[Tensor, Tensor]:
        """Predictions in the benchmark's units and the targets of a split."""
        model.eval()
        outs, ys = [], []
        for data in DataLoader(split, batch_size=max(self.batch_size, 256)):
            data = data.to(self.device)
            out = model(data).float()
            if self.kind == "graph_regression":
                out = out * self.std + self.mean
            outs.append(out.cpu())
            ys.append(data.y.view(out.shape[0], -1).cpu() if self.kind != "dynamics" else data.y.cpu())
        return torch.cat(outs), torch.cat(ys)

    def evaluate(self, model, name: str) -> dict:
        out, y = self.predict(model, self._split(name))
        if self.kind == "graph_classification":
            return {"accuracy": float((out.argmax(-1) == y.view(-1)).float().mean())}
        if self.kind == "graph_multilabel":
            y_true, y_score = y.view(out.shape).numpy(), out.numpy()
            evaluator = self.benchmark.evaluator
            value = evaluator.eval({"y_true": y_true, "y_pred": y_score})["rocauc"] if evaluator is not None \
                else roc_auc(y_true, y_score)
            return {"rocauc": float(value)}
        error = out - y.view(out.shape).float()
        metrics = {"mae": float(error.abs().mean()), "mse": float((error ** 2).mean())}
        metrics["rmse"] = math.sqrt(metrics["mse"])
        return metrics


class NodeTask(Task):
    """Transductive node classification on one graph with ``train_mask`` / ``val_mask`` / ``test_mask``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = self.benchmark.train.to(self.device)

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        model.train()
        with autocast():
            out = model(self.data)
        mask = self.data.train_mask
        loss = F.cross_entropy(out.float()[mask], self.data.y[mask])
        _step(model, optimizer, loss, grad_clip)
        self.epoch += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model, name: str) -> dict:
        model.eval()
        out = model(self.data).float()
        mask = getattr(self.data, f"{name}_mask")
        return {"accuracy": float((out[mask].argmax(-1) == self.data.y[mask]).float().mean())}


class ForecastTask(Task):
    """Sliding-window traffic forecasting: the model maps ``x [B, T_in, N, F]`` (scaled) to ``[B, T_out, N]``
    (scaled); predictions are inverse-scaled and compared with the raw targets by the masked metrics."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = self.benchmark.forecast
        self.step_count = 0

    def _forward(self, model, x: Tensor, y: Tensor | None = None) -> Tensor:
        inner = model.module if hasattr(model, "module") else model
        if y is not None and model.training and "teacher_forcing_ratio" in inspect.signature(
                inner.forward).parameters:
            from gdl_graphs.models.temporal import scheduled_sampling_probability

            ratio = scheduled_sampling_probability(self.step_count)
            return model(x, self.spec.scaler.transform(y), teacher_forcing_ratio=ratio)
        return model(x)

    def train_epoch(self, model, optimizer, grad_clip, autocast) -> float:
        from gdl_graphs.data.traffic import masked_mae

        model.train()
        total, count = 0.0, 0
        for x, y in self._train_loader(TorchLoader):
            x, y = x.to(self.device).float(), y.to(self.device).float()
            with autocast():
                out = self._forward(model, x, y)
            loss = masked_mae(self.spec.scaler.inverse_transform(out.float()), y, self.spec.null_value)
            _step(model, optimizer, loss, grad_clip)
            self.step_count += 1
            total += float(loss.detach()) * x.size(0)
            count += x.size(0)
        self.epoch += 1
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, model, name: str) -> dict:
        from gdl_graphs.data.traffic import masked_mae, masked_mape, masked_mse, masked_rmse

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
        """A ``HistoricalAverage`` with a calendar (``steps_per_day``) is fitted once, on the training series
        (scaled, the units it predicts; missing readings masked), before it is first evaluated."""
        inner = model.module if hasattr(model, "module") else model
        if getattr(inner, "steps_per_day", None) is None or not hasattr(inner, "fit") or inner.fitted:
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


def make_task(benchmark: Benchmark, **kwargs) -> Task:
    """The task loop for ``benchmark.task``."""
    if benchmark.task == "node_classification":
        return NodeTask(benchmark, **kwargs)
    if benchmark.task == "forecasting":
        return ForecastTask(benchmark, **kwargs)
    return GraphTask(benchmark, **kwargs)
