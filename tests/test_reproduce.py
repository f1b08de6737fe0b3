"""Paper recipes, the Errica and Xu protocols, the reproduction suites and page: the machinery, not the numbers
(fast slices: a few epochs, 2-3 folds, tiny grids)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch_geometric import nn as pyg_nn
from torch_geometric.data import Batch, Data

from gdl_graphs.bench.cli import main
from gdl_graphs.bench.config import LATER_FIELDS, ConfigError, RunConfig, num_folds
from gdl_graphs.bench.suite import load_suite, parse_suite
from gdl_graphs.bench.protocols import _best_mean_epoch
from gdl_graphs.bench.reproductions import _partial, _protocol, render
from gdl_graphs.bench.runner import configure_threads, default_threads, run_all, run_experiments
from gdl_graphs.bench.store import ResultStore
from gdl_graphs.bench.training import parameter_groups, train_run
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.splits import stratified_folds
from gdl_graphs.groups import PERMUTATION_EQUIVARIANT, PERMUTATION_INVARIANT
from gdl_graphs.models import GraphNet, build_model, count_parameters
from gdl_graphs.models.registry import find_recipe, list_models
from gdl_graphs.testing import assert_permutation_equivariant, assert_permutation_invariant

RECIPES = {recipe.name: recipe for entry in list_models() for recipe in entry.recipes}
from tests.fixtures.formats import ring_graphs, write_tu

REPRODUCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce"


def node_benchmark(features: int = 12, classes: int = 3, nodes: int = 30) -> Benchmark:
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, nodes, (2, 4 * nodes), generator=g)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    data = Data(x=torch.rand(nodes, features, generator=g), edge_index=edge_index,
                y=torch.randint(0, classes, (nodes,), generator=g))
    for i, name in enumerate(("train", "val", "test")):
        setattr(data, f"{name}_mask", torch.arange(nodes) % 3 == i)
    return Benchmark("toy", "node_classification", "accuracy", data, data, data, features, classes)


def graph_benchmark(features: int = 5, classes: int = 2) -> Benchmark:
    g = torch.Generator().manual_seed(1)
    graphs = [Data(x=torch.rand(n, features, generator=g), edge_index=torch.randint(0, n, (2, 2 * n), generator=g),
                   y=torch.tensor([n % classes])) for n in (3, 5, 8, 4)]
    return Benchmark("toyg", "graph_classification", "accuracy", graphs, graphs, graphs, features, classes)


# ------------------------------------------------------------------------------------------------------- recipes


def test_kipf_recipe_is_plain_two_layer_gcn_as_pyg_example():
    bench = node_benchmark()
    model = build_model("gcn@kipf2017", bench, hidden_channels=16).eval()
    assert count_parameters(model) == 12 * 16 + 16 + 16 * 3 + 3  # two GCN layers, no encoder, norm or head
    conv1, conv2 = pyg_nn.GCNConv(12, 16), pyg_nn.GCNConv(16, 3)
    conv1.load_state_dict(model.layers[0].state_dict())
    conv2.load_state_dict(model.layers[1].state_dict())
    data = bench.train
    expected = conv2(torch.relu(conv1(data.x, data.edge_index)), data.edge_index)
    torch.testing.assert_close(model(data), expected)
    model.train()
    torch.manual_seed(0)
    dropped = model(data)
    assert not torch.allclose(dropped, expected)  # input and hidden dropout are on in training


def test_gat_recipe_has_attention_dropout_and_an_averaging_output_layer():
    bench = node_benchmark()
    model = build_model("gat@velickovic2018", bench, hidden_channels=64)
    first, last = model.layers
    assert (first.heads, first.out_channels, first.concat, first.dropout) == (8, 8, True, 0.6)
    assert (last.heads, last.out_channels, last.concat, last.dropout) == (1, 3, False, 0.6)
    assert model(bench.train).shape == (30, 3)
    assert count_parameters(model) == (12 * 64 + 64 + 64 + 64) + (64 * 3 + 3 + 3 + 3)


def test_gin0_recipe_reads_out_every_layer_and_fixes_eps():
    bench = graph_benchmark()
    model = build_model("gin0@xu2019", bench, hidden_channels=8).eval()
    assert len(model.layers) == 4 and len(model.layer_heads) == 5 and model.head is None
    assert all(not layer.eps.requires_grad and float(layer.eps) == 0.0 for layer in model.layers)
    batch = Batch.from_data_list(bench.train)
    states, h = [batch.x], batch.x
    for layer, norm in zip(model.layers, model.norms):  # no residual, no dropout between layers
        h = torch.relu(norm(layer(h, batch.edge_index)))
        states.append(h)
    expected = sum(head(pyg_nn.global_add_pool(state, batch.batch)) for head, state in zip(model.layer_heads, states))
    torch.testing.assert_close(model(batch), expected)


def molecule_benchmark() -> Benchmark:
    """Three molecule-like graphs with integer-coded atom (2 columns) and bond (1 column) features."""
    graphs = [Data(x=torch.randint(0, 3, (n, 2)), edge_index=torch.randint(0, n, (2, 2 * n)),
                   edge_attr=torch.randint(0, 2, (2 * n, 1)), y=torch.rand(1, 2).round()) for n in (4, 6, 5)]
    return Benchmark("mol", "graph_multilabel", "rocauc", graphs, graphs, graphs, 2, 2, 1, (3, 3), (2,))


def _ogb_code_parameters(gnn: str, virtual: bool, emb: int = 300, layers: int = 5) -> int:
    """Parameters of OGB's molhiv model (examples/graphproppred/mol: GNN_node or GNN_node_Virtualnode, one
    task), counted module by module from that code's structure with ogb's own feature vocabularies."""
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    linear = lambda i, o: i * o + o  # noqa: E731
    batch_norm = lambda c: 2 * c  # noqa: E731
    bond_encoder = sum(get_bond_feature_dims()) * emb
    conv = (linear(emb, 2 * emb) + batch_norm(2 * emb) + linear(2 * emb, emb) + 1 + bond_encoder if gnn == "gin"
            else linear(emb, emb) + emb + bond_encoder)  # GIN: mlp + eps; GCN: linear + root_emb
    total = sum(get_atom_feature_dims()) * emb + layers * (conv + batch_norm(emb)) + linear(emb, 1)
    if virtual:  # the virtual node's embedding and its MLP between consecutive layers
        total += emb + (layers - 1) * (linear(emb, 2 * emb) + batch_norm(2 * emb) + linear(2 * emb, emb)
                                       + batch_norm(emb))
    return total


@pytest.mark.parametrize("name, gnn, virtual", [("gin@ogb", "gin", False), ("gin-virtual@ogb", "gin", True),
                                                ("gcn@ogb", "gcn", False)])
def test_ogb_recipes_have_ogbs_parameter_count(name, gnn, virtual):
    # OGB embeds the bonds afresh in every layer and adds the embedding unmapped (edge_embedding="per_layer",
    # edge_map=False); a shared embedding with a per-layer 300 x 300 map had 435,900 parameters more
    from gdl_graphs.data.molecules import OGB_ATOM_VOCAB, OGB_BOND_VOCAB

    graphs = [Data(x=torch.zeros(3, len(OGB_ATOM_VOCAB), dtype=torch.long), edge_index=torch.tensor([[0, 1], [1, 2]]),
                   edge_attr=torch.zeros(2, len(OGB_BOND_VOCAB), dtype=torch.long), y=torch.zeros(1, 1))]
    bench = Benchmark("mol", "graph_multilabel", "rocauc", graphs, graphs, graphs, len(OGB_ATOM_VOCAB), 1,
                      len(OGB_BOND_VOCAB), OGB_ATOM_VOCAB, OGB_BOND_VOCAB)
    model = build_model(name, bench, hidden_channels=300)
    assert model.edge_encoder is None and len(model.edge_encoders) == 5
    assert count_parameters(model) == _ogb_code_parameters(gnn, virtual)


def test_per_layer_edge_embedding_needs_a_layer_that_takes_edge_features_and_keeps_them():
    with pytest.raises(ValueError, match="edge_embedding='per_layer'"):
        GraphNet("gin", 2, 1, edge_dim=1, edge_embedding="per_layer")
    with pytest.raises(ValueError, match="edge_embedding must be"):
        GraphNet("gine", 2, 1, edge_dim=1, edge_embedding="each")
    model = GraphNet("gatedgcn", 2, 1, hidden_channels=8, edge_dim=1, edge_embedding="per_layer")
    batch = Batch.from_data_list(molecule_benchmark().train)
    with pytest.raises(ValueError, match="updates the edge features"):
        model(Data(x=batch.x.float(), edge_index=batch.edge_index, edge_attr=batch.edge_attr.float()))


def test_moleculenet_mpnn_recipe_ties_its_steps_and_reads_out_with_set2set():
    torch.manual_seed(0)
    bench = molecule_benchmark()
    model = build_model("mpnn@wu2018", bench, hidden_channels=8).eval()
    layer = model.layers[0]
    assert len(model.layers) == 2 and model.layers[1] is layer  # T = 2 steps of one message function and GRU
    assert isinstance(layer.act, torch.nn.Identity) and layer.conv.aggr == "add"
    _, recipe = find_recipe("mpnn@wu2018")
    untied = GraphNet("mpnn", 2, 2, 8, edge_dim=1, node_vocab=(3, 3), edge_vocab=(2,),
                      **{**recipe.model_options, "share_weights": False})
    assert count_parameters(untied) - count_parameters(model) == count_parameters(layer)
    batch = Batch.from_data_list(bench.train)
    h, e = model.node_encoder(batch.x, batch.num_nodes), model.edge_encoder(batch.edge_attr, batch.num_edges)
    for _ in range(2):
        h = layer(h, batch.edge_index, e)
    set2set = pyg_nn.aggr.Set2Set(8, processing_steps=5)
    set2set.load_state_dict(model.readout.set2set.state_dict())
    torch.testing.assert_close(model(batch), model.head(set2set(h, batch.batch)))
    assert model.head[0].in_features == 16  # Set2Set doubles the width


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_runs_and_holds_its_symmetry(name):
    entry, recipe = find_recipe(name)
    assert recipe.source and recipe.dataset and recipe.differences and "@" in name
    if entry.uses_edge_features:  # integer-coded molecule-like input
        bench = molecule_benchmark()
    else:
        bench = graph_benchmark() if name != "gcn@kipf2017" and "velickovic" not in name else node_benchmark()
    model = build_model(name, bench, hidden_channels=16 if entry.name != "gat" else 64)
    data = bench.train if isinstance(bench.train, Data) else Batch.from_data_list(bench.train)
    assert model(data).shape[-1] == bench.num_targets
    # the whole model at the recipe's options holds its declared symmetry (tied layers, Set2Set, OGB's GCN, ...)
    check = {PERMUTATION_INVARIANT: assert_permutation_invariant,
             PERMUTATION_EQUIVARIANT: assert_permutation_equivariant}[model.symmetry]
    check(model.eval(), data, call=lambda m, d: m(d), atol=1e-4, rtol=1e-4)


def test_ogb_virtual_node_follows_ogb():
    graphs = [Data(x=torch.randint(0, 3, (n, 2)), edge_index=torch.randint(0, n, (2, 2 * n)),
                   edge_attr=torch.randint(0, 2, (2 * n, 1)), y=torch.rand(1, 1)) for n in (4, 6)]
    bench = Benchmark("mol", "graph_multilabel", "rocauc", graphs, graphs, graphs, 2, 1, 1, (3, 3), (2,))
    plain = build_model("gin@ogb", bench, hidden_channels=10)
    virtual = build_model("gin-virtual@ogb", bench, hidden_channels=10)
    mlp = virtual.virtual_mlps[0]
    assert [type(m).__name__ for m in mlp] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU"]
    assert mlp[0].out_features == 20 and len(virtual.virtual_mlps) == 4
    assert plain.layers[0].nn[0].out_features == 20  # OGB's GIN MLP: emb -> 2 emb -> emb
    assert isinstance(plain.head, torch.nn.Linear) and not plain.residual


def test_first_layer_weight_decay_groups():
    bench = node_benchmark()
    model = build_model("gcn@kipf2017", bench, hidden_channels=16)
    config = RunConfig("toy", "gcn@kipf2017", weight_decay=5e-4, weight_decay_scope="first_layer")
    decayed, free = parameter_groups(model, config)
    assert decayed["weight_decay"] == 5e-4 and free["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(p) for p in model.layers[0].parameters()}
    assert len(decayed["params"]) + len(free["params"]) == len(list(model.parameters()))


def test_recipe_settings_sit_between_defaults_and_the_experiment():
    suite = {"defaults": {"epochs": 7, "lr": 0.5, "batch_size": 16},
             "experiments": [{"dataset": "KarateClub", "models": ["gcn@kipf2017", "gcn"], "epochs": 3,
                              "model_options": {"gcn@kipf2017": {"dropout": 0.1}}}]}
    header, runs = parse_suite(suite, overrides={"batch_size": 8})
    recipe_run, plain_run = runs
    assert recipe_run.lr == 0.01 and plain_run.lr == 0.5          # recipe over defaults
    assert recipe_run.epochs == 3 == plain_run.epochs             # the experiment over the recipe
    assert recipe_run.batch_size == 8 == plain_run.batch_size     # the command line over everything
    assert recipe_run.model_options["dropout"] == 0.1 and recipe_run.model_options["input_dropout"] == 0.5
    assert recipe_run.weight_decay_scope == "first_layer" and plain_run.model_options == {}
    with pytest.raises(ConfigError, match="experiments\\[0\\].models"):
        parse_suite({"experiments": [{"dataset": "KarateClub", "models": ["gcn@nobody"]}]})


def test_keys_of_runs_stored_before_the_new_settings_are_unchanged():
    config = RunConfig("MUTAG", "gin", epochs=5)
    settings = dataclasses.asdict(config)
    settings.pop("device")
    for name in LATER_FIELDS:
        settings.pop(name)
    old = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config.key == old
    assert dataclasses.replace(config, lr_schedule="step").key != old


def test_select_by_loss_keeps_the_epoch_of_the_lowest_validation_loss():
    bench = graph_benchmark()
    common = dict(epochs=12, patience=12, batch_size=2, lr=0.01, hidden_channels=8, lr_schedule="constant")
    by_loss = train_run(RunConfig("toyg", "gcn", select_by="loss", **common), bench, progress=False)
    losses = [point["val_loss"] for point in by_loss.curve]
    assert by_loss.best_epoch == losses.index(min(losses))
    assert by_loss.val == by_loss.curve[by_loss.best_epoch]["val"]  # the metric at that epoch is reported
    by_metric = train_run(RunConfig("toyg", "gcn", **common), bench, progress=False)
    accuracies = [point["val"] for point in by_metric.curve]
    assert by_metric.best_epoch == accuracies.index(max(accuracies))
    assert [p["val_loss"] for p in by_metric.curve] == losses  # same seed, same training: only the choice differs
    with pytest.raises(ValueError, match="select_by 'loss'"):
        train_run(RunConfig("toy", "gcn", select_by="loss", epochs=1), node_benchmark(), progress=False)
    with pytest.raises(ConfigError, match="select_by: must be one of"):
        parse_suite({"experiments": [{"dataset": "MUTAG", "models": ["gin"], "select_by": "val_loss"}]})


def test_the_pooling_recipes_select_on_the_validation_loss_as_their_code():
    assert all(RECIPES[name].settings["select_by"] == "loss"
               for name in ("sagpool@lee2019", "topkpool@lee2019", "mincut@bianchi2020"))
    header, _ = load_suite(REPRODUCE / "pooling_papers.yaml")
    sagpool, mincut = header["experiments"]
    assert len(sagpool.runs) == 20 and {r.select_by for r in sagpool.runs} == {"loss"}
    assert sagpool.runs[0].dataset_options["split"] == "random" and len(mincut.runs) == 10


def test_list_models_shows_recipes_with_citations(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name, recipe in RECIPES.items():
        assert name in out and recipe.source in out


# ------------------------------------------------------------------------------------------------------ protocols


def test_xu_folds_have_no_holdout_and_best_mean_epoch():
    y = torch.tensor([0, 1] * 20)
    for train, val, test in stratified_folds(y, num_folds=4, val_fraction=0.0):
        assert torch.equal(val, test) and len(train) + len(test) == 40
    rows = [{"fold": 0, "metric": "accuracy", "curve": [{"test": t} for t in (0.5, 0.9, 0.6)]},
            {"fold": 1, "metric": "accuracy", "curve": [{"test": t} for t in (0.7, 0.7, 0.9, 1.0)]}]
    result = _best_mean_epoch(rows)  # epoch means 0.6, 0.8, 0.75 over the 3 common epochs -> epoch 1
    assert result["mean"] == pytest.approx(0.8) and result["std"] == pytest.approx(torch.tensor([0.9, 0.7]).std())
    assert "epoch 1 of 3" in result["detail"][0]


def tu_fixture(root: Path, name: str = "RINGS") -> str:
    graphs = ring_graphs(40)
    write_tu(root, name, graphs, [k % 2 for k in range(40)])  # the label is whether the ring has a chord
    return f"tu:{name}"


def errica_suite(dataset: str, db: Path) -> dict:
    return {"name": "errica_slice", "db": str(db), "experiments": [{
        "dataset": dataset, "models": ["gin@errica2020"], "protocol": "errica2020", "folds": "all", "restarts": 2,
        "epochs": 2, "dataset_options": {"num_folds": 3},
        "grid": {"width_depth": [{"hidden_channels": 8, "model_options.num_layers": 1},
                                 {"hidden_channels": 16, "model_options.num_layers": 2}],
                 "model_options.readout": ["sum"]}}]}


def test_errica_protocol_selects_per_fold_restarts_and_resumes(tmp_path):
    dataset = tu_fixture(tmp_path)
    header, runs = parse_suite(errica_suite(dataset, tmp_path / "e.sqlite"))
    (experiment,) = header["experiments"]
    assert len(runs) == 3 * 2 and {r.fold for r in runs} == {0, 1, 2} and {r.seed for r in runs} == {0}
    store = ResultStore(tmp_path / "e.sqlite")
    trained = run_experiments(header["experiments"], store, root=tmp_path, progress=False, log=lambda m: None)
    assert len(trained) == 6 + 3 * 2
    # fold by fold: each fold's 2 selection runs, then its 2 restarts (seeds 1, 2), before the next fold
    assert [(r.fold, r.seed) for r in trained] == [(f, s) for f in range(3) for s in (0, 0, 1, 2)]
    rows = {row["key"]: row for row in store.rows()}
    for fold in range(3):
        label, chosen, row = experiment.selection.selected(fold, rows)
        candidates = [rows[r.key] for _, fold_runs in experiment.selection.candidates for r in fold_runs
                      if r.fold == fold]
        assert row["val"] == max(c["val"] for c in candidates)
        restarts = [r for r in rows.values() if r["fold"] == fold and r["seed"] in (1, 2)]
        assert len(restarts) == 2 and all(r["config"]["hidden_channels"] == chosen.hidden_channels
                                          for r in restarts)
    result = experiment.summarize(rows)
    assert result["complete"] and result["n"] == 3 and result["stored"] == result["expected"] == 12
    assert all("selected [" in line for line in result["detail"])
    assert run_experiments(header["experiments"], store, root=tmp_path, progress=False, log=lambda m: None) == []
    store.close()


def test_an_interrupted_model_selection_is_reported_with_its_finished_folds(tmp_path):
    dataset = tu_fixture(tmp_path)
    header, runs = parse_suite(errica_suite(dataset, tmp_path / "e.sqlite"))
    (experiment,) = header["experiments"]
    store = ResultStore(tmp_path / "e.sqlite")
    quiet = dict(root=tmp_path, progress=False, log=lambda m: None)
    run_all([r for r in runs if r.fold == 0], store, **quiet)
    rows = {row["key"]: row for row in store.rows()}
    run_all(experiment.selection.final_runs(rows), store, **quiet)  # fold 0's restarts: the only complete fold
    run_all([r for r in runs if r.fold == 1][:1], store, **quiet)
    rows = {row["key"]: row for row in store.rows()}
    result = experiment.summarize(rows)
    assert not result["complete"] and result["n"] == 1 and result["stored"] == 5 and result["expected"] == 12
    assert _partial(experiment, result) == " (partial: 1/3 folds, 5/12 runs)"
    store.close()


def test_errica_protocol_errors_name_the_key(tmp_path):
    suite = errica_suite("MUTAG", tmp_path / "e.sqlite")
    for change, key in (({"restarts": 0}, "restarts"), ({"seeds": [0, 1]}, "seeds"),
                        ({"grid": {"width_depth": [1, 2]}}, "grid.width_depth"),
                        ({"grid": {"lr_rate": [1]}}, "grid.lr_rate"), ({"protocol": "nope"}, "protocol")):
        bad = {**suite, "experiments": [{**suite["experiments"][0], **change}]}
        with pytest.raises(ConfigError, match=f"^experiments\\[0\\].{key}"):
            parse_suite(bad)
    with pytest.raises(ConfigError, match="grid"):
        parse_suite({"experiments": [{"dataset": "MUTAG", "models": ["gin"], "grid": {"lr": [1.0]}}]})


def test_xu_protocol_slice_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GDL_DATA", str(tmp_path))  # `run --data-root` exports it; restored after the test
    dataset = tu_fixture(tmp_path)
    suite = tmp_path / "xu.yaml"
    suite.write_text(yaml.safe_dump({"name": "xu", "db": str(tmp_path / "x.sqlite"), "experiments": [
        {"dataset": dataset, "models": ["gin0@xu2019"], "protocol": "xu2019", "epochs": 3, "hidden_channels": 8,
         "dataset_options": {"num_folds": 2}}]}))
    assert main(["run", str(suite), "--data-root", str(tmp_path), "--no-progress", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "xu2019" in out and "best mean epoch" in out
    rows = ResultStore(tmp_path / "x.sqlite").rows()
    assert len(rows) == 2 and all(r["epochs_run"] == 3 for r in rows)  # no early stopping in Xu's protocol
    assert main(["report", "--protocol", str(suite)]) == 0
    assert "2 / 2" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- suites and the page


@pytest.mark.parametrize("path", sorted(p for p in REPRODUCE.glob("*.yaml") if p.name != "published.yaml"),
                         ids=lambda p: p.name)
def test_reproduction_suites_parse(path):
    try:
        header, runs = load_suite(path)
    except ConfigError as error:
        if "unknown dataset 'peptides-func'" in str(error):
            pytest.skip("the Peptides-func loader has not landed on this branch")
        raise
    assert runs and header["db"].startswith("benchmarks/results/stores/")


def test_swapping_the_dataset_runs_the_same_protocol(tmp_path):
    suite = yaml.safe_load((REPRODUCE / "planetoid.yaml").read_text())
    _, cora = parse_suite(suite)
    suite["experiments"][0]["dataset"] = "CiteSeer"
    _, citeseer = parse_suite(suite)
    assert [dataclasses.replace(r, dataset="Cora") for r in citeseer] == cora
    errica = yaml.safe_load((REPRODUCE / "tu_errica.yaml").read_text())
    errica["experiments"] = [{**errica["experiments"][0], "dataset": tu_fixture(tmp_path, "ANYTU")}]
    header, _ = parse_suite(errica)
    assert len(header["experiments"][0].selection.candidates) == 64


def test_moleculenet_suites_average_over_random_splits():
    """A dataset's folds follow its loader's ``num_folds`` option: MoleculeNet's default is one split, TU's ten
    folds, and a loader without the option has one fixed split."""
    assert [num_folds(d, {}) for d in ("ESOL", "MUTAG", "tu:ANY", "molhiv")] == [1, 10, 10, 1]
    assert num_folds("ESOL", {"split": "random", "num_folds": 3}) == 3
    for dataset, options in (("ESOL", {"num_folds": 3}), ("BBBP", {"num_folds": 3}), ("MUTAG", {"num_folds": 1})):
        with pytest.raises(ConfigError, match="num_folds: .* needs split: random"):
            num_folds(dataset, options)  # a scaffold split, or one CV fold, cannot be redrawn
    assert num_folds("MUTAG", {"split": "random", "num_folds": 1}) == 1
    with pytest.raises(ConfigError, match="needs a cross-validated dataset"):  # random splits are not CV folds
        parse_suite({"name": "s", "defaults": {"dataset_options": {"split": "random", "num_folds": 3}},
                     "experiments": [{"dataset": "ESOL", "models": ["gin"], "protocol": "errica2020",
                                      "grid": {"lr": [0.01]}}]})
    for name in ("moleculenet.yaml", "moleculenet_weave.yaml"):
        _, runs = load_suite(REPRODUCE / name)
        esol = [r for r in runs if r.dataset == "ESOL" and r.model == "mpnn@wu2018"]
        assert [(r.seed, r.fold) for r in esol] == [(0, 0), (0, 1), (0, 2)], name
        assert esol[0].dataset_options["split"] == "random" and esol[0].dataset_options["num_folds"] == 3
        assert esol[0].dataset_options.get("pairs", "bonds") == ("weave" if "weave" in name else "bonds")
    with pytest.raises(ConfigError, match="experiments\\[0\\].folds"):
        parse_suite({"name": "s", "experiments": [{"dataset": "ESOL", "models": ["gcn"], "folds": [1]}]})


def test_published_file_matches_the_suites():
    published = yaml.safe_load((REPRODUCE / "published.yaml").read_text())
    for entry in published["entries"]:
        assert (REPRODUCE.parents[1] / entry["suite"]).is_file()
        assert entry["source"] and len(entry["published"]) == 2


def test_reproductions_page_from_stored_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GDL_DATA", str(tmp_path))  # `run --data-root` exports it; restored after the test
    dataset = tu_fixture(tmp_path)
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "db": "s.sqlite", "experiments": [
        {"dataset": dataset, "models": ["gin", "gcn"], "seeds": [0, 1], "epochs": 2, "hidden_channels": 8}]}))
    published = tmp_path / "published.yaml"
    published.write_text(yaml.safe_dump({"title": "T", "entries": [
        {"suite": "s.yaml", "dataset": dataset, "model": "gin", "published": [70.0, 5.0], "source": "Paper, Table 1"},
        {"suite": "s.yaml", "dataset": dataset, "model": "gcn", "published": [60.0, None], "source": "Other, T2",
         "budget": {"epochs": 1}}]}))
    assert main(["run", str(suite), "--only", f"{dataset}/gin", "--data-root", str(tmp_path), "--no-progress"]) == 0
    page = render(published, output="out.md")
    rows = ResultStore("s.sqlite").rows()
    mean = 100 * sum(r["test"] for r in rows) / 2
    assert f"| {mean:.2f} ± " in page and f"{mean - 70.0:+.2f}" in page and "Paper, Table 1" in page
    assert "not run" in page and f"gdl-bench run s.yaml --only {dataset}/gcn --epochs 1" in page
    assert "gdl-bench report --reproductions" in page and "## Provenance" in page
    assert main(["report", "--reproductions", str(published), "--output", "out.md"]) == 0
    assert Path("out.md").read_text().startswith("# T")
    # one stored run of two: its number, no spread
    assert main(["run", str(suite), "--only", f"{dataset}/gcn", "--seeds", "1", "--epochs", "1", "--data-root",
                 str(tmp_path), "--no-progress"]) == 0
    [gcn] = [r for r in ResultStore("s.sqlite").rows() if r["model"] == "gcn"]
    assert f"| {100 * gcn['test']:.2f} (partial: 1/2 runs) | 60.0 |" in render(published, output="out.md")


def test_protocol_cell_names_the_split_rule_and_the_input_options():
    # two suites running one model on one dataset with different inputs give rows that tell apart
    def experiment(options, select_by="metric"):
        run = SimpleNamespace(dataset_options=options, select_by=select_by)
        return SimpleNamespace(protocol="seeds", runs=[run])

    assert _protocol(experiment({"split": "random", "num_folds": 3})) == "seeds, random splits"
    assert _protocol(experiment({"pairs": "weave", "split": "random", "num_folds": 3})) == (
        "seeds, random splits, pairs=weave")
    assert _protocol(experiment({}, select_by="loss")) == "seeds, select by val loss"


def test_committed_reproductions_page_is_generated_from_the_committed_stores(monkeypatch):
    # benchmarks/results/reproductions.md is exactly what its stated command writes from benchmarks/results/stores/
    repository = REPRODUCE.parents[1]
    monkeypatch.chdir(repository)
    page_path = "benchmarks/results/reproductions.md"
    page = Path(page_path).read_text()
    assert "gdl-bench report --reproductions benchmarks/reproduce/published.yaml --output " + page_path in page
    assert render("benchmarks/reproduce/published.yaml", output=page_path) == page


def test_threads_default_to_cores_over_local_processes():
    assert default_threads({"OMP_NUM_THREADS": "3"}) == 3
    cores = default_threads({})
    assert cores >= 1 and default_threads({"LOCAL_WORLD_SIZE": "64"}) == max(1, cores // 64)
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="threads"):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_python_train_applies_the_recipe_and_the_callers_settings():
    from gdl_graphs.bench import train

    _, result, _ = train("KarateClub", "gcn@kipf2017", epochs=2, progress=False)
    config = json.loads(result.config)
    assert config["lr"] == 0.01 and config["epochs"] == 2 and config["weight_decay_scope"] == "first_layer"


def test_cv_protocols_need_a_cross_validated_dataset_but_may_run_one_fold(tmp_path):
    with pytest.raises(ConfigError, match="^experiments\\[0\\].protocol: xu2019 needs a cross-validated"):
        parse_suite({"experiments": [{"dataset": "Cora", "models": ["gcn"], "protocol": "xu2019"}]})
    with pytest.raises(ConfigError, match="^experiments\\[0\\].protocol: errica2020 needs"):
        parse_suite({"experiments": [{"dataset": "Cora", "models": ["gcn"], "protocol": "errica2020"}]})
    header, runs = parse_suite({"experiments": [{"dataset": "MUTAG", "models": ["gin@errica2020"],
                                                 "protocol": "errica2020", "folds": [0], "restarts": 1}]})
    assert len(runs) == 1 and header["experiments"][0].selection.folds == [0]
