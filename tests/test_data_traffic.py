"""Traffic forecasting: masked metrics on hand-computed values, DCRNN's scaler and window split, the staged sensor
graphs (Gaussian kernel rebuilt from distances), the JSON series, and METR-LA / PEMS04 fixtures in the official
HDF5 / npz formats, with bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from gdl_graphs.data import load_benchmark
from gdl_graphs.data.traffic import (
    fit_scaler, gaussian_kernel_adjacency, masked_mae, masked_mape, masked_mse, masked_rmse, read_dcrnn_adjacency,
    read_distance_csv, window_split_sizes,
)
from tests.fixtures.formats import write_astgcn, write_dcrnn_h5, write_dcrnn_pickle
from tests.fixtures.staged import require_staged

# ------------------------------------------------------------------------------------------------------ metrics


def test_masked_metrics_by_hand():
    pred, target = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.0, 2.0, 5.0, 2.0])
    # null 0: the first entry is missing; errors on the rest are 0, 2, 2
    assert math.isclose(masked_mae(pred, target), 4 / 3, rel_tol=1e-6)
    assert math.isclose(masked_mse(pred, target), 8 / 3, rel_tol=1e-6)
    assert math.isclose(masked_rmse(pred, target), math.sqrt(8 / 3), rel_tol=1e-6)
    assert math.isclose(masked_mape(pred, target), (0 + 2 / 5 + 2 / 2) / 3, rel_tol=1e-6)
    # no missing-value code: every entry counts (MAPE still skips the zero target)
    assert math.isclose(masked_mae(pred, target, null_value=None), 5 / 4, rel_tol=1e-6)
    assert math.isclose(masked_mape(pred, target, null_value=None), 1.4 / 3, rel_tol=1e-6)
    # NaN targets are always missing; all-missing gives NaN rather than a fake 0
    assert math.isclose(masked_mae(pred, torch.tensor([float("nan"), 2.0, 5.0, 2.0]), None), 4 / 3, rel_tol=1e-6)
    assert torch.isnan(masked_mae(pred, torch.zeros(4)))


def test_masked_mae_equals_dcrnn_formula():
    rng = np.random.default_rng(0)
    pred, label = rng.normal(50, 10, (64, 12, 7)), rng.normal(50, 10, (64, 12, 7))
    label[rng.random(label.shape) < 0.1] = 0.0
    mask = (label != 0).astype(np.float32)
    mask /= mask.mean()
    dcrnn = np.mean(np.nan_to_num(np.abs(pred - label) * mask))  # DCRNN lib/metrics.py masked_mae_np
    assert math.isclose(float(masked_mae(torch.from_numpy(pred), torch.from_numpy(label))), dcrnn, rel_tol=1e-5)


# ---------------------------------------------------------------------------------------------- scaler, windows


def test_fit_scaler_equals_statistics_of_explicit_training_windows():
    rng = np.random.default_rng(1)
    values = rng.normal(60, 5, (200, 3))
    num_train, input_len = 120, 12
    windows = np.stack([values[k:k + input_len] for k in range(num_train)])  # DCRNN's x_train[..., 0]
    scaler = fit_scaler(values, num_train, input_len)
    assert math.isclose(scaler.mean, windows.mean(), rel_tol=1e-12)
    assert math.isclose(scaler.std, windows.std(), rel_tol=1e-12)
    assert np.allclose(scaler.inverse_transform(scaler.transform(values)), values)


def test_window_split_sizes_match_dcrnn_published_shapes():
    assert window_split_sizes(34272, 12, 12, (0.7, 0.1, 0.2)) == (23974, 3425, 6850)  # METR-LA
    assert window_split_sizes(52116, 12, 12, (0.7, 0.1, 0.2)) == (36465, 5209, 10419)  # PEMS-BAY
    with pytest.raises(ValueError, match="too few"):
        window_split_sizes(26, 12, 12, (0.7, 0.1, 0.2))


# -------------------------------------------------------------------------------------------- METR-LA fixture

SENSORS = ["773869", "767541", "767542", "717447"]


def write_metr_la(root, values, columns=None, adj=None):
    folder = root / "traffic" / "METR-LA"
    adj = np.eye(4, dtype=np.float32) + np.diag([0.5, 0.4, 0.3], 1) if adj is None else adj
    write_dcrnn_pickle(folder / "adj_mx.pkl", SENSORS, adj)
    write_dcrnn_h5(folder / "metr-la.h5", values, columns or SENSORS)
    return folder


def test_metr_la_fixture_windows_scaler_and_graph(tmp_path):
    steps = 576  # two days of 5-minute readings
    values = 40 + (np.arange(steps)[:, None] % 288) / 10 + np.arange(4)[None, :]
    values[100:110, 2] = 0.0  # missing readings
    order = [2, 0, 3, 1]  # the h5 columns are in another order than the adjacency
    write_metr_la(tmp_path, values[:, order], columns=[SENSORS[i] for i in order])
    bench = load_benchmark("metr-la", root=tmp_path, verify=False)  # the fixture's adj_mx.pkl is not DCRNN's
    spec = bench.forecast
    assert bench.split_sizes() == window_split_sizes(steps, 12, 12, (0.7, 0.1, 0.2)) == (387, 55, 111)
    assert (bench.task, bench.metric, bench.num_features, spec.num_nodes, spec.null_value) == \
        ("forecasting", "mae", 2, 4, 0.0)
    assert spec.edge_index.tolist() == [[0, 0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 2, 3, 3]]
    assert torch.allclose(spec.edge_weight, torch.tensor([1, 0.5, 1, 0.4, 1, 0.3, 1]))
    x, y = bench.test[5]
    start = 387 + 55 + 5
    assert x.shape == (12, 4, 2) and y.shape == (12, 4)
    assert torch.allclose(y, torch.tensor(values[start + 12:start + 24], dtype=torch.float))  # original units
    assert torch.allclose(spec.scaler.inverse_transform(x[..., 0]), torch.tensor(values[start:start + 12],
                                                                                 dtype=torch.float), atol=1e-4)
    assert torch.allclose(x[:, 0, 1], torch.tensor((np.arange(start, start + 12) % 288) / 288, dtype=torch.float))
    windows = np.stack([values[k:k + 12] for k in range(387)])
    assert math.isclose(spec.scaler.mean, windows.mean(), rel_tol=1e-9)  # fitted on training inputs only
    assert bench.train.span == slice(0, 387 + 23) and bench.test.span.stop == steps
    xb, yb = next(iter(DataLoader(bench.train, batch_size=8)))
    assert xb.shape == (8, 12, 4, 2) and yb.shape == (8, 12, 4)


def test_metr_la_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metr-la.h5 is missing.*liyaguang/DCRNN"):
        load_benchmark("METR-LA", root=tmp_path)
    values = np.full((100, 4), 50.0)
    write_metr_la(tmp_path, values, columns=SENSORS[:3] + ["999999"])
    with pytest.raises(ValueError, match=r"metr-la.h5: sensor columns do not match adj_mx.pkl: 1 unknown \['999999'\]"):
        load_benchmark("METR-LA", root=tmp_path, verify=False)
    values[3, 1] = np.nan
    write_metr_la(tmp_path, values)
    with pytest.warns(UserWarning, match="1 NaN readings .* treated as missing"):
        bench = load_benchmark("METR-LA", root=tmp_path, verify=False)
    assert bench.info["nan_readings"] == 1 and float(bench.train[0][0][3, 1, 0]) == \
        pytest.approx(float(bench.forecast.scaler.transform(0.0)))
    (tmp_path / "traffic/METR-LA/metr-la.h5").unlink()
    pd.DataFrame(values).to_hdf(tmp_path / "traffic/METR-LA/metr-la.h5", key="speeds")
    with pytest.raises(ValueError, match=r"no key 'df' \(keys: \['/speeds'\]\)"):
        load_benchmark("METR-LA", root=tmp_path, verify=False)


def test_graph_file_is_verified(tmp_path):
    """The fixture's adj_mx.pkl sits where DCRNN's does, so its checksum is refused unless opted out."""
    from gdl_graphs.data import ChecksumError

    write_metr_la(tmp_path, np.full((100, 4), 50.0))
    with pytest.raises(ChecksumError, match=r"adj_mx.pkl: sha256 .* expected a35687c6"):
        load_benchmark("METR-LA", root=tmp_path)


@pytest.mark.data
def test_metr_la_with_the_real_sensor_graph(staged_root, tmp_path):
    """The staged DCRNN graph files plus a short series in the official h5 format load as METR-LA."""
    require_staged(staged_root, "traffic/METR-LA/adj_mx.pkl")
    folder = tmp_path / "traffic" / "METR-LA"
    folder.mkdir(parents=True)
    for name in ("adj_mx.pkl", "graph_sensor_ids.txt", "graph_sensor_locations.csv"):
        (folder / name).write_bytes((staged_root / "traffic/METR-LA" / name).read_bytes())
    ids = (folder / "graph_sensor_ids.txt").read_text().strip().split(",")
    values = np.random.default_rng(3).uniform(0, 70, (240, 207))
    write_dcrnn_h5(folder / "metr-la.h5", values, ids)
    bench = load_benchmark("METR-LA", root=tmp_path)  # graph files verified against their SHA-256
    assert bench.forecast.num_nodes == 207 and bench.forecast.edge_index.size(1) == 1722
    assert bench.split_sizes() == window_split_sizes(240, 12, 12, (0.7, 0.1, 0.2))


# --------------------------------------------------------------------------------------------- PEMS04 fixture


def test_pems04_fixture(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 400, (300, 5, 3)).astype(np.float32)
    edges = [(0, 1, 100.0), (1, 2, 50.5), (1, 2, 50.5), (3, 4, 10.0)]  # a repeated row, as in PEMS08
    write_astgcn(tmp_path / "traffic/PEMS04", "PEMS04", data, edges)
    bench = load_benchmark("pems04", root=tmp_path, verify=False)
    assert bench.split_sizes() == window_split_sizes(300, 12, 12, (0.6, 0.2, 0.2)) == (166, 56, 55)
    assert bench.num_features == 1 and bench.forecast.edge_index.tolist() == [[0, 1, 3], [1, 2, 4]]
    x, y = bench.val[0]
    assert torch.allclose(y, torch.from_numpy(data[166 + 12:166 + 24, :, 0]))  # channel 0: flow


def test_distance_csv_bad_input(tmp_path):
    path = tmp_path / "distance.csv"
    path.write_text("a,b,c\n0,1,2.0\n")
    with pytest.raises(ValueError, match=rf"{path}: expected the header from,to,cost"):
        read_distance_csv(path, 5)
    path.write_text("from,to,cost\n")
    with pytest.raises(ValueError, match="no edges"):
        read_distance_csv(path, 5)
    path.write_text("from,to,cost\n0,7,1.0\n")
    with pytest.raises(ValueError, match="span"):
        read_distance_csv(path, 5)


# ------------------------------------------------------------------------------------------------- staged data


@pytest.mark.data
def test_staged_dcrnn_graphs_and_gaussian_kernel(staged_root):
    require_staged(staged_root, "traffic/METR-LA/adj_mx.pkl", "traffic/PEMS-BAY/adj_mx_bay.pkl")
    ids, id_to_ind, adj = read_dcrnn_adjacency(staged_root / "traffic/METR-LA/adj_mx.pkl")
    assert len(ids) == 207 and adj.shape == (207, 207) and int((adj > 0).sum()) == 1722
    listed = (staged_root / "traffic/METR-LA/graph_sensor_ids.txt").read_text().strip().split(",")
    assert ids == listed and all(id_to_ind[s] == i for i, s in enumerate(ids))
    ids, _, adj_bay = read_dcrnn_adjacency(staged_root / "traffic/PEMS-BAY/adj_mx_bay.pkl")
    assert len(ids) == 325 and int((adj_bay > 0).sum()) == 2694
    distances = pd.read_csv(staged_root / "traffic/PEMS-BAY/distances_bay_2017.csv", header=None,
                            names=["from", "to", "cost"])
    rebuilt = gaussian_kernel_adjacency(distances, ids)
    assert np.abs(rebuilt - adj_bay).max() < 1e-6 and int((rebuilt > 0).sum()) == 2694


@pytest.mark.data
@pytest.mark.parametrize("name, nodes, rows, edges", [("PEMS04", 307, 340, 340), ("PEMS08", 170, 295, 277)])
def test_staged_astgcn_graphs(staged_root, name, nodes, rows, edges):
    require_staged(staged_root, f"traffic/{name}/distance.csv")
    path = staged_root / f"traffic/{name}/distance.csv"
    assert len(pd.read_csv(path)) == rows
    edge_index, cost = read_distance_csv(path, nodes)
    assert edge_index.size(1) == edges and int(edge_index.max()) == nodes - 1 and (cost > 0).all()


@pytest.mark.data
@pytest.mark.parametrize("name, nodes, steps, edges, sizes", [
    ("MontevideoBus", 675, 744, 690, (518, 74, 148)),
    ("Chickenpox", 20, 521, 102, (362, 52, 103)),
    ("PedalMe", 15, 35, 225, (22, 3, 6)),
])
def test_staged_temporal_json(staged_root, name, nodes, steps, edges, sizes):
    require_staged(staged_root, f"traffic/{name}")
    bench = load_benchmark(name)
    spec = bench.forecast
    assert (spec.num_nodes, bench.info["num_steps"], spec.edge_index.size(1)) == (nodes, steps, edges)
    assert bench.split_sizes() == sizes and spec.null_value is None and bench.metric == "mse"
    x, y = bench.train[0]
    assert x.shape == (4, nodes, 1) and y.shape == (1, nodes)
