"""The one model registry: every model by name, with what it needs and supports, and how it is built for a
:class:`~gdl_graphs.data.Benchmark`.

Each :class:`ModelEntry` declares the task kinds it trains on, the inputs it needs (``pos``) or uses (node and edge
features), its calling convention (:class:`LayerSpec` for the hidden layer of a :class:`GraphNet`), declared training
behaviour (teacher forcing, a baseline fitted on the training series, auxiliary losses) and paper recipes as data
(:class:`Recipe`). Config validation (:func:`compatible` / :func:`incompatibility`), ``gdl-bench list``,
``gdl-bench verify`` and the harness read from it. The entries themselves are in :mod:`gdl_graphs.models.catalog`.

``build_model(name, benchmark, budget=100_000)`` picks the widest hidden size whose model stays within the budget
(as benchmarking-gnns does with its 100k / 500k budgets), so architectures are compared at equal size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor, nn

from gdl_graphs.data.benchmark import TASKS, Benchmark


@dataclass(frozen=True)
class LayerSpec:
    """How a :class:`~gdl_graphs.models.GraphNet` builds one layer and calls it.

    The calling convention is ``layer(h, [edge_index], [batch], [edge_attr=e])``, each part declared here once.

    Attributes:
        build: ``build(channels, **extra) -> module``, a layer of the hidden width ``channels``; ``extra`` holds
            ``heads`` when :attr:`heads` is set and ``deg`` when :attr:`needs_degree` is set, nothing else.
        sized: ``sized(in_channels, out_channels, **extra, **layer_options) -> module``, used instead of
            :attr:`build` when given: a layer whose widths may differ from the hidden width (a model without an
            encoder or a head, as Kipf & Welling's GCN) and that takes the model's ``layer_options``.
        takes_edge_index: called with ``edge_index`` (not for attention over each whole graph).
        takes_batch: called with ``batch`` (attention within each graph).
        takes_edge_attr: called with ``edge_attr=e``, edge features of width ``channels`` (may return ``(h, e)``).
        whole_block: brings its own residual and norm (the block adds neither).
        heads: takes ``heads``, which must divide the width.
        needs_degree: takes ``deg``, the in-degree histogram of the training graphs (PNA).
        passes_messages: ``False`` for a model with no layer at all (the structure-agnostic baseline: readout of
            the node features, then the head); it is built with ``num_layers=0``.
    """

    build: Callable[..., nn.Module] | None = None
    sized: Callable[..., nn.Module] | None = None
    takes_edge_index: bool = True
    takes_batch: bool = False
    takes_edge_attr: bool = False
    whole_block: bool = False
    heads: bool = False
    needs_degree: bool = False
    passes_messages: bool = True

    def make(self, in_channels: int, out_channels: int, heads: int, deg: Tensor | None, **options) -> nn.Module:
        """The layer from ``in_channels`` to ``out_channels`` with the model's ``layer_options``."""
        extra = {}
        if self.heads:
            extra["heads"] = heads
        if self.needs_degree:
            if deg is None:
                raise ValueError("this layer needs the in-degree histogram of the training graphs (deg)")
            extra["deg"] = deg
        if self.sized is not None:
            return self.sized(in_channels, out_channels, **extra, **options)
        if in_channels != out_channels or options:
            raise ValueError("this layer is built at the hidden width only (its LayerSpec has no `sized`): it takes "
                             "no layer_options and needs the encoder and a head")
        return self.build(in_channels, **extra)

    def call(self, layer: nn.Module, h: Tensor, edge_index: Tensor, edge_attr: Tensor | None, batch: Tensor):
        args = [h] + ([edge_index] if self.takes_edge_index else []) + ([batch] if self.takes_batch else [])
        return layer(*args, **({"edge_attr": edge_attr} if self.takes_edge_attr else {}))


@dataclass(frozen=True)
class Recipe:
    """A paper's exact settings for one model on one dataset, as data (the fair-budget default is the entry).

    Attributes:
        name: unique among all recipes; the bench's recipes are called ``MODEL@PAPER`` (``"gcn@kipf2017"``) and a
            suite or the command line selects them by that name like a model (:func:`find_recipe`).
        source: the paper or code it reproduces (and the table its settings come from).
        dataset: the dataset(s) it was published on.
        settings: :class:`~gdl_graphs.bench.RunConfig` fields (``epochs``, ``lr``, ``batch_size``, ``budget`` ...);
            they sit between a suite's ``defaults`` and an experiment's own keys.
        model_options: constructor options of the model (``num_layers``, ``readout``, ``head`` ...).
        published: the published numbers it should reproduce (metric -> value).
        differences: what it does not reproduce of the paper, and why.
    """

    name: str
    source: str
    dataset: str
    settings: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    differences: str = ""


Builder = Callable[["ModelEntry", Benchmark, dict], Callable[[int], nn.Module]]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: the name used in suites and on the command line.
        family: ``graph`` / ``geometric`` / ``hierarchical`` / ``temporal`` (for listings).
        summary: one line for listings.
        tasks: the task kinds (:data:`~gdl_graphs.data.TASKS`) it trains on.
        build: ``build(entry, benchmark, options) -> make(width)`` returning a module of that width.
        layer: the hidden layer and its calling convention (models built on :class:`GraphNet`).
        module: the model class where the entry builds one class directly (temporal models).
        needs_pos: needs node coordinates ``pos`` in the data.
        uses_node_features, uses_edge_features: reads ``x`` / ``edge_attr`` where the dataset has them.
        sized_by_budget: its width is set by the parameter budget (temporal models keep their published sizes).
        width_option: the constructor option a fixed ``hidden_channels`` goes to when not sized by budget.
        takes_input_len: its constructor needs the input window length (``in_steps``).
        teacher_forcing: ``forward(x, y, teacher_forcing_ratio=)`` takes the targets (scheduled sampling).
        fits_training_series: a baseline fitted once on the training series (``fit``) before evaluation.
        aux_losses: names of auxiliary losses its ``auxiliary_loss()`` returns, added to the task loss.
        recipes: paper recipes (:class:`Recipe`).
    """

    name: str
    family: str
    summary: str
    tasks: frozenset[str]
    build: Builder
    layer: LayerSpec | None = None
    module: type[nn.Module] | None = None
    needs_pos: bool = False
    uses_node_features: bool = True
    uses_edge_features: bool = False
    sized_by_budget: bool = True
    width_option: str | None = None
    takes_input_len: bool = False
    teacher_forcing: bool = False
    fits_training_series: bool = False
    aux_losses: tuple[str, ...] = ()
    recipes: tuple[Recipe, ...] = ()

    def __post_init__(self):
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"model {self.name!r}: unknown task kinds {sorted(unknown)} (known: {TASKS})")
        names = [recipe.name for recipe in self.recipes]
        if len(names) != len(set(names)):
            raise ValueError(f"model {self.name!r}: recipe names must be unique, got {names}")

    def recipe(self, name: str) -> Recipe:
        """The recipe called ``name``."""
        for recipe in self.recipes:
            if recipe.name == name:
                return recipe
        raise KeyError(f"model {self.name!r} has no recipe {name!r}; recipes: {[r.name for r in self.recipes]}")

    def needs(self) -> list[str]:
        """What the model requires of a dataset, for listings."""
        return ["pos"] if self.needs_pos else []


MODELS: dict[str, ModelEntry] = {}
"""Registered models by name, filled by :mod:`gdl_graphs.models.catalog`."""


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to :data:`MODELS` (names are unique)."""
    if entry.name in MODELS:
        raise ValueError(f"a model called {entry.name!r} is already registered")
    MODELS[entry.name] = entry
    return entry


def find_recipe(name: str) -> tuple[ModelEntry, Recipe] | None:
    """``(entry, recipe)`` of the recipe called ``name`` (``"gcn@kipf2017"``), or ``None`` when no recipe is."""
    for entry in MODELS.values():
        for recipe in entry.recipes:
            if recipe.name == name:
                return entry, recipe
    return None


def get_model(name: str) -> ModelEntry:
    """The registered model called ``name``, or the model a recipe called ``name`` configures; an unknown name
    lists the registered models and recipes."""
    if name in MODELS:
        return MODELS[name]
    found = find_recipe(name)
    if found is None:
        recipes = [recipe.name for entry in MODELS.values() for recipe in entry.recipes]
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}; recipes: {', '.join(recipes)}")
    return found[0]


def list_models(family: str | None = None) -> list[ModelEntry]:
    """Registered models, optionally of one family."""
    return [e for e in MODELS.values() if family is None or e.family == family]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parse_budget(budget) -> int | None:
    """``100000``, ``"100k"``, ``"0.5M"`` or ``None`` -> a parameter count (or ``None``)."""
    if budget is None or isinstance(budget, int):
        return budget
    text = str(budget).strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise ValueError(f"budget must be a parameter count like 100000, '100k' or '0.5M', got {budget!r}") from None
    if value < 1:
        raise ValueError(f"budget must be positive, got {budget!r}")
    return int(value)


def incompatibility(name: str, task: str, provides: frozenset[str] | set[str] = frozenset(),
                    dataset: str = "the dataset") -> str | None:
    """Why model ``name`` cannot train on a dataset of kind ``task`` that provides the node attributes ``provides``
    (e.g. ``{"pos"}``), or ``None`` when it can."""
    entry = get_model(name)
    if task not in entry.tasks:
        return (f"{name!r} ({entry.family}) cannot train on {dataset} ({task}); it trains on "
                f"{', '.join(sorted(entry.tasks))}")
    if entry.needs_pos and "pos" not in provides:
        return (f"{name!r} needs node coordinates (pos), which {dataset} ({task}) does not provide; use a dataset "
                f"with 3D positions (QM9, NBody) or a graph model")
    return None


def compatible(name: str, task: str, provides: frozenset[str] | set[str] | None = None) -> bool:
    """Whether model ``name`` can be trained on a task kind (and, when ``provides`` is given, on a dataset
    providing those node attributes)."""
    if provides is None:
        return task in get_model(name).tasks
    return incompatibility(name, task, provides) is None


def build_model(name: str, benchmark: Benchmark, budget=None, hidden_channels: int | None = None,
                **options) -> nn.Module:
    """Build model ``name`` for ``benchmark``.

    Args:
        name: a key of :data:`MODELS`, or a recipe's name (:func:`find_recipe`), whose model options ``options``
            override.
        benchmark: the dataset bundle (its task and dimensions decide the input encoder and the head).
        budget: parameter budget; the hidden width is the largest (multiple of 8) that fits. Ignored by models not
            sized by budget (temporal models keep their published sizes unless ``options`` say otherwise).
        hidden_channels: a fixed width instead of a budget.
        options: passed to the model's constructor (``num_layers``, ``dropout``, ``readout``, ``virtual_node``...).
    """
    entry = get_model(name)
    found = find_recipe(name)
    if found is not None:
        options = {**found[1].model_options, **options}
    if benchmark.task not in entry.tasks:
        raise ValueError(f"model {name!r} ({entry.family}) cannot be trained on {benchmark.name} "
                         f"({benchmark.task})")
    budget = parse_budget(budget)
    if not entry.sized_by_budget:
        if hidden_channels is not None and entry.width_option is not None:
            options.setdefault(entry.width_option, hidden_channels)
        return entry.build(entry, benchmark, options)(None)
    make = entry.build(entry, benchmark, options)
    if hidden_channels is not None:
        return make(hidden_channels)
    if budget is None:
        return make(64)
    return make(width_for_budget(make, budget))


def width_for_budget(make, budget: int, step: int = 8) -> int:
    """Largest width (a multiple of ``step``) with ``count_parameters(make(width)) <= budget``."""
    low, high = step, step
    if count_parameters(make(low)) > budget:
        raise ValueError(f"budget {budget} is below the smallest model ({count_parameters(make(low))} parameters "
                         f"at width {low})")
    while count_parameters(make(high)) <= budget:
        low, high = high, high * 2
    while high - low > step:
        middle = (low + high) // 2 // step * step
        low, high = (middle, high) if count_parameters(make(middle)) <= budget else (low, middle)
    return low
