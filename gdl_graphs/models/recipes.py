"""Paper recipes: a registered model configured exactly as one paper specifies it, as data.

Each recipe is a :class:`~gdl_graphs.models.registry.Recipe` in its model's registry entry
(:mod:`gdl_graphs.models.catalog` attaches :data:`RECIPES`), named ``MODEL@PAPER`` (``gcn@kipf2017``): the paper's
architecture as :class:`~gdl_graphs.models.GraphNet` options and its training settings as run settings
(:class:`~gdl_graphs.bench.config.RunConfig` fields). A suite selects it like a model (``models: [gcn@kipf2017]``);
its settings sit between the suite's ``defaults`` and the experiment's own keys, so a suite can still cut a budget
(``epochs: 50``) and says so where it does. ``differences`` states, for every recipe, what is not as in the paper.
``MODEL`` is the paper's name for it, not always the registered model's (``gin@ogb`` configures ``gine``).
"""

from __future__ import annotations

from gdl_graphs.models.registry import Recipe

DATASETS = {"kipf2017": "Cora, CiteSeer, PubMed", "velickovic2018": "Cora, CiteSeer",
            "xu2019": "TU bioinformatics and social datasets (MUTAG, PROTEINS, IMDB-BINARY, ...)",
            "errica2020": "TU chemical and social datasets (D&D, NCI1, PROTEINS, ENZYMES, IMDB-B/M, ...)",
            "ogb": "ogbg-molhiv", "dwivedi2020": "ZINC", "rampasek2022": "Peptides-func",
            "lrgb2022": "Peptides-func", "toenshoff2023": "Peptides-func",
            "lee2019": "TU graph classification (D&D, PROTEINS, NCI1, NCI109, FRANKENSTEIN)",
            "ying2018": "TU graph classification (ENZYMES, PROTEINS, D&D, REDDIT-MULTI-12K, COLLAB)",
            "bianchi2020": "TU graph classification (PROTEINS, D&D, ENZYMES, COLLAB, REDDIT-B, ...)",
            "wu2018": "MoleculeNet regression and classification (ESOL, FreeSolv, Lipophilicity, QM7-9, ...)"}
"""The datasets each paper's settings were published on, by paper id."""

_BY_MODEL: dict[str, list[Recipe]] = {}


def _recipe(name: str, model: str, citation: str, model_options: dict, settings: dict, differences: str) -> None:
    paper = name.split("@", 1)[1]
    _BY_MODEL.setdefault(model, []).append(Recipe(name, citation, DATASETS[paper], settings=settings,
                                                  model_options=model_options, differences=differences))


_PLAIN = {"encoder": False, "head": None, "norm": None, "residual": False}
"""A stack of layers and nothing else: the raw features in, the classes out (Kipf & Welling, Velickovic et al.)."""

_OGB = {"num_layers": 5, "readout": "mean", "dropout": 0.5, "norm": "batch_norm", "residual": False,
        "final_activation": False, "head": "linear", "embedding_init": "xavier", "edge_embedding": "per_layer",
        "layer_options": {"mlp_factor": 2, "edge_map": False}}
_OGB_SETTINGS = {"hidden_channels": 300, "budget": None, "batch_size": 32, "lr": 0.001, "epochs": 100,
                 "patience": 100, "lr_schedule": "constant", "grad_clip": None}
_OGB_CITATION = "Hu et al. 2020, Open Graph Benchmark (examples/graphproppred/mol, ogbg-molhiv leaderboard)"

_recipe("gcn@kipf2017", "gcn", "Kipf & Welling 2017, Semi-Supervised Classification with GCNs (Sec. 5.1, "
        "Table 2); PyG examples/gcn.py",
        {**_PLAIN, "num_layers": 2, "dropout": 0.5, "input_dropout": 0.5},
        {"hidden_channels": 16, "budget": None, "lr": 0.01, "weight_decay": 5e-4,
         "weight_decay_scope": "first_layer", "epochs": 200, "patience": 200, "lr_schedule": "constant",
         "grad_clip": None},
        "test accuracy at the best validation-accuracy epoch of 200 (as PyG's examples/gcn.py), not the paper's "
        "early stopping on a 10-epoch window of the validation loss")
_recipe("gat@velickovic2018", "gat", "Velickovic et al. 2018, Graph Attention Networks (Sec. 3.3, Table 2, "
        "Cora/CiteSeer settings); PyG examples/gat.py",
        {**_PLAIN, "num_layers": 2, "heads": 8, "dropout": 0.6, "input_dropout": 0.6, "activation": "elu",
         "layer_options": {"dropout": 0.6}, "output_layer_options": {"heads": 1, "concat": False}},
        {"hidden_channels": 64, "budget": None, "lr": 0.005, "weight_decay": 5e-4, "epochs": 1000,
         "patience": 100, "lr_schedule": "constant", "grad_clip": None},
        "early stopping (patience 100) on the validation accuracy only (the paper: loss and accuracy); PubMed's "
        "8 output heads, lr 0.01 and L2 0.001 are not this recipe")
_recipe("gin0@xu2019", "gin", "Xu et al. 2019, How Powerful are Graph Neural Networks? (Sec. 7, Table 1, "
        "GIN-0); github.com/weihua916/powerful-gnns",
        {"encoder": False, "num_layers": 4, "readout": "sum", "readout_over": "all_layers", "head": "linear",
         "norm": "batch_norm", "residual": False, "dropout": 0.0, "head_dropout": 0.5,
         "layer_options": {"train_eps": False}},
        {"hidden_channels": 32, "budget": None, "batch_size": 32, "lr": 0.01, "lr_schedule": "step",
         "lr_step_size": 50, "lr_factor": 0.5, "epochs": 350, "patience": 350, "grad_clip": None},
        "5 layers including the input layer = 4 GIN layers; the paper tunes hidden {16, 32} (bio) / 64 "
        "(social), batch {32, 128} and dropout {0, 0.5} per dataset: this recipe fixes 32, 32 and 0.5 "
        "(suites override per dataset)")
_recipe("gin@errica2020", "gin", "Errica et al. 2020, A Fair Comparison of GNNs for Graph Classification "
        "(Sec. 5, Tables 3-4); github.com/diningphil/gnn-comparison config_GIN.yml",
        {"encoder": "mlp", "readout_over": "all_layers", "head": "linear", "norm": "batch_norm",
         "residual": False, "dropout": 0.0, "readout": "sum", "head_dropout": 0.5, "num_layers": 4},
        {"budget": None, "hidden_channels": 64, "batch_size": 32, "lr": 0.01, "lr_schedule": "step",
         "lr_step_size": 50, "lr_factor": 0.5, "epochs": 1000, "patience": 500, "grad_clip": None},
        "the grid (suite `grid:`) picks width/depth, batch size, train_eps, sum/mean readout and dropout; "
        "early stopping on the validation accuracy only (their grid also tries the loss); the input layer's "
        "term is Linear(pool(h)) (theirs pool(Linear(h)): same up to the bias for sum pooling), and its dropout "
        "is off at evaluation (theirs stays on: a bug in their code)")
_recipe("mlp@errica2020", "mlp", "Errica et al. 2020, structure-agnostic baseline for chemical datasets "
        "(MolecularFingerprint: an MLP on the sum of the node features)",
        {"num_layers": 0, "encoder": False, "readout": "sum", "head": "mlp", "head_dropout": 0.0},
        {"budget": None, "hidden_channels": 128, "batch_size": 32, "lr": 0.001, "weight_decay": 1e-3,
         "lr_schedule": "constant", "epochs": 5000, "patience": 500, "grad_clip": None},
        "their code applies a ReLU to the logits too; early stopping on the validation accuracy only")
_recipe("gin@ogb", "gine", _OGB_CITATION + ", GIN", _OGB, _OGB_SETTINGS,
        "none known in the architecture: per-layer bond embeddings added unmapped, and OGB's code's parameter "
        "count with OGB 1.3.6's feature vocabularies (tests/test_reproduce.py)")
_recipe("gin-virtual@ogb", "gine", _OGB_CITATION + ", GIN-virtual", {**_OGB, "virtual_node": True},
        _OGB_SETTINGS, "as gin@ogb")
_recipe("gcn@ogb", "edge_gcn", _OGB_CITATION + ", GCN", {**_OGB, "layer_options": {"edge_map": False}},
        _OGB_SETTINGS, "degrees count edges into a node (OGB's: out of it, the same on molecules)")
_recipe("gatedgcn@dwivedi2020", "gatedgcn", "Dwivedi et al. 2020, Benchmarking GNNs (ZINC, 100k budget, "
        "Table 3); github.com/graphdeeplearning/benchmarking-gnns configs/molecules_graph_regression_"
        "GatedGCN_ZINC_100k.json",
        {"num_layers": 4, "readout": "mean", "head": "mlp_readout", "norm": None, "activation": None,
         "residual": False, "dropout": 0.0, "layer_options": {"batch_norm": True, "residual": True}},
        {"hidden_channels": 70, "budget": None, "batch_size": 128, "lr": 0.001, "lr_factor": 0.5,
         "lr_patience": 10, "min_lr": 1e-5, "epochs": 1000, "patience": 100, "grad_clip": None},
        "ReduceLROnPlateau on the validation metric (theirs: the validation loss) and early stopping after 100 "
        "epochs without improvement (theirs: stop when the learning rate falls below 1e-5)")
_recipe("gps@rampasek2022", "gps", "Rampasek et al. 2022, Recipe for a General, Powerful, Scalable Graph "
        "Transformer (Peptides-func, Table 4); github.com/rampasek/GraphGPS configs/GPS/"
        "peptides-func-GPS.yaml",
        {"num_layers": 4, "heads": 4, "readout": "mean", "head": "linear", "dropout": 0.0,
         "layer_options": {"local": "gatedgcn", "attn_dropout": 0.5}},
        {"hidden_channels": 96, "budget": None, "batch_size": 128, "lr": 0.0003, "epochs": 200, "patience": 200,
         "lr_schedule": "constant", "grad_clip": 1.0},
        "no Laplacian positional encodings (GraphNet has no PE input yet) and a constant learning rate "
        "(theirs: cosine with 10 warm-up epochs); GraphGPS' GatedGCN local layer is ours")
_recipe("gcn@lrgb2022", "gcn", "Dwivedi et al. 2022, Long Range Graph Benchmark (Peptides-func, Table 3); "
        "github.com/vijaydwivedi75/lrgb configs/GCN/peptides-func-GCN.yaml",
        {"num_layers": 5, "readout": "mean", "head": "linear", "norm": "batch_norm", "residual": False,
         "dropout": 0.0},
        {"hidden_channels": 300, "budget": None, "batch_size": 128, "lr": 0.001, "epochs": 500, "patience": 500,
         "lr_factor": 0.5, "lr_patience": 20, "min_lr": 1e-5, "grad_clip": None},
        "ReduceLROnPlateau on the validation AP (GraphGym: on the validation loss); Adam (theirs AdamW with "
        "weight decay 0: the same update)")
_recipe("gcn@toenshoff2023", "gcn", "Tonshoff et al. 2023, Where Did the Gap Go? (tuned GCN, Peptides-func, "
        "Table 1); github.com/toenshoff/LRGB configs/LRGB-tuned/peptides-func-GCN.yaml",
        {"num_layers": 6, "readout": "mean", "head": "mlp", "norm": "batch_norm", "residual": True,
         "dropout": 0.1, "activation": "gelu"},
        {"hidden_channels": 235, "budget": None, "batch_size": 200, "lr": 0.001, "epochs": 250, "patience": 250,
         "lr_schedule": "constant", "grad_clip": 1.0},
        "no RWSE positional encodings, a 2-layer MLP head (theirs 3 layers), a constant learning rate (theirs "
        "cosine with 5 warm-up epochs); batch norm is GraphGym's default, not set in their file")

_recipe("mpnn@wu2018", "mpnn", "Wu et al. 2018, MoleculeNet (MPNN rows); DeepChem's MPNNModel (defaults: 100 "
        "hidden units) with molnet/preset_hyper_parameters.py's 'mpnn' settings (T = 2, M = 5, batch 16, 50 "
        "epochs, lr 0.001)",
        {"num_layers": 2, "share_weights": True, "readout": "set2set", "readout_steps": 5, "head": "mlp",
         "norm": None, "residual": False, "dropout": 0.0, "embedding_init": "xavier",
         "layer_options": {"edge_hidden": None, "aggr": "add", "root_weight": False, "act": None}},
        {"hidden_channels": 100, "budget": None, "batch_size": 16, "lr": 0.001, "weight_decay": 0.0, "epochs": 50,
         "patience": 50, "lr_schedule": "constant", "grad_clip": None},
        "the graph is whatever the dataset gives: PyG's bond graph by default, DeepChem's input (Weave pair "
        "features of every atom pair: a complete graph) with `dataset_options: {pairs: weave}` (suite "
        "moleculenet_weave.yaml); atom features are PyG's, embedded (theirs DeepChem's one-hot atom "
        "features); the edge network maps the 100-wide edge embedding (theirs the raw pair features) "
        "to a 100 x 100 matrix; atom and bond embeddings start Xavier-uniform (OGB's encoders), "
        "near the scale of DeepChem's 0/1 features (standard-normal tables sum to message entries of std ~60 at "
        "initialisation); the head is Linear(200, 100)-ReLU-Linear (theirs Dense(200, "
        "ReLU)-Dense); the test metric at the best validation epoch of 50 (theirs: after 50 epochs); settings "
        "read from DeepChem's code as recalled, not from the paper, which lists none")

_LEE2019 = {"budget": None, "hidden_channels": 128, "batch_size": 128, "lr": 0.0005, "weight_decay": 0.0001,
            "epochs": 1000, "patience": 50, "lr_schedule": "constant", "grad_clip": None, "select_by": "loss"}
"""SAGPool's training settings (the defaults of their main.py; the paper grid-searched them), which their comparison
used for every pooling method: early stopping on the validation loss, the model of the lowest one tested."""

_recipe("sagpool@lee2019", "sagpool", "Lee et al. 2019, Self-Attention Graph Pooling (Sec. 4, Table 3, "
        "SAGPool_h); github.com/inyeoplee77/SAGPool",
        {"num_blocks": 3, "ratio": 0.5, "dropout": 0.5}, _LEE2019,
        "a linear input encoder before the first GCN; at most 1000 epochs (theirs: 100,000 with the same "
        "patience of 50, which stops far earlier)")
_recipe("topkpool@lee2019", "topkpool", "Lee et al. 2019, Self-Attention Graph Pooling (Table 3, gPool_h row: "
        "the top-k pooling of Gao & Ji 2019 / Cangea et al. 2018 in SAGPool's architecture)",
        {"num_blocks": 3, "ratio": 0.5, "dropout": 0.5}, _LEE2019,
        "as sagpool@lee2019; the score is TopKPooling's projection (Cangea et al.), a tanh gate as PyG's")
_recipe("diffpool@ying2018", "diffpool", "Ying et al. 2018, Hierarchical Graph Representation Learning with "
        "Differentiable Pooling (Sec. 4.1); github.com/RexYing/diffpool",
        {"pool_ratio": 0.25, "levels": 1, "dropout": 0.0},
        {"budget": None, "hidden_channels": 30, "batch_size": 20, "lr": 0.001, "weight_decay": 0.0,
         "epochs": 1000, "patience": 50, "lr_schedule": "constant", "grad_clip": 2.0},
        "a linear input encoder; one width (their train.py: hidden 20, output 30); 1 pooling level (the paper: 2 "
        "on D&D, set levels: 2 there); clusters 25% of the largest training graph; early stopping (patience 50) "
        "on the validation accuracy, at most 1000 epochs (their code trains a fixed number)")
_recipe("mincut@bianchi2020", "mincut", "Bianchi et al. 2020, Spectral Clustering with GNNs for Graph Pooling "
        "(Sec. 4.3, graph classification); github.com/FilippoMB/Spectral-Clustering-with-Graph-Neural-Networks-"
        "for-Graph-Pooling",
        {"pool_ratio": 0.5, "levels": 2, "dropout": 0.0},
        {"budget": None, "hidden_channels": 32, "batch_size": 32, "lr": 0.0005, "weight_decay": 0.0002,
         "epochs": 500, "patience": 50, "lr_schedule": "constant", "grad_clip": None, "select_by": "loss"},
        "a linear input encoder; a GCN first layer (their MP layer is a GCN with skip connections); a 3-layer MLP "
        "head (theirs one dense layer); batch 32 (theirs 1); weight decay 2e-4 on every weight (theirs an L2 "
        "penalty 1e-4 * |W|^2, the same gradient, on the message-passing and pooling weights only); early "
        "stopping on the validation loss as theirs")

RECIPES: dict[str, tuple[Recipe, ...]] = {model: tuple(found) for model, found in _BY_MODEL.items()}
"""Recipes by the registered model they configure."""
