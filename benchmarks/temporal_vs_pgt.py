"""Our DCRNN and STGCN against PyTorch Geometric Temporal's on Montevideo bus: time per epoch and test MSE.

    export GDL_DATA=$PWD/datasets PYTHONPATH=/work/pgt_pkgs:$PWD   # PGT installed with --no-deps: docs/traffic.md
    python benchmarks/temporal_vs_pgt.py --epochs 4                   # both models, 1 thread
    python benchmarks/temporal_vs_pgt.py --epochs 4 --self-loops --markdown PAGE.md
    python benchmarks/temporal_vs_pgt.py --models stgcn --epochs 8 --seeds 0,1,2    # test MSE as mean ± std
    python benchmarks/temporal_vs_pgt.py --ours-only --epochs 1 --limit-windows 8     # without PGT installed

What is compared, per architecture (``--models dcrnn,stgcn``):

- ours: ``gdl_graphs.models.temporal.DCRNN`` / ``STGCN``, built by the model registry with the settings of the
  MontevideoBus experiments of ``benchmarks/traffic.yaml`` (``--suite``): DCRNN 1 layer x 64 units, K = 1 diffusion
  hop; STGCN channels (64, 16, 64), Chebyshev order 3, temporal kernel 3, 2 blocks;
- PGT: ``torch_geometric_temporal.nn.recurrent.DCRNN`` / ``torch_geometric_temporal.nn.attention.STConv``, wrapped
  into the same forecaster (below) with the same sizes read from our built model.

Both train on the same data: the harness's Montevideo windows (12 h in, 12 h out; 505 / 72 / 144 train / val / test
windows, ``--limit-windows`` keeps the first n of each split), the same scaler, batch size, shuffling order (the
task's generator, seeded alike), loss (masked MAE of the inverse-scaled forecast), Adam with the suite's lr and
weight decay, gradient clipping and, for DCRNN, scheduled sampling: each side's loop is a
:class:`gdl_graphs.bench.tasks.Forecasting` task, the harness's own. Epochs are interleaved in one process (ours
first on even epochs, PGT first on odd ones) so that both see the same machine state. The learning-rate schedule of
the harness (ReduceLROnPlateau, patience 10) would not act within a few epochs and is left out. Reported: the median
over epochs of each side's training-epoch wall time (training only; evaluation untimed), their ratio PGT / ours (> 1:
ours faster), and the test MSE (the harness's masked MSE in passenger counts) at each side's best validation-MSE
epoch, the harness's model selection. ``--seeds 0,1,2`` repeats the whole comparison per seed (initialisation and
shuffling order): times are then medians over every epoch of every seed, the test MSE the mean ± std over seeds.
STGCN gets a third side, ours built with PGT's channel widths (below), so
that one ratio compares the same architecture. CPU, float32 on both sides; ``--threads`` intra-op threads (default 1).

How the PGT modules map to the papers:

- DCRNN (Li et al., 2018) is a sequence-to-sequence encoder-decoder of diffusion-convolutional GRU cells. PGT ships
  the cell only (``DCRNN(in, out, K)`` maps one snapshot ``X [N, F]`` and a state ``H [N, C]`` to the next state), so
  :class:`PGTDCRNN` builds the encoder-decoder from PGT cells exactly as ours does: ``num_layers`` encoder cells run
  over the 12 input steps from zero states, ``num_layers`` decoder cells (own parameters) start from the encoder
  states and a zero "GO" input, the same output head (a ``Linear(hidden, 1)``) gives each step's forecast, which is
  fed back as the next decoder input (or, with the scheduled-sampling probability drawn once per decoder step for
  the whole batch, the ground truth, as ours). The cell takes one graph, so the wrapper loops over the windows of a
  batch as well as over time. PGT's filter size K counts the identity term: our K hops = PGT ``K = hops + 1`` (at
  one hop both compute X, P_f X, P_b X; for two or more hops PGT uses the recursion 2 P X_{k-1} - X_{k-2}, ours
  plain powers). PGT builds its normalisation from a dense adjacency on every call, as shipped.
  **PGT's DConv divides by the in-degree of every edge's source node**: on Montevideo, 9 stops have out-links but no
  in-links, so with K >= 2 its output is NaN (its test MSE is reported as nan, training time is still measured).
  ``--self-loops`` gives both sides the same graph with a self-loop of the mean edge weight on every stop, which
  PGT's DCRNN can run on. STGCN is unaffected by the flag: our scaled Laplacian and PyG's ChebConv (inside PGT) both
  drop self-loops.
- STGCN (Yu et al., 2018): PGT's ``STConv`` is one ST-Conv block (temporal conv -> ChebConv -> ReLU -> temporal conv
  -> BatchNorm over nodes). :class:`PGTSTGCN` stacks ``num_blocks`` of them and adds the output layer PGT lacks,
  built from our modules, the same as ours (temporal GLU over the remaining steps, LayerNorm, sigmoid gate, linear
  map to the 12 steps). Mismatches, printed in the output: PGT's block has one hidden width for its first temporal
  conv and the Chebyshev conv, so ours (64, 16, 64) is PGT (16, 16, 64); PGT's temporal conv is ReLU(P * sigmoid(Q)
  + conv(X)), ours (P + X) * sigmoid(Q); PGT normalises with BatchNorm over the nodes, ours with BatchNorm over
  channels; PyG's ChebConv (inside PGT) assumes lambda_max = 2, ours uses the exact one. Both get the same
  symmetrised graph (ours symmetrises internally; PGT is given
  :func:`~gdl_graphs.models.temporal.stgcn.symmetrised_adjacency`).

PGT is imported without its package ``__init__``: ``import torch_geometric_temporal`` imports every module, one of
which (``nn/recurrent/evolvegcno.py``) needs ``torch_sparse``, not installable here. The two files compared
(``nn/recurrent/dcrnn.py``, ``nn/attention/stgcn.py``) import only torch and torch_geometric, so they are loaded by
file path, unmodified (:func:`load_pgt`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch_geometric
from torch import Tensor, nn
from torch.utils.data import Subset
from torch_geometric.nn import Linear
from torch_geometric.utils import add_remaining_self_loops

if not __package__:  # run as a script (python benchmarks/x.py): make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from gdl_graphs.bench.suite import load_suite
from gdl_graphs.bench.tasks import Forecasting, improves
from gdl_graphs.bench.training import seed_everything
from gdl_graphs.data import load_benchmark
from gdl_graphs.models.registry import build_model, count_parameters, get_model
from gdl_graphs.models.temporal import TemporalGatedConv
from gdl_graphs.models.temporal.stgcn import symmetrised_adjacency

DATASET = "MontevideoBus"
MODELS = ("dcrnn", "stgcn")
DEFAULT_SUITE = Path(__file__).resolve().parent / "traffic.yaml"
PGT_FILES = {"dcrnn": "nn/recurrent/dcrnn.py", "stgcn": "nn/attention/stgcn.py"}


class PGTUnavailable(RuntimeError):
    """PyTorch Geometric Temporal is not installed, or the modules compared cannot be loaded."""


def load_pgt() -> tuple[dict, str]:
    """PGT's ``DCRNN`` and ``STConv`` classes (``{"dcrnn": DCRNN, "stgcn": STConv}``) and PGT's version.

    The modules are loaded from their files under private names (registered in ``sys.modules``, which PyG's
    ``MessagePassing`` inspects), without running ``torch_geometric_temporal/__init__.py`` (see the module
    docstring).
    """
    spec = importlib.util.find_spec("torch_geometric_temporal")
    if spec is None or not spec.submodule_search_locations:
        raise PGTUnavailable("torch_geometric_temporal is not importable; install it with "
                             "`pip install --no-deps --target DIR torch-geometric-temporal` and put DIR on "
                             "PYTHONPATH (docs/traffic.md)")
    root = Path(list(spec.submodule_search_locations)[0])
    classes = {}
    for model, relative in PGT_FILES.items():
        name = f"_pgt_{model}"
        if name not in sys.modules:
            file_spec = importlib.util.spec_from_file_location(name, root / relative)
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[name] = module
            try:
                file_spec.loader.exec_module(module)
            except Exception as error:
                del sys.modules[name]
                raise PGTUnavailable(f"torch_geometric_temporal/{relative}: {type(error).__name__}: {error}") \
                    from error
        classes[model] = getattr(sys.modules[name], "DCRNN" if model == "dcrnn" else "STConv")
    try:
        version = importlib.metadata.version("torch-geometric-temporal")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return classes, version


class PGTDCRNN(nn.Module):
    """DCRNN encoder-decoder built from PGT's ``DCRNN`` cells, mirroring :class:`gdl_graphs.models.temporal.DCRNN`
    (see the module docstring). ``K`` is our hop count; the cells get ``K + 1``.

    Shapes:
        x ``[B, T_in, N, F]``, y ``[B, T_out, N]`` (optional) -> ``[B, T_out, N]``.
    """

    def __init__(self, cell, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                 edge_weight: Tensor, *, hidden_channels: int, num_layers: int, K: int):
        super().__init__()
        self.num_nodes, self.out_horizon, self.hidden_channels = num_nodes, out_horizon, hidden_channels
        self.encoder = nn.ModuleList(cell(in_channels if i == 0 else hidden_channels, hidden_channels, K + 1)
                                     for i in range(num_layers))
        self.decoder = nn.ModuleList(cell(1 if i == 0 else hidden_channels, hidden_channels, K + 1)
                                     for i in range(num_layers))
        self.head = Linear(hidden_channels, 1, weight_initializer="glorot", bias_initializer="zeros")
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("edge_weight", edge_weight, persistent=False)

    def _step(self, cells: nn.ModuleList, inp: Tensor, states: list) -> Tensor:
        for i, cell in enumerate(cells):
            states[i] = inp = cell(inp, self.edge_index, self.edge_weight, states[i])
        return inp

    def forward(self, x: Tensor, y: Tensor | None = None, teacher_forcing_ratio: float = 0.0) -> Tensor:
        teacher = self.training and teacher_forcing_ratio > 0.0
        if teacher and y is None:
            raise ValueError("teacher_forcing_ratio > 0 needs the targets y [batch, out_horizon, num_nodes]")
        # one draw per decoder step for the whole batch, as ours
        truth = [teacher and float(torch.rand(())) < teacher_forcing_ratio for _ in range(self.out_horizon)]
        forecasts = []
        for b in range(x.size(0)):  # PGT's cell takes one graph snapshot [N, F]
            states = [None] * len(self.encoder)  # PGT starts a None state at zeros
            for t in range(x.size(1)):
                self._step(self.encoder, x[b, t], states)
            inp, steps = x.new_zeros(self.num_nodes, 1), []
            for t in range(self.out_horizon):
                out = self.head(self._step(self.decoder, inp, states))
                steps.append(out)
                inp = y[b, t].unsqueeze(-1) if truth[t] else out
            forecasts.append(torch.cat(steps, dim=-1).T)
        return torch.stack(forecasts)


class PGTSTGCN(nn.Module):
    """``num_blocks`` PGT ``STConv`` blocks and our STGCN's output layer (see the module docstring).

    Shapes:
        x ``[B, T_in, N, F]`` -> ``[B, T_out, N]``.
    """

    def __init__(self, block, num_nodes: int, in_channels: int, out_horizon: int, edge_index: Tensor,
                 edge_weight: Tensor, *, in_steps: int, hidden_channels: int, out_channels: int, num_blocks: int,
                 kernel_size: int, K: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            block(num_nodes, in_channels if i == 0 else out_channels, hidden_channels, out_channels, kernel_size, K)
            for i in range(num_blocks))
        remaining = in_steps - 2 * num_blocks * (kernel_size - 1)
        self.output_temporal = TemporalGatedConv(out_channels, out_channels, remaining)
        self.output_norm = nn.LayerNorm(out_channels)
        self.output_gate = Linear(out_channels, out_channels, weight_initializer="glorot", bias_initializer="zeros")
        self.output_head = Linear(out_channels, out_horizon, weight_initializer="glorot", bias_initializer="zeros")
        edge_index, edge_weight = symmetrised_adjacency(edge_index, edge_weight, num_nodes)
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("edge_weight", edge_weight, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, self.edge_index, self.edge_weight)
        x = self.output_norm(self.output_temporal(x))
        x = self.output_head(torch.sigmoid(self.output_gate(x)))
        return x[:, -1].transpose(1, 2)


def stgcn_channels(model: nn.Module) -> tuple[int, int, int]:
    """(temporal, spatial, temporal) channels of an STGCN's first block."""
    first = model.blocks[0]
    return first.temporal1.out_channels, first.spatial.out_channels, first.temporal2.out_channels


def pgt_widths(channels: tuple[int, int, int]) -> tuple[int, int, int]:
    """The channels PGT's ``STConv`` can express closest to ``channels``: one hidden width for its first temporal
    conv and its ChebConv."""
    return channels[1], channels[1], channels[2]


def build_pgt(model: str, ours: nn.Module, cls, benchmark) -> tuple[nn.Module, list[str]]:
    """PGT's counterpart of ``ours`` with its sizes, and the differences in settings to print."""
    spec = benchmark.forecast
    common = (spec.num_nodes, benchmark.num_features, spec.horizon, spec.edge_index, spec.edge_weight)
    if model == "dcrnn":
        pgt = PGTDCRNN(cls, *common, hidden_channels=ours.hidden_channels, num_layers=ours.num_layers, K=ours.K)
        notes = [f"DCRNN: {ours.num_layers} layer(s) x {ours.hidden_channels} units both; our K = {ours.K} hop(s) "
                 f"= PGT K = {ours.K + 1} (PGT counts the identity term); PGT's DConv keeps one identity-term "
                 f"weight per direction, hence more parameters at the same width"]
        return pgt, notes
    first = ours.blocks[0]
    channels = stgcn_channels(ours)
    kernel_size, cheb_k = first.temporal1.kernel_size, first.spatial.K
    pgt = PGTSTGCN(cls, *common, in_steps=ours.in_steps, hidden_channels=channels[1], out_channels=channels[2],
                   num_blocks=len(ours.blocks), kernel_size=kernel_size, K=cheb_k)
    notes = [f"STGCN: {len(ours.blocks)} blocks, temporal kernel {kernel_size}, Chebyshev K = {cheb_k} both; "
             f"channels ours {channels}, PGT {pgt_widths(channels)} (one width for PGT's first temporal conv and "
             f"ChebConv; the row 'ours at PGT's widths' is ours with PGT's channels); PGT BatchNorm over nodes vs "
             f"our BatchNorm over channels; PGT's ChebConv lambda_max = 2 vs ours exact; same output layer (our "
             f"modules) on both"]
    return pgt, notes


def suite_configs(path: Path) -> dict:
    """The first (seed 0) MontevideoBus run of each compared model in the suite file."""
    _, runs = load_suite(path)
    configs = {}
    for run in runs:
        if run.dataset == DATASET and run.model in MODELS and run.model not in configs:
            configs[run.model] = run
    missing = [m for m in MODELS if m not in configs]
    if missing:
        raise SystemExit(f"{path}: no {DATASET} experiment for {', '.join(missing)}")
    return configs


def with_self_loops(benchmark):
    """The benchmark with a self-loop of the mean edge weight added on every node without one."""
    spec = benchmark.forecast
    weight = float(spec.edge_weight.mean())
    edge_index, edge_weight = add_remaining_self_loops(spec.edge_index, spec.edge_weight, fill_value=weight,
                                                       num_nodes=spec.num_nodes)
    return dataclasses.replace(benchmark, forecast=dataclasses.replace(spec, edge_index=edge_index,
                                                                       edge_weight=edge_weight))


def limited(benchmark, windows: int | None):
    """The benchmark with the first ``windows`` windows of each split (all when ``None``)."""
    if windows is None:
        return benchmark
    return dataclasses.replace(benchmark, **{name: Subset(split, range(min(windows, len(split))))
                                             for name, split in (("train", benchmark.train), ("val", benchmark.val),
                                                                 ("test", benchmark.test))})


@dataclasses.dataclass
class Side:
    """One implementation under training: its model, task loop, optimiser and per-epoch record."""

    label: str
    model: nn.Module
    task: Forecasting
    optimizer: torch.optim.Optimizer
    peer: bool = False  # PGT's side, the one the others are timed against
    seconds: list = dataclasses.field(default_factory=list)
    best_val: float | None = None
    best_epoch: int = -1
    test_mse: float = math.nan

    def epoch(self, grad_clip: float | None, device: torch.device) -> float:
        """Train one epoch (timed), then evaluate validation and test (untimed); returns the epoch's seconds."""
        _sync(device)
        started = time.perf_counter()
        self.task.train_epoch(self.model, self.optimizer, grad_clip, contextlib.nullcontext)
        _sync(device)
        seconds = time.perf_counter() - started
        self.seconds.append(seconds)
        val = self.task.evaluate(self.model, "val")["mse"]
        if improves(val, self.best_val, higher_is_better=False):  # validation MSE: lower is better
            self.best_val, self.best_epoch = val, len(self.seconds) - 1
            self.test_mse = self.task.evaluate(self.model, "test")["mse"]
        return seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_side(label: str, model: nn.Module, config, benchmark, device: torch.device, peer: bool = False) -> Side:
    model = model.to(device)
    task = Forecasting(benchmark, batch_size=config.batch_size, device=device, seed=config.seed,
                       entry=get_model(config.model))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return Side(label, model, task, optimizer, peer)


def compare(model: str, config, benchmark, pgt_classes: dict | None, epochs: int, device: torch.device,
            log) -> tuple[list[Side], list[str], bool]:
    """Train ours (and PGT's, unless ``pgt_classes`` is ``None``) for ``epochs`` interleaved epochs; returns the
    sides, notes, and whether every epoch was trained (not interrupted)."""
    seed_everything(config.seed)
    options = dict(config.model_options)
    hidden = options.pop("hidden_channels", config.hidden_channels)
    ours = build_model(model, benchmark, budget=config.budget, hidden_channels=hidden, **options)
    sides, notes = [make_side("ours", ours, config, benchmark, device)], []
    widths = pgt_widths(stgcn_channels(ours)) if model == "stgcn" else None
    if widths is not None and widths != stgcn_channels(ours):
        seed_everything(config.seed)
        same = build_model(model, benchmark, budget=config.budget, hidden_channels=hidden,
                           **{**options, "channels": widths})
        sides.append(make_side("ours at PGT's widths", same, config, benchmark, device))
    if pgt_classes is not None:
        seed_everything(config.seed)
        pgt, notes = build_pgt(model, ours, pgt_classes[model], benchmark)
        sides.append(make_side("PGT", pgt, config, benchmark, device, peer=True))
    try:
        for epoch in range(epochs):
            order = sides if epoch % 2 == 0 else sides[::-1]
            times = {side.label: side.epoch(config.grad_clip, device) for side in order}
            log(f"{model} epoch {epoch + 1}/{epochs}: " +
                ", ".join(f"{label} {seconds:.2f} s" for label, seconds in times.items()))
    except KeyboardInterrupt:  # report the epochs completed so far
        notes.append(f"{model} seed {config.seed}: interrupted during epoch {epoch + 1}; rows cover the epochs "
                     "completed by each side")
        return sides, notes, False
    return sides, notes, True


def table(results: dict) -> list[str]:
    """Markdown rows: one per (architecture, implementation), over the seeds of ``results[model]`` (a list, per
    seed, of the sides trained); "PGT / this" is PGT's median epoch time over the row's (> 1: the row is faster than
    PGT), medians taken over every epoch of every seed; the test MSE is the mean ± std over seeds."""
    rows = ["| model | implementation | parameters | epochs x seeds | s / epoch (median) | PGT / this | test MSE "
            "(best val epoch) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for model, per_seed in results.items():
        labels = [side.label for side in per_seed[0]]
        runs = {label: [side for sides in per_seed for side in sides if side.label == label] for label in labels}
        median = {label: statistics.median(t) if (t := [s for side in sides for s in side.seconds]) else math.nan
                  for label, sides in runs.items()}
        peer = next((label for label in labels if runs[label][0].peer), None)
        for label, sides in runs.items():
            ratio = "" if label == peer or peer is None else f"{median[peer] / median[label]:.2f}x"
            mse = [side.test_mse for side in sides]
            spread = f" ± {statistics.stdev(mse):.2g}" if len(mse) > 1 else ""
            epochs = "/".join(str(side.best_epoch + 1) if side.best_epoch >= 0 else "-" for side in sides)
            rows.append(f"| {model} | {label} | {count_parameters(sides[0].model):,} | "
                        f"{len(sides[0].seconds)} x {len(sides)} | {median[label]:.3f} | {ratio} | "
                        f"{statistics.fmean(mse):.4g}{spread} (epoch {epochs}) |")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per implementation (default: 4)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated training seeds, each a full comparison (default: 0); the test MSE is "
                             "reported as mean ± std over them")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of dcrnn,stgcn")
    parser.add_argument("--limit-windows", type=int, default=None,
                        help="keep the first N windows of each split (quick checks)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE,
                        help="suite file whose MontevideoBus settings are used (default: benchmarks/traffic.yaml)")
    parser.add_argument("--self-loops", action="store_true",
                        help="add a self-loop of the mean edge weight on every stop, on both sides (PGT's DCRNN "
                             "is NaN on the raw graph)")
    parser.add_argument("--ours-only", action="store_true", help="train ours only (no PGT needed)")
    parser.add_argument("--data-root", default=None,
                        help="data root holding traffic/MontevideoBus (default: $GDL_DATA)")
    parser.add_argument("--markdown", type=Path, default=None, help="append the table to this markdown file")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f"--seeds: expected distinct non-negative seeds, got {args.seeds}")
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"--models: expected a subset of {','.join(MODELS)}, got {unknown or 'nothing'}")
    for name in ("epochs", "threads", "limit_windows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        pgt_classes, pgt_version = (None, None) if args.ours_only else load_pgt()
    except PGTUnavailable as error:
        print(f"{error} (or run with --ours-only)", file=sys.stderr)
        return 2
    configs = suite_configs(args.suite)
    results, notes = {}, []
    loaded = {}
    for model in args.models:
        config = configs[model]
        key = repr(sorted(config.dataset_options.items()))
        if key not in loaded:
            benchmark = load_benchmark(DATASET, args.data_root, **config.dataset_options)
            if args.self_loops:
                benchmark = with_self_loops(benchmark)
            loaded[key] = limited(benchmark, args.limit_windows)
        benchmark = loaded[key]
        notes.append(f"{model}: {config.dataset_options}, batch {config.batch_size}, Adam lr {config.lr}, weight "
                     f"decay {config.weight_decay}, grad clip {config.grad_clip}, {args.epochs} epoch(s), windows "
                     f"{'/'.join(str(len(s)) for s in (benchmark.train, benchmark.val, benchmark.test))}")
        results[model] = []
        for seed in args.seeds:
            sides, model_notes, completed = compare(
                model, dataclasses.replace(config, seed=seed), benchmark, pgt_classes, args.epochs, device,
                lambda message: print(f"seed {seed}: {message}", file=sys.stderr, flush=True))
            results[model].append(sides)
            notes.extend(note for note in model_notes if note not in notes)
            if not completed:
                break
        if not completed:
            break
        for side in (side for sides in results[model] for side in sides):
            if not math.isfinite(side.test_mse):
                notes.append(f"{model} {side.label} seed {side.task.seed}: test MSE is not finite"
                             + (" (PGT's DConv divides by zero in-degrees; try --self-loops)"
                                if model == "dcrnn" and side.label == "PGT" else ""))
    command = "python benchmarks/temporal_vs_pgt.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = describe(device)
    versions = (f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, "
                f"torch_geometric_temporal {pgt_version or '(not used)'}, python {platform.python_version()}")
    graph = "graph with a self-loop on every stop (--self-loops)" if args.self_loops else "graph as loaded"
    lines = [f"{DATASET}, {graph}; {machine}; {versions}", f"command: `{command.strip()}`", "", *table(results), "",
             *[f"- {note}" for note in notes]]
    print("\n".join(lines))
    if args.markdown is not None:
        with args.markdown.open("a") as f:
            f.write(f"\n### {DATASET}: ours vs PyTorch Geometric Temporal, {machine}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
