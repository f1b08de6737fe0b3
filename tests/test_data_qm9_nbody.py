"""The two EGNN data sets: the charged-particle N-body simulator and dataset (determinism, physics, fields, cache,
registry), and QM9 from qm9pack (known molecules in PyG's units, fast collation, EGNN split, registry)."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

from gdl_graphs.data import load_benchmark, require_data
from gdl_graphs.data import synthetic
from gdl_graphs.data.synthetic import NBodyDataset, simulate_charged_particles, total_energy


# ---------------------------------------------------------------------------------------------------------------
# N-body simulator
# ---------------------------------------------------------------------------------------------------------------
def naive_simulation(num, seed, input_step, target_step, dt=1e-3, max_force=100.0):
    """Kipf et al.'s ChargedParticlesSim loop (all-pairs [S, N, N, d] forces, kick-drift leapfrog), same draws."""
    rng = np.random.default_rng(seed)
    charges = rng.choice(np.array([-1.0, 1.0]), size=(num, 5))
    pos = rng.standard_normal((num, 5, 3))
    vel = rng.standard_normal((num, 5, 3))
    vel *= 0.5 / np.linalg.norm(vel, axis=-1, keepdims=True)

    eye = np.eye(5, dtype=bool)

    def forces(p):
        diff = p[:, :, None, :] - p[:, None, :, :]                          # x_i - x_j, [S, N, N, d]
        dist = np.where(eye, 1.0, np.linalg.norm(diff, axis=-1))
        size = np.where(eye, 0.0, charges[:, :, None] * charges[:, None, :] / dist ** 3)
        f = (size[..., None] * diff).sum(axis=2)
        return f if max_force is None else np.clip(f, -max_force, max_force)

    out = {"charges": charges}
    vel = vel + dt * forces(pos)
    for step in range(1, target_step + 1):
        pos = pos + dt * vel
        if step == input_step:
            out["pos"], out["vel"] = pos.copy(), vel.copy()
        if step == target_step:
            out["target_pos"], out["target_vel"] = pos.copy(), vel.copy()
            break
        vel = vel + dt * forces(pos)
    return out


@pytest.mark.parametrize("max_force", [100.0, None])
def test_simulator_matches_the_naive_all_pairs_loop(max_force):
    ours = simulate_charged_particles(40, 7, input_step=60, target_step=150, max_force=max_force)
    naive = naive_simulation(40, 7, 60, 150, max_force=max_force)
    assert set(ours) == set(naive)
    for key in naive:
        np.testing.assert_allclose(ours[key], naive[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_simulator_is_deterministic_and_seeded():
    a = simulate_charged_particles(20, 3, input_step=10, target_step=30)
    b = simulate_charged_particles(20, np.random.default_rng(3), input_step=10, target_step=30)
    c = simulate_charged_particles(20, 4, input_step=10, target_step=30)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["pos"], c["pos"])
    assert a["charges"].shape == (20, 5) and set(np.unique(a["charges"])) <= {-1.0, 1.0}
    for key in ("pos", "vel", "target_pos", "target_vel"):
        assert a[key].shape == (20, 5, 3) and a[key].dtype == np.float64 and np.isfinite(a[key]).all()


def test_simulator_physics_momentum_exact_energy_approximately_conserved():
    # Without the force clip, pair forces cancel exactly (Newton's third law): total momentum is conserved and the
    # centre of mass moves in a straight line; unit masses.
    free = simulate_charged_particles(200, 11, max_force=None)
    start = simulate_charged_particles(200, 11, input_step=1, target_step=2, max_force=None)
    momentum = free["vel"].sum(1)
    np.testing.assert_allclose(free["target_vel"].sum(1), momentum, atol=1e-9)
    np.testing.assert_allclose(start["vel"].sum(1), momentum, atol=1e-9)
    drift = (free["target_pos"] - free["pos"]).mean(1)
    np.testing.assert_allclose(drift, 1000 * 1e-3 * momentum / 5, atol=1e-8)
    # Leapfrog conserves energy up to O(dt) between close encounters; a few systems have near-collisions.
    sim = simulate_charged_particles(200, 11)
    before = total_energy(sim["charges"], sim["pos"], sim["vel"])
    after = total_energy(sim["charges"], sim["target_pos"], sim["target_vel"])
    relative = np.abs(after - before) / np.abs(before)
    assert np.median(relative) < 5e-3 and np.mean(relative < 1e-2) > 0.6
    # initial speeds are 0.5; particles move by O(1) over the 1,000 predicted steps
    assert 0.1 < np.linalg.norm(sim["target_pos"] - sim["pos"], axis=-1).mean() < 2.0


def test_simulator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_trajectories"):
        simulate_charged_particles(0)
    with pytest.raises(ValueError, match="input_step < target_step"):
        simulate_charged_particles(2, input_step=10, target_step=10)


# ---------------------------------------------------------------------------------------------------------------
# N-body dataset
# ---------------------------------------------------------------------------------------------------------------
def test_nbody_dataset_fields(tmp_path):
    dataset = NBodyDataset(tmp_path, split="valid", num_train=4, num_valid=6, num_test=3, seed=5)
    assert len(dataset) == 6
    expected_edges = {(j, i) for i in range(5) for j in range(5) if i != j}
    for data in dataset:
        assert data.pos.shape == data.vel.shape == data.y.shape == (5, 3)
        assert data.charge.shape == (5, 1) and set(data.charge.flatten().tolist()) <= {-1.0, 1.0}
        assert data.x.shape == (5, 2)
        torch.testing.assert_close(data.x[:, :1], data.charge)
        torch.testing.assert_close(data.x[:, 1], data.vel.norm(dim=-1))
        assert set(map(tuple, data.edge_index.t().tolist())) == expected_edges and data.edge_index.size(1) == 20
        src, dst = data.edge_index
        torch.testing.assert_close(data.edge_attr, data.charge[src] * data.charge[dst])
        assert all(t.dtype == torch.float32 for t in (data.x, data.pos, data.vel, data.y, data.edge_attr))
    # the stored values are the simulator's for this split's stream
    sim = simulate_charged_particles(6, np.random.default_rng([5, 1]))
    torch.testing.assert_close(dataset[2].y, torch.from_numpy(sim["target_pos"][2]).float())
    assert "valid" in repr(dataset)


def test_nbody_dataset_is_cached_and_reproducible(tmp_path, monkeypatch):
    sizes = dict(num_train=8, num_valid=4, num_test=4, seed=1)
    first = NBodyDataset(tmp_path / "a", **sizes)
    monkeypatch.setattr(synthetic, "simulate_charged_particles",
                        lambda *a, **k: pytest.fail("the cached files should have been used"))
    cached = NBodyDataset(tmp_path / "a", **sizes)
    assert torch.equal(first._data.y, cached._data.y)
    monkeypatch.undo()
    again = NBodyDataset(tmp_path / "b", **sizes)                      # generated again from scratch
    for key in ("x", "pos", "vel", "y", "edge_attr"):
        assert torch.equal(first._data[key], again._data[key]), key
    other = NBodyDataset(tmp_path / "a", **{**sizes, "seed": 2})
    assert not torch.equal(first._data.pos, other._data.pos)
    train, test = NBodyDataset(tmp_path / "a", split="train", **sizes), NBodyDataset(tmp_path / "a", split="test",
                                                                                      **sizes)
    assert not torch.equal(train._data.pos[:20], test._data.pos[:20])
    with pytest.raises(ValueError, match="split must be"):
        NBodyDataset(tmp_path, split="val")
    with pytest.raises(ValueError, match="num_test"):
        NBodyDataset(tmp_path, num_test=0)


def test_nbody_benchmark_full_size_generation(tmp_path):
    """The EGNN sizes through the registry: 3,000 / 2,000 / 2,000, generated in seconds, then read from disk."""
    start = time.perf_counter()
    bench = load_benchmark("nbody", root=tmp_path)
    generated = time.perf_counter() - start
    assert (bench.name, bench.task, bench.metric) == ("NBody", "dynamics", "mse")
    assert bench.split_sizes() == (3000, 2000, 2000)
    assert (bench.num_features, bench.num_targets, bench.num_edge_features) == (2, 3, 1)
    assert sorted(p.name for p in (tmp_path / "NBody" / "processed").glob("charged5_*.pt")) == [
        "charged5_v2_seed43_test2000.pt", "charged5_v2_seed43_train3000.pt", "charged5_v2_seed43_valid2000.pt"]
    start = time.perf_counter()
    load_benchmark("NBody", root=tmp_path)
    assert time.perf_counter() - start < generated
    assert generated < 60, f"generating 7,000 trajectories took {generated:.1f} s"


# ---------------------------------------------------------------------------------------------------------------
# QM9 from qm9pack
# ---------------------------------------------------------------------------------------------------------------
HAR2EV = 27.211386246  # written out here, not imported: the test checks the module's units independently
# dsgdb9nsd_000001-3 (methane, ammonia, water) as in the QM9 XYZ files: mu (D), alpha (a0^3), homo, lumo, gap (Ha),
# r2 (a0^2), zpve, U0, U, H, G (Ha), Cv (cal/mol K).
KNOWN = {
    "C": [0.0, 13.21, -0.3877, 0.1171, 0.5048, 35.3641, 0.044749, -40.47893, -40.476062, -40.475117, -40.498597,
          6.469],
    "N": [1.6256, 9.46, -0.257, 0.0829, 0.3399, 26.1563, 0.034358, -56.525887, -56.523026, -56.522082, -56.544961,
          6.316],
    "O": [1.8511, 6.31, -0.2928, 0.0687, 0.3615, 19.0002, 0.021375, -76.404702, -76.401867, -76.400922, -76.422349,
          6.002],
}
HARTREE_COLUMNS = [2, 3, 4, 6, 7, 8, 9, 10]
METHANE_POS = [[-0.0126981359, 1.0858041578, 0.0080009958], [0.002150416, -0.0060313176, 0.0019761204],
               [1.0117308433, 1.4637511618, 0.0002765748], [-0.540815069, 1.4475266138, -0.8766437152],
               [-0.5238136345, 1.4379326443, 0.9063972942]]


@pytest.fixture
def qm9():
    if importlib.util.find_spec("qm9pack") is None:
        message = "qm9pack is not installed (pip install 'gdl_graphs[qm9]')"
        if require_data():
            pytest.fail(message)
        pytest.skip(message)
    from gdl_graphs.data import qm9

    return qm9


@pytest.mark.data
def test_qm9_first_molecules_in_pyg_units(qm9, tmp_path):
    dataset = qm9.QM9Pack(tmp_path, limit=3)
    assert len(dataset) == 3
    for data, (smiles, z) in zip(dataset, [("C", [6, 1, 1, 1, 1]), ("N", [7, 1, 1, 1]), ("O", [8, 1, 1])]):
        assert data.smiles == smiles and data.z.tolist() == z
        expected = torch.tensor(KNOWN[smiles], dtype=torch.float64)
        expected[HARTREE_COLUMNS] *= HAR2EV
        assert data.y.shape == (1, 12) and data.y.dtype == torch.float32
        torch.testing.assert_close(data.y[0].double(), expected, rtol=1e-6, atol=2e-4)
        assert torch.equal(data.x, (data.z.unsqueeze(-1) == torch.tensor([1, 6, 7, 8, 9])).float())
    methane = dataset[0]
    torch.testing.assert_close(methane.pos, torch.tensor(METHANE_POS))
    bonds = (methane.pos[1:] - methane.pos[0]).norm(dim=-1)            # C-H bonds of methane, in Angstrom
    torch.testing.assert_close(bonds, torch.full((4,), 1.0919), atol=1e-3, rtol=0)
    assert methane.idx.tolist() == [0]
    # PyG's QM9[0].y[:, :12] (processed from gdb9.sdf.csv with PyG's conversion), rounded as printed
    pyg = torch.tensor([0.0, 13.21, -10.5499, 3.1865, 13.7363, 35.3641, 1.2177, -1101.4878, -1101.4098, -1101.3840,
                        -1102.0229, 6.469])
    torch.testing.assert_close(methane.y[0], pyg, atol=1e-4, rtol=1e-6)


@pytest.mark.data
def test_qm9_subset_sanity_and_fast_collation(qm9, tmp_path):
    frame = qm9.read_qm9pack(qm9.qm9pack_dir(), limit=400)
    parsed = qm9.parse_qm9pack(frame)
    data, slices = qm9.collate_qm9pack(parsed, list(frame["SMILES"]))
    dataset = qm9.QM9Pack(tmp_path, limit=400)
    # the one-shot collation equals collating one Data per molecule
    graphs = [dataset[k] for k in range(len(dataset))]
    reference, reference_slices = InMemoryDataset.collate(graphs)
    for key in ("z", "x", "pos", "y", "idx"):
        assert torch.equal(data[key], reference[key]), key
        assert torch.equal(slices[key], reference_slices[key]), key
    y = data.y
    torch.testing.assert_close(y[:, 4], y[:, 3] - y[:, 2], atol=3e-3, rtol=0)   # gap = lumo - homo (4-decimal Ha)
    assert bool((y[:, 7] < y[:, 8]).all() and (y[:, 10] < y[:, 9]).all())       # U0 < U(298 K), G < H
    assert set(data.z.unique().tolist()) <= {1, 6, 7, 8, 9}
    sizes = slices["z"][1:] - slices["z"][:-1]
    assert int(sizes.max()) <= 29 and bool((data.idx[1:] > data.idx[:-1]).all())


@pytest.mark.data
def test_qm9_through_the_registry_with_a_subset(qm9, tmp_path):
    start = time.perf_counter()
    bench = load_benchmark("QM9", root=tmp_path, target="homo", limit=3000)
    assert time.perf_counter() - start < 20
    assert (bench.name, bench.task, bench.metric) == ("QM9", "graph_regression", "mae")
    assert bench.split_sizes() == (2293, 407, 300) and bench.num_targets == 1 and bench.num_features == 5
    assert bench.info["target"] == "homo" and bench.info["units"] == "eV"
    full = load_benchmark("QM9", root=tmp_path, limit=3000)
    assert full.num_targets == 12 and full.train[0].y.shape == (1, 12)
    for k in (0, 17, 2292):
        assert bench.train[k].y.shape == (1, 1)
        assert float(bench.train[k].y) == float(full.train[k].y[0, 2])
    idx = [torch.cat([split[k].idx for k in range(len(split))]) for split in (bench.train, bench.val, bench.test)]
    assert torch.equal(torch.sort(torch.cat(idx)).values, torch.sort(bench.dataset._data.idx).values)
    again = load_benchmark("QM9", root=tmp_path, target=2, limit=3000)
    assert torch.equal(again.test[5].y, bench.test[5].y)
    assert load_benchmark("QM9", root=tmp_path, limit=300, num_train=200).split_sizes() == (200, 70, 30)
    with pytest.raises(ValueError, match="target"):
        load_benchmark("QM9", root=tmp_path, limit=300, target="homo_lumo")
    with pytest.raises(ValueError, match="num_train=None"):
        load_benchmark("QM9", root=tmp_path, limit=300, num_train=100_000)
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("QM9", root=tmp_path, limit=0)
    with pytest.raises(ValueError, match="source"):
        qm9.load_qm9(tmp_path, source="sdf")


@pytest.mark.data
def test_qm9_full_set_and_egnn_split(qm9, staged_root):
    """All 130,831 molecules (processed once in seconds, then cached under the data root) and EGNN's split."""
    bench = load_benchmark("QM9", root=staged_root)
    assert len(bench.dataset) == qm9.NUM_MOLECULES == 130_831
    assert bench.split_sizes() == (100_000, 17_748, 13_083)
    assert bench.num_targets == 12 and bench.num_features == 5
    perm = torch.from_numpy(np.random.RandomState(0).permutation(130_831))   # Cormorant: np.random.seed(0)
    assert list(bench.train.indices()) == perm[:100_000].tolist()
    assert list(bench.test.indices()) == perm[100_000 + 17_748:].tolist()
    idx = bench.dataset._data.idx
    assert int(idx[0]) == 0 and int(idx[-1]) == 133_884 and bool((idx[1:] > idx[:-1]).all())
    assert int(bench.dataset._data.z.numel()) == 2_359_210      # 18.0 atoms per molecule on average


def test_standard_targets_keep_the_first_twelve_columns():
    from gdl_graphs.data.qm9 import TARGETS, StandardTargets, target_index

    data = StandardTargets()(Data(y=torch.arange(19.0).view(1, 19)))
    assert data.y.tolist() == [list(map(float, range(12)))]
    assert len(TARGETS) == 12 and target_index("HOMO") == 2 and target_index("cv") == 11
    with pytest.raises(ValueError, match="unknown QM9 target"):
        target_index("dipole")


@pytest.mark.data
def test_qm9_homo_trains_end_to_end_through_the_harness(qm9, tmp_path):
    from gdl_graphs.bench import train

    model, result, bench = train("QM9", "egnn", root=tmp_path, progress=False, epochs=3, batch_size=32,
                                 hidden_channels=32, dataset_options={"target": "homo", "limit": 400},
                                 model_options={"num_layers": 2})
    assert bench.task == "graph_regression" and bench.num_targets == 1
    assert result.epochs_run == 3 and result.metric == "mae"
    assert result.curve[-1]["loss"] < result.curve[0]["loss"]
    assert 0 < result.test < 2.0  # HOMO in eV: the MAE of an untrained model is of order 0.5-1 eV
