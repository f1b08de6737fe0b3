"""Dataset registry: canonical names (as PyG / OGB spell them) -> loaders; :func:`load_benchmark` is the one entry
point. Loaders are imported lazily, so listing datasets is cheap and optional modules (QM9, N-body) may be absent."""

from __future__ import annotations

import importlib
import inspect
import os
from inspect import Parameter
from dataclasses import dataclass, field

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.build_lock import building
from gdl_graphs.data.root import check_dataset_name, data_root


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    Attributes:
        name: canonical spelling (``"IMDB-BINARY"``, ``"molhiv"``).
        family: ``molecules`` / ``social`` / ``traffic`` / ``synthetic``.
        task, metric: as in :class:`~gdl_graphs.data.benchmark.Benchmark`.
        loader: ``"module:function"`` called as ``function(root, **kwargs, **options)``.
        dirs: folders under the data root that hold its raw files (what ``data prepare --from`` copies).
        summary: one line for listings.
        kwargs: fixed keyword arguments for the loader (e.g. the PyG dataset name).
        aliases: other accepted spellings.
        required: raw files (relative to the root) the loader cannot do without, where only part of a folder may be
            staged (the traffic series).
        provided: for datasets without raw files, where they come from (shown by ``data list``).
        node_attributes: what its graphs carry beyond ``x`` and ``edge_attr`` that a model may need (``pos``,
            ``vel``); checked against a model's needs before any run.
    """

    name: str
    family: str
    task: str
    metric: str
    loader: str
    dirs: tuple[str, ...]
    summary: str
    kwargs: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    provided: str = ""
    node_attributes: tuple[str, ...] = ()

    @property
    def card(self) -> str:
        """File name of its dataset card in ``datasets/cards/``."""
        return f"{self.name}.md"

    def _function(self):
        module, function = self.loader.split(":")
        return getattr(importlib.import_module(module), function)

    def options(self) -> list[str]:
        """Keyword options its loader accepts (beyond the fixed ``kwargs``)."""
        parameters = inspect.signature(self._function()).parameters
        return [p for p in list(parameters)[1:] if p not in self.kwargs and parameters[p].kind != Parameter.VAR_KEYWORD]

    def load(self, root: str | os.PathLike | None = None, **options) -> Benchmark:
        return self._function()(data_root(root), **self.kwargs, **options)


_MOL, _SOC, _TRA = "gdl_graphs.data.molecules", "gdl_graphs.data.social", "gdl_graphs.data.traffic"

_SPECS = [
    # molecules
    DatasetSpec("molhiv", "molecules", "graph_multilabel", "rocauc", f"{_MOL}:load_molhiv",
                ("MoleculeNet/hiv/raw", "ogbg_molhiv"), "ogbg-molhiv: 41,127 molecules, HIV activity, OGB scaffold "
                "split, OGB features and Evaluator", aliases=("ogbg-molhiv",)),
    DatasetSpec("ESOL", "molecules", "graph_regression", "rmse", f"{_MOL}:load_moleculenet", ("MoleculeNet/esol/raw",),
                "MoleculeNet ESOL: 1,128 molecules, log solubility, random 80/10/10", {"name": "ESOL"}),
    DatasetSpec("FreeSolv", "molecules", "graph_regression", "rmse", f"{_MOL}:load_moleculenet",
                ("MoleculeNet/freesolv/raw",), "MoleculeNet FreeSolv: 642 molecules, hydration free energy, random "
                "80/10/10", {"name": "FreeSolv"}),
    DatasetSpec("Lipo", "molecules", "graph_regression", "rmse", f"{_MOL}:load_moleculenet", ("MoleculeNet/lipo/raw",),
                "MoleculeNet Lipophilicity: 4,200 molecules, logD, random 80/10/10", {"name": "Lipo"},
                aliases=("Lipophilicity",)),
    DatasetSpec("BBBP", "molecules", "graph_multilabel", "rocauc", f"{_MOL}:load_moleculenet",
                ("MoleculeNet/bbbp/raw",),
                "MoleculeNet BBBP: blood-brain barrier penetration, scaffold 80/10/10", {"name": "BBBP"}),
    DatasetSpec("HIV", "molecules", "graph_multilabel", "rocauc", f"{_MOL}:load_moleculenet", ("MoleculeNet/hiv/raw",),
                "MoleculeNet HIV (PyG features), scaffold 80/10/10", {"name": "HIV"}),
    DatasetSpec("ZINC", "molecules", "graph_regression", "mae", f"{_MOL}:load_zinc", ("ZINC/raw",),
                "ZINC 12k subset: constrained solubility, official 10,000/1,000/1,000"),
    DatasetSpec("peptides-func", "molecules", "graph_multilabel", "ap", "gdl_graphs.data.lrgb:load_peptides_func",
                ("peptides-functional",), "LRGB Peptides-func: 15,535 peptides, 10 binary tasks, official split "
                "10,873/2,331/2,331, average precision", aliases=("peptides-functional", "lrgb-peptides-func"),
                required=("peptides-functional/raw/peptide_multi_class_dataset.csv.gz",
                          "peptides-functional/splits_random_stratified_peptide.pickle")),
    DatasetSpec("QM9", "molecules", "graph_regression", "mae", "gdl_graphs.data.qm9:load_qm9_benchmark", (),
                "QM9 (qm9pack): 130,831 molecules, 12 quantum properties, 3D coordinates, EGNN split "
                "100,000/17,748/13,083; target=, limit= for subsets",
                provided="qm9pack package (source='pyg': PyG download)", node_attributes=("pos",)),
    # social / bio / citation
    *[DatasetSpec(tu, "social", "graph_classification", "accuracy", f"{_SOC}:load_tu",
                  (f"{tu}/raw", "TU_gin_format") if tu in ("REDDIT-BINARY", "COLLAB") else (f"{tu}/raw",),
                  f"TU {tu}: {summary}, stratified 10-fold CV (Errica et al.)", {"name": tu})
      for tu, summary in (("MUTAG", "188 mutagenic compounds, 2 classes"), ("PROTEINS", "1,113 proteins, 2 classes"),
                          ("NCI1", "4,110 compounds, 2 classes"),
                          ("IMDB-BINARY", "1,000 ego-networks, 2 genres, degree features"),
                          ("IMDB-MULTI", "1,500 ego-networks, 3 genres, degree features"),
                          ("REDDIT-BINARY", "2,000 threads, 2 classes, constant features"),
                          ("COLLAB", "5,000 ego-networks, 3 fields, degree features"))],
    *[DatasetSpec(p, "social", "node_classification", "accuracy", f"{_SOC}:load_planetoid", (f"{p}/raw",),
                  f"Planetoid {p}: citation graph, public split", {"name": p}) for p in ("Cora", "CiteSeer", "PubMed")],
    *[DatasetSpec(o, "social", "node_classification", "accuracy", "gdl_graphs.data.ogbn:load_ogbn",
                  (o.replace("-", "_"),), f"OGB {o}: {summary}, official split, OGB Evaluator", {"name": o},
                  aliases=(o[5:],))
      for o, summary in (("ogbn-arxiv", "169,343 papers, 40 subject areas, time split"),
                         ("ogbn-products", "2,449,029 products, 47 categories, sales-ranking split"))],
    DatasetSpec("KarateClub", "social", "node_classification", "accuracy", f"{_SOC}:load_karate", (),
                "Zachary's karate club (networkx): 34 nodes, 2 clubs", aliases=("karate",), provided="networkx"),
    # traffic
    *[DatasetSpec(t, "traffic", "forecasting", "mae", f"{_TRA}:load_dcrnn", (f"traffic/{t}",),
                  f"{t}: {n} speed sensors, 5-min steps, 12->12, DCRNN protocol", {"name": t},
                  required=(f"traffic/{t}/{h5}", f"traffic/{t}/{pkl}"))
      for t, n, h5, pkl in (("METR-LA", 207, "metr-la.h5", "adj_mx.pkl"),
                            ("PEMS-BAY", 325, "pems-bay.h5", "adj_mx_bay.pkl"))],
    *[DatasetSpec(t, "traffic", "forecasting", "mae", f"{_TRA}:load_astgcn", (f"traffic/{t}",),
                  f"{t}: {n} flow sensors, 5-min steps, 12->12, 60/20/20", {"name": t},
                  required=(f"traffic/{t}/{t}.npz", f"traffic/{t}/distance.csv"))
      for t, n in (("PEMS04", 307), ("PEMS08", 170))],
    *[DatasetSpec(t, "traffic", "forecasting", "mse", f"{_TRA}:load_temporal_json", (f"traffic/{t}",),
                  f"{t}: {summary}, 4 lags -> 1 step (PyG-Temporal)", {"name": t}, required=(f"traffic/{t}/{f}",))
      for t, summary, f in (("MontevideoBus", "675 bus stops x 744 h", "montevideo_bus.json"),
                            ("Chickenpox", "20 counties x 521 weeks", "chickenpox.json"),
                            ("PedalMe", "15 areas x 35 weeks", "pedalme_london.json"))],
    # synthetic
    DatasetSpec("SyntheticProducts", "synthetic", "node_classification", "accuracy",
                "gdl_graphs.data.synthetic_graphs:load_synthetic_products", (),
                "seeded graph at ogbn-products size (2.4M nodes, 62M edges, 100 features, 47 classes) for "
                "benchmarks; num_nodes=, num_edges= for smaller ones", aliases=("synthetic-products",),
                provided="generated in memory on every load"),
    DatasetSpec("NBody", "synthetic", "dynamics", "mse", "gdl_graphs.data.synthetic:load_nbody", (),
                "charged N-body simulation (EGNN): predict positions after 1,000 steps",
                provided="generated on first use", node_attributes=("pos", "vel")),
]

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
_LOOKUP = {alias.lower(): spec for spec in _SPECS for alias in (spec.name, *spec.aliases)}


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset called ``name`` (case-insensitive, aliases accepted)."""
    spec = _LOOKUP.get(str(name).lower())
    if spec is None:
        raise KeyError(f"unknown dataset {name!r}; registered: {', '.join(REGISTRY)}. Any other TU dataset loads as "
                       f"'tu:NAME' (e.g. 'tu:ENZYMES').")
    return spec


def list_benchmarks(family: str | None = None) -> list[DatasetSpec]:
    """Registered datasets (optionally of one family), in registry order."""
    return [spec for spec in _SPECS if family is None or spec.family == family]


def load_benchmark(name: str, root: str | os.PathLike | None = None, **options) -> Benchmark:
    """Load a benchmark by name: ``load_benchmark("IMDB-BINARY")``, ``load_benchmark("molhiv", root="/data")``.

    ``root`` defaults to :func:`~gdl_graphs.data.root.data_root` (``$GDL_DATA``, else the checkout's
    ``datasets/``); ``options`` go to the dataset's loader (e.g. ``seed``, ``input_len``, ``split``).
    ``"tu:NAME"`` loads any TU dataset, with its continuous node attributes where it has them
    (``use_node_attr=False`` to drop them); ``"gin:NAME"`` any dataset in the GIN repository's text format
    (``<root>/TU_gin_format/NAME.zip``) with that repository's folds. ``NAME`` must be a plain name (no path
    separators, no ``..``).
    """
    load = _loader(name)  # an unknown or unsafe name is refused before anything is created under the root
    resolved = data_root(root)
    with building(resolved):  # concurrent processes (DDP ranks, suite workers) must not build one cache twice
        return load(resolved, **options)


def _loader(name: str):
    """The loader of ``name`` as ``load(root, **options)``, after checking the name."""
    prefix, _, rest = str(name).partition(":")
    if rest and prefix.lower() == "tu":
        from gdl_graphs.data.social import load_tu

        plain = check_dataset_name(rest)

        def load(root, **options):
            options.setdefault("use_node_attr", True)
            return load_tu(root, plain, **options)

        return load
    if rest and prefix.lower() == "gin":
        from gdl_graphs.data.social import load_gin_format

        plain = check_dataset_name(rest)
        return lambda root, **options: load_gin_format(root, plain, **options)
    return get_spec(name).load
