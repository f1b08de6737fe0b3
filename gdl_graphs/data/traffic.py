"""Spatio-temporal forecasting benchmarks: METR-LA / PEMS-BAY (DCRNN files), PEMS04 / PEMS08 (ASTGCN files) and
the PyG-Temporal JSON series (Montevideo bus, Chickenpox, PedalMe).

The protocol follows DCRNN (Li et al. 2018): sliding windows of ``input_len`` steps in, ``horizon`` steps out;
a chronological split of the windows (train first, test last); a standard scaler fitted on the training inputs
only; masked MAE / RMSE / MAPE where a reading of 0 means "missing". Readers and metrics are hand-written because
no maintained library covers these file formats with these exact rules (PyG-Temporal reads only its own JSON/npy).
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gdl_graphs.data.benchmark import Benchmark, ForecastSpec
from gdl_graphs.data.checksums import known_files, require_file, verify_files

# ----------------------------------------------------------------------------------------------------- metrics


def _mask(target: Tensor, null_value: float | None) -> Tensor:
    mask = ~torch.isnan(target)
    if null_value is not None and not np.isnan(null_value):
        mask &= target != null_value
    return mask


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    if mask.sum() == 0:
        return torch.tensor(float("nan"), dtype=values.dtype)
    return values[mask].mean()


def masked_mae(pred, target, null_value: float | None = 0.0) -> Tensor:
    """Mean absolute error over entries whose target is not ``null_value`` (nor NaN); NaN if none is left.

    Equal to DCRNN's ``masked_mae`` (which rescales the mask to mean 1 and averages over all entries).
    """
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    return _masked_mean((pred - target).abs(), _mask(target, null_value))


def masked_mse(pred, target, null_value: float | None = 0.0) -> Tensor:
    """Mean squared error over entries whose target is not ``null_value`` (nor NaN)."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    return _masked_mean((pred - target).square(), _mask(target, null_value))


def masked_rmse(pred, target, null_value: float | None = 0.0) -> Tensor:
    """Square root of :func:`masked_mse` (DCRNN's ``masked_rmse``)."""
    return masked_mse(pred, target, null_value).sqrt()


def masked_mape(pred, target, null_value: float | None = 0.0) -> Tensor:
    """Mean absolute percentage error as a fraction (multiply by 100 for %), over entries whose target is not
    ``null_value``; entries with a zero target are always left out (the ratio is undefined there)."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    mask = _mask(target, null_value) & (target != 0)
    return _masked_mean(((pred - target) / torch.where(mask, target, torch.ones_like(target))).abs(), mask)


# ------------------------------------------------------------------------------------------------------ scaler


class StandardScaler:
    """``(x - mean) / std`` with its inverse, for tensors and arrays alike (a two-number scaler that moves with
    the benchmark; scikit-learn's would need NumPy round trips in the training loop)."""

    def __init__(self, mean: float, std: float):
        if not np.isfinite(mean) or not np.isfinite(std) or std <= 0:
            raise ValueError(f"StandardScaler: need a finite mean and a positive std, got mean={mean}, std={std}")
        self.mean, self.std = float(mean), float(std)

    def transform(self, x):
        return (x - self.mean) / self.std

    def inverse_transform(self, x):
        return x * self.std + self.mean

    def __repr__(self) -> str:
        return f"StandardScaler(mean={self.mean:.6g}, std={self.std:.6g})"


def fit_scaler(values: np.ndarray, num_train_windows: int, input_len: int) -> StandardScaler:
    """Mean and std of the training *input windows* (what DCRNN computes on ``x_train[..., 0]``), without building
    them: step ``t`` is weighted by the number of training windows whose input covers it."""
    last = num_train_windows + input_len - 1  # steps 0 .. last-1 appear in training inputs
    t = np.arange(last)
    weight = (np.minimum(t, num_train_windows - 1) - np.maximum(0, t - input_len + 1) + 1).astype(np.float64)
    block = values[:last].astype(np.float64).reshape(last, -1)
    total = weight.sum() * block.shape[1]
    mean = float((weight[:, None] * block).sum() / total)
    std = float(np.sqrt((weight[:, None] * (block - mean) ** 2).sum() / total))
    return StandardScaler(mean, std)


# ----------------------------------------------------------------------------------------------------- windows


def window_split_sizes(num_steps: int, input_len: int, horizon: int, fractions: Sequence[float]
                       ) -> tuple[int, int, int]:
    """Number of train / val / test windows: ``num_steps - input_len - horizon + 1`` windows, test
    ``round(f_test n)`` last, train ``round(f_train n)`` first, val the rest (DCRNN's rule)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    n = num_steps - input_len - horizon + 1
    num_test, num_train = round(n * fractions[2]), round(n * fractions[0])
    num_val = n - num_test - num_train
    if min(num_train, num_val, num_test) < 1:
        raise ValueError(f"{num_steps} time steps give {n} windows of {input_len} in + {horizon} out: too few for a "
                         f"{tuple(fractions)} split (train {num_train}, val {num_val}, test {num_test})")
    return num_train, num_val, num_test


class WindowDataset(Dataset):
    """Sliding windows over one series. Item ``i`` is ``(x, y)``: ``x = features[s + i : s + i + input_len]``
    ``[input_len, N, F]`` and ``y = target[s + i + input_len : s + i + input_len + horizon]`` ``[horizon, N]``
    (views; the default ``DataLoader`` collate stacks them to ``[B, ...]``)."""

    def __init__(self, features: Tensor, target: Tensor, start: int, length: int, input_len: int, horizon: int):
        self.features, self.target = features, target
        self.start, self.length, self.input_len, self.horizon = start, length, input_len, horizon

    def __len__(self) -> int:
        return self.length

    @property
    def span(self) -> slice:
        """The time steps these windows cover (inputs and targets), e.g. ``target[span]`` is the training series
        for fitting a historical-average baseline."""
        return slice(self.start, self.start + self.length + self.input_len + self.horizon - 1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not -self.length <= i < self.length:
            raise IndexError(f"window {i} out of range for {self.length} windows")
        t = self.start + (i % self.length)
        return self.features[t:t + self.input_len], self.target[t + self.input_len:t + self.input_len + self.horizon]


def forecasting_benchmark(name: str, values: np.ndarray, edge_index: Tensor, edge_weight: Tensor, *,
                          extra_features: np.ndarray | None = None, input_len: int = 12, horizon: int = 12,
                          fractions: Sequence[float] = (0.7, 0.1, 0.2), null_value: float | None = 0.0,
                          metric: str = "mae", source: str = "", info: dict | None = None) -> Benchmark:
    """Build a forecasting :class:`Benchmark` from a ``[T, N]`` series and a static graph.

    Channel 0 of ``x`` is the series standardised with :func:`fit_scaler`; ``extra_features`` ``[T, N, F']``
    (e.g. time of day) are appended unscaled. NaN readings become ``null_value`` (counted in a warning) when it is
    set, and are an error otherwise.
    """
    values = np.array(values, dtype=np.float64)  # a writable copy
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"{name}: expected a [time, nodes] series from {source}, got shape {values.shape}")
    num_nodes = values.shape[1]
    if edge_index.numel() == 0:
        raise ValueError(f"{name}: the sensor graph from {source} has no edges")
    if int(edge_index.max()) >= num_nodes or int(edge_index.min()) < 0:
        raise ValueError(f"{name}: edge indices reach {int(edge_index.max())} but the series has {num_nodes} nodes")
    info = dict(info or {})
    nan = np.isnan(values)
    if nan.any():
        if null_value is None:
            raise ValueError(f"{name}: {int(nan.sum())} NaN readings in {source} and this dataset has no "
                             f"missing-value code")
        warnings.warn(f"{name}: {int(nan.sum())} NaN readings in {source} treated as missing ({null_value})",
                      stacklevel=2)
        values = np.where(nan, null_value, values)
        info["nan_readings"] = int(nan.sum())
    num_train, num_val, num_test = window_split_sizes(len(values), input_len, horizon, fractions)
    scaler = fit_scaler(values, num_train, input_len)
    channels = [scaler.transform(values)[..., None]]
    if extra_features is not None:
        channels.append(np.asarray(extra_features, dtype=np.float64).reshape(len(values), num_nodes, -1))
    features = torch.from_numpy(np.concatenate(channels, axis=-1)).float()
    target = torch.from_numpy(values).float()
    parts = [WindowDataset(features, target, start, length, input_len, horizon)
             for start, length in ((0, num_train), (num_train, num_val), (num_train + num_val, num_test))]
    spec = ForecastSpec(edge_index=edge_index, edge_weight=edge_weight, num_nodes=num_nodes, input_len=input_len,
                        horizon=horizon, scaler=scaler, null_value=null_value)
    info.update(split=f"chronological windows {tuple(fractions)}", num_steps=len(values), source=source)
    return Benchmark(name=name, task="forecasting", metric=metric, train=parts[0], val=parts[1], test=parts[2],
                     num_features=features.size(-1), num_targets=1, forecast=spec, info=info)


# ---------------------------------------------------------------------------------------------------- adjacency


def read_dcrnn_adjacency(path: Path) -> tuple[list[str], dict[str, int], np.ndarray]:
    """DCRNN's ``adj_mx*.pkl`` (a Python-2 pickle): ``(sensor_ids, sensor_id_to_ind, adj_mx [N, N])``."""
    try:
        with open(path, "rb") as f:
            sensor_ids, id_to_ind, adj = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: not a DCRNN adjacency pickle (sensor_ids, sensor_id_to_ind, adj_mx): {err}"
                         ) from err
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape != (len(sensor_ids), len(sensor_ids)):
        raise ValueError(f"{path}: adjacency of shape {adj.shape} for {len(sensor_ids)} sensors")
    return [str(s) for s in sensor_ids], {str(k): int(v) for k, v in id_to_ind.items()}, adj


def gaussian_kernel_adjacency(distances: pd.DataFrame, sensor_ids: Sequence[str], normalized_k: float = 0.1
                              ) -> np.ndarray:
    """DCRNN's ``gen_adj_mx``: ``W_ij = exp(-(d_ij / sigma)^2)`` with sigma the std of the listed distances
    between the given sensors, entries below ``normalized_k`` set to 0. ``distances`` has columns
    ``from, to, cost``; rows naming other sensors are ignored."""
    missing = {"from", "to", "cost"} - set(distances.columns)
    if missing:
        raise ValueError(f"distance table needs columns from, to, cost; missing {sorted(missing)}")
    index = {str(s): i for i, s in enumerate(sensor_ids)}
    dist = np.full((len(index), len(index)), np.inf, dtype=np.float32)
    for src, dst, cost in zip(distances["from"].astype(str), distances["to"].astype(str), distances["cost"]):
        if src in index and dst in index:
            dist[index[src], index[dst]] = cost
    finite = dist[~np.isinf(dist)]
    if finite.size == 0:
        raise ValueError("no distance row connects two of the given sensors")
    adj = np.exp(-np.square(dist / finite.std()))
    adj[adj < normalized_k] = 0
    return adj


def read_distance_csv(path: Path, num_nodes: int) -> tuple[Tensor, Tensor]:
    """ASTGCN's ``distance.csv`` (``from,to,cost``, 0-based node indices): directed ``edge_index`` and distances,
    duplicate rows dropped."""
    frame = pd.read_csv(path)
    if list(frame.columns[:3]) != ["from", "to", "cost"]:
        raise ValueError(f"{path}: expected the header from,to,cost, found {list(frame.columns)}")
    frame = frame.drop_duplicates(subset=["from", "to"])
    if frame.empty:
        raise ValueError(f"{path}: no edges")
    edges = frame[["from", "to"]].to_numpy()
    if edges.min() < 0 or edges.max() >= num_nodes:
        raise ValueError(f"{path}: node indices span [{edges.min()}, {edges.max()}] but the series has {num_nodes} "
                         f"nodes")
    return torch.from_numpy(edges.T.astype(np.int64)).contiguous(), torch.tensor(frame["cost"].to_numpy(),
                                                                                   dtype=torch.float)


def dense_to_edges(adj: np.ndarray) -> tuple[Tensor, Tensor]:
    """Non-zero entries of a dense ``[N, N]`` matrix as ``edge_index`` (row = source) and ``edge_weight``."""
    rows, cols = np.nonzero(adj)
    return (torch.from_numpy(np.stack([rows, cols]).astype(np.int64)),
            torch.from_numpy(adj[rows, cols].astype(np.float32)))


# ------------------------------------------------------------------------------------------------------ loaders

DCRNN = {"METR-LA": ("metr-la.h5", "adj_mx.pkl"), "PEMS-BAY": ("pems-bay.h5", "adj_mx_bay.pkl")}
DCRNN_URL = "https://github.com/liyaguang/DCRNN#data-preparation (Google Drive / Baidu links)"
ASTGCN = {"PEMS04": "PEMS04.npz", "PEMS08": "PEMS08.npz"}
ASTGCN_URL = "https://github.com/Davidham3/ASTGCN-2019-mxnet/tree/master/data"


def read_h5_series(path: Path) -> pd.DataFrame:
    """DCRNN's pandas HDF5 file: key ``df``, a ``[T, N]`` frame with a ``DatetimeIndex`` and sensor-id columns."""
    try:
        frame = pd.read_hdf(path, key="df")
    except KeyError as err:
        with pd.HDFStore(path, mode="r") as store:
            keys = store.keys()
        raise ValueError(f"{path}: no key 'df' (keys: {keys})") from err
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError(f"{path}: key 'df' must be a DataFrame with a DatetimeIndex")
    return frame


def load_dcrnn(root: Path, name: str, input_len: int = 12, horizon: int = 12,
               fractions: Sequence[float] = (0.7, 0.1, 0.2), time_in_day: bool = True, verify: bool = True
               ) -> Benchmark:
    """METR-LA (207 sensors, 34,272 steps of 5 min) or PEMS-BAY (325 sensors, 52,116 steps): speed forecasting,
    DCRNN's protocol. Files under ``<root>/traffic/<name>/``: ``metr-la.h5`` / ``pems-bay.h5`` and DCRNN's
    ``adj_mx.pkl`` / ``adj_mx_bay.pkl`` (the thresholded Gaussian kernel graph). ``x`` channels: scaled speed and,
    with ``time_in_day``, the time of day in [0, 1) as DCRNN."""
    h5_name, pkl_name = DCRNN[name]
    folder = root / "traffic" / name
    if verify:
        verify_files(root, known_files(f"traffic/{name}"))
    hint = (f"Download it from {DCRNN_URL} into {folder}, or copy a mirror with "
            f"`gdl-bench data prepare {name} --from DIR`.")
    h5 = require_file(folder / h5_name, name, hint)
    sensor_ids, _, adj = read_dcrnn_adjacency(require_file(folder / pkl_name, name, hint))
    frame = read_h5_series(h5)
    columns = [str(c) for c in frame.columns]
    if sorted(columns) != sorted(sensor_ids):
        extra, absent = sorted(set(columns) - set(sensor_ids)), sorted(set(sensor_ids) - set(columns))
        raise ValueError(f"{h5}: sensor columns do not match {pkl_name}: {len(extra)} unknown {extra[:5]}, "
                         f"{len(absent)} absent {absent[:5]}")
    frame.columns = columns
    frame = frame[sensor_ids]  # the adjacency's node order
    extra_features = None
    if time_in_day:
        day = ((frame.index - frame.index.normalize()) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)
        extra_features = np.broadcast_to(day[:, None, None], (len(frame), len(sensor_ids), 1))
    edge_index, edge_weight = dense_to_edges(adj)
    return forecasting_benchmark(name, frame.to_numpy(), edge_index, edge_weight, extra_features=extra_features,
                                 input_len=input_len, horizon=horizon, fractions=fractions, null_value=0.0,
                                 metric="mae", source=str(h5), info={"graph": pkl_name})


def load_astgcn(root: Path, name: str, input_len: int = 12, horizon: int = 12,
                fractions: Sequence[float] = (0.6, 0.2, 0.2), verify: bool = True) -> Benchmark:
    """PEMS04 (307 sensors) / PEMS08 (170 sensors): traffic-flow forecasting from ASTGCN's ``PEMS0X.npz`` (key
    ``data`` ``[T, N, 3]``: flow, occupancy, speed; channel 0 is forecast) and ``distance.csv``. Chronological
    60/20/20 split as ASTGCN / STSGCN / AGCRN; binary directed graph from the distance list (``edge_weight`` 1)."""
    folder = root / "traffic" / name
    if verify:
        verify_files(root, known_files(f"traffic/{name}"))
    hint = (f"Download it from {ASTGCN_URL} into {folder}, or copy a mirror with "
            f"`gdl-bench data prepare {name} --from DIR`.")
    npz = require_file(folder / ASTGCN[name], name, hint)
    with np.load(npz) as archive:
        if "data" not in archive.files:
            raise ValueError(f"{npz}: no array 'data' (arrays: {archive.files})")
        data = archive["data"]
    if data.ndim != 3:
        raise ValueError(f"{npz}: 'data' must be [time, nodes, features], got shape {data.shape}")
    edge_index, _ = read_distance_csv(require_file(folder / "distance.csv", name, hint), data.shape[1])
    return forecasting_benchmark(name, data[..., 0], edge_index, torch.ones(edge_index.size(1)), input_len=input_len,
                                 horizon=horizon, fractions=fractions, null_value=0.0, metric="mae", source=str(npz),
                                 info={"graph": "distance.csv (binary, directed)"})


TEMPORAL_JSON = {"MontevideoBus": "montevideo_bus.json", "Chickenpox": "chickenpox.json",
                 "PedalMe": "pedalme_london.json"}
TEMPORAL_URL = "https://github.com/benedekrozemberczki/pytorch_geometric_temporal/tree/master/dataset"


def read_temporal_json(path: Path, name: str) -> tuple[np.ndarray, Tensor, Tensor]:
    """A PyG-Temporal JSON file -> ``(series [T, N], edge_index, edge_weight)``.

    Montevideo bus is networkx node-link JSON (node ``y``: hourly inflow; link ``weight``); Chickenpox has
    ``edges`` and ``FX`` ``[T][N]`` (unit weights); PedalMe has ``edges``, ``weights`` and ``X`` ``[T][N]``.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    required = {"MontevideoBus": ("nodes", "links"), "Chickenpox": ("edges", "FX"),
                "PedalMe": ("edges", "weights", "X")}[name]
    missing = [k for k in required if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing keys {missing} of the {name} format (found {sorted(raw)})")
    if name == "MontevideoBus":
        import networkx as nx

        graph = nx.node_link_graph(raw, edges="links")
        nodes = list(graph.nodes)
        index = {v: i for i, v in enumerate(nodes)}
        series = np.array([graph.nodes[v]["y"] for v in nodes], dtype=np.float64).T
        edges = [(index[u], index[v], w) for u, v, w in graph.edges(data="weight", default=1.0)]
        edge_index = torch.tensor([[u for u, _, _ in edges], [v for _, v, _ in edges]], dtype=torch.long)
        edge_weight = torch.tensor([w for _, _, w in edges], dtype=torch.float)
    else:
        series = np.array(raw["FX" if name == "Chickenpox" else "X"], dtype=np.float64)
        edge_index = torch.tensor(raw["edges"], dtype=torch.long).t().contiguous()
        weights = raw.get("weights") if name == "PedalMe" else None
        edge_weight = (torch.tensor(weights, dtype=torch.float) if weights is not None
                       else torch.ones(edge_index.size(1)))
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.size(1) != edge_weight.numel():
        raise ValueError(f"{path}: malformed edge list ({tuple(edge_index.shape)} edges, {edge_weight.numel()} "
                         f"weights)")
    return series, edge_index, edge_weight


def load_temporal_json(root: Path, name: str, input_len: int = 4, horizon: int = 1,
                       fractions: Sequence[float] = (0.7, 0.1, 0.2), verify: bool = True) -> Benchmark:
    """Montevideo bus (675 stops x 744 h), Chickenpox (20 counties x 521 weeks), PedalMe (15 areas x 35 weeks),
    as PyG-Temporal ships them; ``input_len`` 4 lags and 1 step ahead as PyG-Temporal's loaders. Zeros are real
    values here, so metrics are unmasked (``null_value`` None) and the headline metric is MSE."""
    folder = root / "traffic" / name
    if verify:
        verify_files(root, known_files(f"traffic/{name}"))
    path = require_file(folder / TEMPORAL_JSON[name], name,
                        f"Download it from {TEMPORAL_URL} into {folder}, or copy a mirror with "
                        f"`gdl-bench data prepare {name} --from DIR`.")
    series, edge_index, edge_weight = read_temporal_json(path, name)
    return forecasting_benchmark(name, series, edge_index, edge_weight, input_len=input_len, horizon=horizon,
                                 fractions=fractions, null_value=None, metric="mse", source=str(path))


__all__ = ["masked_mae", "masked_mse", "masked_rmse", "masked_mape", "StandardScaler", "fit_scaler",
           "window_split_sizes", "WindowDataset", "forecasting_benchmark", "read_dcrnn_adjacency",
           "gaussian_kernel_adjacency", "read_distance_csv", "dense_to_edges", "read_h5_series",
           "read_temporal_json", "load_dcrnn", "load_astgcn", "load_temporal_json"]
