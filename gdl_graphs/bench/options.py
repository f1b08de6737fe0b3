"""Which ``model_options`` a model accepts and which ``dataset_options`` a dataset's loader accepts, read from the
signatures of the model's constructor and the loader, so that a suite is checked before anything trains.

Options that ``build_model`` / ``load_benchmark`` fill in themselves (sizes, the layer name, the task) are not
options a suite may set.
"""

from __future__ import annotations

import inspect
from inspect import Parameter

# filled in by gdl_graphs.models.registry.build_model from the benchmark
_BUILDER_ARGUMENTS = {"layer", "in_channels", "out_channels", "level", "edge_dim", "node_vocab", "edge_vocab",
                      "task", "num_nodes", "out_horizon", "edge_index", "edge_weight"}


def _keyword_options(function, skip: set[str]) -> set[str] | None:
    """Keyword parameters of ``function`` minus ``skip``; ``None`` when it takes ``**kwargs`` (anything goes)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind == Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY)
            and p.default is not Parameter.empty} - skip


def model_option_names(model: str) -> set[str] | None:
    """Options of registered model ``model`` (keyword arguments of its constructor, and ``hidden_channels``): the
    entry's own class where it builds one directly, else :class:`GraphNet` (entries with a hidden layer) or EGNN."""
    from gdl_graphs.models.registry import get_model

    entry = get_model(model)
    if entry.module is not None:
        constructor = entry.module
    elif entry.layer is not None:
        from gdl_graphs.models.graph_net import GraphNet

        constructor = GraphNet
    else:
        from gdl_graphs.nn.equivariant import EGNN

        constructor = EGNN
    accepted = _keyword_options(constructor, _BUILDER_ARGUMENTS)
    return None if accepted is None else accepted | {"hidden_channels"}


def dataset_option_names(dataset: str) -> set[str] | None:
    """Options of dataset ``dataset``'s loader (canonical name or ``tu:NAME``)."""
    if dataset.lower().startswith("tu:"):
        from gdl_graphs.data.social import load_tu

        return _keyword_options(load_tu, {"root", "name"})
    from gdl_graphs.data.registry import get_spec

    spec = get_spec(dataset)
    parameters = inspect.signature(spec._function()).parameters.values()
    if any(p.kind == Parameter.VAR_KEYWORD for p in parameters):
        return None
    return set(spec.options())


def dataset_option_default(dataset: str, name: str):
    """The default of option ``name`` of dataset ``dataset``'s loader; ``None`` when the loader has no such option."""
    if dataset.lower().startswith("tu:"):
        from gdl_graphs.data.social import load_tu as function
    else:
        from gdl_graphs.data.registry import get_spec

        spec = get_spec(dataset)
        if name in spec.kwargs:
            return spec.kwargs[name]
        function = spec._function()
    parameter = inspect.signature(function).parameters.get(name)
    return None if parameter is None or parameter.default is Parameter.empty else parameter.default


def unknown_names(given, accepted: set[str] | None) -> list[str]:
    """Names in ``given`` that are not in ``accepted`` (none when ``accepted`` is ``None``)."""
    return [] if accepted is None else sorted(set(given) - accepted)
