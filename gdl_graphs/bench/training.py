"""Train one run: Adam + a learning-rate schedule (ReduceLROnPlateau by default) + early stopping on the validation
metric, gradient clipping, bf16 autocast on GPU, a progress bar, and a checkpoint after every epoch from which an
interrupted run resumes.

The reported test metric is the one at the best validation epoch (the standard protocol of OGB and
benchmarking-gnns); every epoch evaluates validation and test so that nothing needs re-evaluating afterwards.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from gdl_graphs.bench.checkpoint import load_checkpoint
from gdl_graphs.bench.checkpoint import save_checkpoint as save_file
from gdl_graphs.bench.config import RunConfig
from gdl_graphs.bench.distributed import DistributedContext
from gdl_graphs.bench.minibatch import SamplerSettings
from gdl_graphs.bench.store import RunResult
from gdl_graphs.bench.tasks import Task, improves, make_task
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.models.registry import build_model, count_parameters, get_model


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Diverged(RuntimeError):
    """The training loss or a metric became NaN or infinite at ``epoch``."""

    def __init__(self, epoch: int, message: str):
        super().__init__(message)
        self.epoch = epoch


def _check_finite(config: RunConfig, epoch: int, values: dict) -> None:
    bad = [f"{name} {value}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise Diverged(epoch, f"{', '.join(bad)} (lr {config.lr}; try a lower lr)")


def _postfix(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@dataclass
class Session:
    """What one run trains with: the model (and its distributed wrapper), the task loop, the optimiser and
    scheduler (``None`` for a model without weights), the autocast context, the device and the process's place in a
    data-parallel job."""

    model: torch.nn.Module
    wrapped: torch.nn.Module
    task: Task
    optimizer: torch.optim.Optimizer | None
    scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None
    autocast: Callable
    device: torch.device
    params: int
    context: DistributedContext

    @property
    def trainable(self) -> bool:
        return self.optimizer is not None


def initial_state() -> dict:
    """The training state of a run that has not started (what a checkpoint saves)."""
    return {"epoch": 0, "best_val": None, "best_epoch": -1, "best_metrics": {}, "bad_epochs": 0, "curve": [],
            "train_seconds": []}


def parameter_groups(model: torch.nn.Module, config: RunConfig) -> list[dict]:
    """Adam's parameter groups: ``weight_decay`` on every parameter, or (``weight_decay_scope: first_layer``, Kipf &
    Welling) on the first message-passing layer only."""
    if config.weight_decay_scope == "all":
        return [{"params": list(model.parameters()), "weight_decay": config.weight_decay}]
    if not hasattr(model, "first_layer_parameters"):
        raise ValueError(f"{config.label()}: weight_decay_scope 'first_layer' needs a model with message-passing "
                         f"layers (GraphNet); {type(model).__name__} has none")
    first = {id(p) for p in model.first_layer_parameters()}
    return [{"params": [p for p in model.parameters() if id(p) in first], "weight_decay": config.weight_decay},
            {"params": [p for p in model.parameters() if id(p) not in first], "weight_decay": 0.0}]


def make_scheduler(optimizer, config: RunConfig, higher_is_better: bool):
    """The learning-rate schedule: ReduceLROnPlateau on the selection value (``select_by``: the validation metric
    or loss; ``higher_is_better`` says which way it improves), a constant rate, or a step decay
    by ``lr_factor`` every ``lr_step_size`` epochs (Xu et al.; Errica et al.)."""
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if higher_is_better else "min", factor=config.lr_factor,
            patience=config.lr_patience, min_lr=config.min_lr)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_size, gamma=config.lr_factor)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def set_up(config: RunConfig, benchmark: Benchmark, context: DistributedContext) -> Session:
    """Seed, build the registered model and its task loop, and the optimiser and scheduler when it has weights and
    epochs to train."""
    device = context.device or resolve_device(config.device)
    seed_everything(config.seed)
    options = dict(config.model_options)
    hidden = options.pop("hidden_channels", config.hidden_channels)  # either place sets the width
    model = build_model(config.model, benchmark, budget=config.budget, hidden_channels=hidden, **options).to(device)
    params = count_parameters(model)
    task = make_task(benchmark, batch_size=config.batch_size, device=device, seed=config.seed,
                     train_limit=config.train_limit, sampler_factory=context.sampler_factory,
                     entry=get_model(config.model),
                     sampler=None if config.sampler is None else SamplerSettings.parse(config.sampler))
    trainable = params > 0 and config.epochs > 0
    wrapped = context.wrap(model) if trainable else model
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config.lr) if trainable else None
    if config.select_by == "loss" and not task.reports_loss:
        raise ValueError(f"{config.label()}: select_by 'loss' needs a validation loss, which {benchmark.task} "
                         f"benchmarks do not report; use select_by 'metric'")
    scheduler = make_scheduler(optimizer, config, _selection_higher_is_better(task, config)) if trainable else None
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" \
        else contextlib.nullcontext
    return Session(model, wrapped, task, optimizer, scheduler, autocast, device, params, context)


def resume(session: Session, config: RunConfig, checkpoint: Path | None) -> dict:
    """The training state: from ``checkpoint`` when it holds this config's run (weights, optimiser, scheduler,
    task and RNG state restored), else :func:`initial_state`."""
    saved = load_checkpoint(checkpoint, config.key) if checkpoint is not None and session.trainable else None
    if saved is None:  # none, another config's, or unreadable (moved aside with a warning)
        return initial_state()
    session.model.load_state_dict(saved["model"])
    session.optimizer.load_state_dict(saved["optimizer"])
    session.scheduler.load_state_dict(saved["scheduler"])
    session.task.load_state(saved["task"])
    torch.set_rng_state(saved["rng"])
    return saved["state"]


def evaluate_once(session: Session, state: dict) -> None:
    """A model without weights (a baseline) is evaluated once on every split."""
    metrics = {split: session.task.evaluate(session.model, split) for split in ("train", "val", "test")}
    state.update(best_epoch=0, best_metrics=metrics, best_val=metrics["val"][session.task.metric])


def train_epoch(session: Session, config: RunConfig, state: dict) -> tuple[float, float]:
    """One epoch: train, evaluate validation and test, step the scheduler, keep the best validation epoch and
    count epochs without improvement. Returns ``(training loss, validation metric)``."""
    task = session.task
    started = time.perf_counter()
    # every rank must see the same loss: a NaN on one rank alone would stop it while the others wait in a collective
    loss = session.context.mean(task.train_epoch(session.wrapped, session.optimizer, config.grad_clip,
                                                 session.autocast))
    state["train_seconds"].append(time.perf_counter() - started)
    metrics = {split: task.evaluate(session.model, split) for split in ("val", "test")}
    value = metrics["val"][task.metric]
    _check_finite(config, state["epoch"], {"training loss": loss, f"validation {task.metric}": value,
                                           f"test {task.metric}": metrics["test"][task.metric]})
    selected = value if config.select_by == "metric" else metrics["val"]["loss"]
    if config.lr_schedule == "plateau":
        session.scheduler.step(selected)
    else:
        session.scheduler.step()
    if improves(selected, state["best_val"], _selection_higher_is_better(task, config)):
        state.update(best_val=selected, best_epoch=state["epoch"], bad_epochs=0,
                     best_metrics={**metrics, "train_loss": loss})
    else:
        state["bad_epochs"] += 1
    point = {"epoch": state["epoch"], "loss": loss, "val": value, "test": metrics["test"][task.metric],
             "lr": session.optimizer.param_groups[0]["lr"]}
    if task.reports_loss:
        point["val_loss"] = metrics["val"]["loss"]
    state["curve"].append(point)
    state["epoch"] += 1
    return loss, value


def _selection_higher_is_better(task: Task, config: RunConfig) -> bool:
    """Which way the value ``select_by`` reads improves: the benchmark's metric's way, or down for a loss."""
    return task.higher_is_better and config.select_by == "metric"


def save_checkpoint(session: Session, config: RunConfig, state: dict, checkpoint: Path) -> None:
    save_file({"key": config.key, "model": session.model.state_dict(),
               "optimizer": session.optimizer.state_dict(), "scheduler": session.scheduler.state_dict(),
               "task": session.task.state(), "rng": torch.get_rng_state(), "state": state}, checkpoint)


def to_result(session: Session, config: RunConfig, state: dict) -> RunResult:
    """The run's result: the metrics at the best validation epoch."""
    metric = session.task.metric
    seconds = state["train_seconds"]
    best = state["best_metrics"]
    return RunResult(
        key=config.key, dataset=config.dataset, model=config.model, seed=config.seed, fold=config.fold,
        config=config.to_json(), device=str(session.device), params=session.params, metric=metric,
        best_epoch=state["best_epoch"], epochs_run=state["epoch"],
        sec_per_epoch=float(np.mean(seconds)) if seconds else 0.0, val=float(best["val"][metric]),
        test=float(best["test"][metric]), metrics=best, curve=state["curve"], model_object=session.model,
        threads=torch.get_num_threads() if session.device.type == "cpu" else None)


def train_run(config: RunConfig, benchmark: Benchmark, checkpoint: Path | None = None, progress: bool = True,
              context: DistributedContext | None = None) -> RunResult:
    """Train ``config.model`` on ``benchmark`` (already at ``config.fold``) and return its result.

    With ``checkpoint``, state is saved there after every epoch and a run finding a checkpoint of the same config
    resumes from it (loaded with ``weights_only=True``); the caller removes it once the result is stored. Raises
    :class:`Diverged` when the loss or a metric is NaN or infinite.
    """
    context = context or DistributedContext()
    session = set_up(config, benchmark, context)
    state = resume(session, config, checkpoint)
    if not session.trainable:
        evaluate_once(session, state)
    bar = tqdm(total=config.epochs if session.trainable else 0, initial=state["epoch"], desc=config.label(),
               disable=not (progress and context.is_main), leave=False, unit="epoch", mininterval=1.0)
    while session.trainable and state["epoch"] < config.epochs and state["bad_epochs"] < config.patience:
        loss, value = train_epoch(session, config, state)
        bar.update(1)
        bar.set_postfix(loss=_postfix(loss), val=_postfix(value), best=_postfix(state["best_val"]))
        if checkpoint is not None and context.is_main:
            save_checkpoint(session, config, state, checkpoint)
    bar.close()
    return to_result(session, config, state)
