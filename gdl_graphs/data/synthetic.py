r"""The charged-particle N-body task (Kipf et al. 2018; the E(n) version of Satorras et al. 2021).

Five particles with random charges :math:`q_i = \pm 1` move freely in 3D (no box) under Coulomb forces

.. math::
    \mathbf{F}_i = k \sum_{j \neq i} q_i q_j
        \frac{\mathbf{x}_i - \mathbf{x}_j}{\lVert\mathbf{x}_i - \mathbf{x}_j\rVert^3},

integrated with the leapfrog (kick-drift) scheme of Kipf et al.'s ``ChargedParticlesSim``: an initial kick
:math:`\mathbf{v} \mathrel{+}= \Delta t\, \mathbf{F}(\mathbf{x}_0)`, then per step
:math:`\mathbf{x} \mathrel{+}= \Delta t\, \mathbf{v}` followed by :math:`\mathbf{v} \mathrel{+}= \Delta t\,
\mathbf{F}(\mathbf{x})`, with :math:`\Delta t = 0.001`, :math:`k = 1` and each force component clipped to
:math:`\pm 100` (:math:`0.1/\Delta t`, as in that code; the clip acts only in close encounters and is the one
part of the simulation that is not rotation-equivariant). Initial positions are :math:`\mathcal{N}(0, 1)`, initial
velocities have random directions and norm 0.5, charges are :math:`\pm 1` with probability 1/2.

As in the EGNN setup (their ``nbody_small``: frames every 100 steps, input frame 30, target frame 40), the input
is the state after 3,100 position updates and the target the positions 1,000 steps later (after 4,100).
Splits have 3,000 / 2,000 / 2,000 trajectories; each split is drawn from its own stream
``numpy.random.default_rng([seed, split_number])``, so a split is fully determined by the seed and its size.
The trajectories follow the same recipe as EGNN's data but are not the same draws.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.root import data_root

SPLITS = ("train", "valid", "test")
DEFAULT_SIZES = {"train": 3000, "valid": 2000, "test": 2000}
FORMAT_VERSION = 2
"""Part of the cache file names; bumped whenever the stored fields change (v2: ``x`` = charge and speed)."""


class _PairForces:
    """Clipped Coulomb forces for a batch of systems stored particle-major, batch last: ``[N, d, S]``.

    Only the :math:`N(N-1)/2` unordered pairs are evaluated; a signed incidence matrix sends each pair force to
    both particles (Newton's third law) in one matrix product. With the batch as the contiguous last axis every
    operation is a long vectorised loop, which makes this several times faster than a ``[S, N, N, d]`` layout.
    """

    def __init__(self, charges: np.ndarray, strength: float, max_force: float | None):
        num_particles = charges.shape[1]
        self.first, self.second = np.triu_indices(num_particles, 1)
        pairs = np.arange(self.first.size)
        self.incidence = np.zeros((num_particles, pairs.size))
        self.incidence[self.first, pairs], self.incidence[self.second, pairs] = 1.0, -1.0
        self.pair_charge = np.ascontiguousarray((strength * charges[:, self.first] * charges[:, self.second]).T)
        self.max_force = max_force

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        diff = pos[self.first] - pos[self.second]                      # x_i - x_j, [P, d, S]
        dist2 = np.einsum("pds,pds->ps", diff, diff)
        diff *= (self.pair_charge / (dist2 * np.sqrt(dist2)))[:, None, :]
        num_pairs, dim, batch = diff.shape
        force = (self.incidence @ diff.reshape(num_pairs, -1)).reshape(-1, dim, batch)
        if self.max_force is not None:
            np.clip(force, -self.max_force, self.max_force, out=force)
        return force


def simulate_charged_particles(num_trajectories: int, seed: int | np.random.Generator = 0, *,
                               num_particles: int = 5, dim: int = 3, input_step: int = 3100,
                               target_step: int = 4100, dt: float = 1e-3, loc_std: float = 1.0,
                               vel_norm: float = 0.5, strength: float = 1.0,
                               max_force: float | None = 100.0) -> dict[str, np.ndarray]:
    """Simulate charged-particle systems, all trajectories at once (vectorised over the batch).

    Args:
        num_trajectories: number of independent systems ``S``.
        seed: seed or :class:`numpy.random.Generator` for the initial conditions and charges.
        num_particles, dim: particles per system and space dimension.
        input_step, target_step: number of position updates after which the input and target are taken.
        dt, loc_std, vel_norm, strength, max_force: time step, initial position spread, initial speed, Coulomb
            constant, force clip (see the module docstring).

    Returns:
        float64 arrays ``charges`` ``[S, N]``, ``pos`` and ``vel`` ``[S, N, d]`` at ``input_step``, ``target_pos``
        and ``target_vel`` ``[S, N, d]`` at ``target_step`` (velocities are the ones that produced the latest
        position update, as Kipf et al. record them).
    """
    if num_trajectories < 1 or num_particles < 2 or dim < 1:
        raise ValueError(f"need num_trajectories >= 1, num_particles >= 2, dim >= 1; got {num_trajectories}, "
                         f"{num_particles}, {dim}")
    if not 1 <= input_step < target_step:
        raise ValueError(f"need 1 <= input_step < target_step, got {input_step}, {target_step}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    charges = rng.choice(np.array([-1.0, 1.0]), size=(num_trajectories, num_particles))
    pos = rng.standard_normal((num_trajectories, num_particles, dim)) * loc_std
    vel = rng.standard_normal((num_trajectories, num_particles, dim))
    vel *= vel_norm / np.linalg.norm(vel, axis=-1, keepdims=True)
    forces = _PairForces(charges, strength, max_force)
    pos, vel = (np.ascontiguousarray(a.transpose(1, 2, 0)) for a in (pos, vel))   # [N, d, S]
    out = {"charges": charges}
    vel += dt * forces(pos)
    for step in range(1, target_step + 1):
        pos += dt * vel
        if step == input_step:
            out["pos"], out["vel"] = pos.transpose(2, 0, 1).copy(), vel.transpose(2, 0, 1).copy()
        if step == target_step:
            out["target_pos"], out["target_vel"] = pos.transpose(2, 0, 1).copy(), vel.transpose(2, 0, 1).copy()
            break
        vel += dt * forces(pos)
    return out


def _complete_edges(num_nodes: int) -> torch.Tensor:
    """Directed edges between all distinct node pairs, sorted by target."""
    target, source = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    keep = source != target
    return torch.stack([source[keep], target[keep]])


def trajectories_to_data(sim: dict[str, np.ndarray]) -> list[Data]:
    """One :class:`~torch_geometric.data.Data` per trajectory (fields as in :class:`NBodyDataset`), built from
    whole-batch tensors (no per-system NumPy conversions)."""
    num_trajectories, num_particles = sim["charges"].shape
    edge_index = _complete_edges(num_particles)
    source, target = edge_index
    charge = torch.from_numpy(sim["charges"]).float().unsqueeze(-1)                  # [S, N, 1]
    vel = torch.from_numpy(sim["vel"]).float()
    pos = torch.from_numpy(sim["pos"]).float()
    y = torch.from_numpy(sim["target_pos"]).float()
    x = torch.cat([charge, vel.norm(dim=-1, keepdim=True)], dim=-1)                 # [S, N, 2]
    edge_attr = charge[:, source] * charge[:, target]                               # [S, E, 1]
    return [Data(x=x[k], charge=charge[k], pos=pos[k], vel=vel[k], y=y[k], edge_index=edge_index,
                 edge_attr=edge_attr[k]) for k in range(num_trajectories)]


def total_energy(charges: np.ndarray, pos: np.ndarray, vel: np.ndarray, strength: float = 1.0) -> np.ndarray:
    r"""Kinetic plus Coulomb energy :math:`\tfrac12 \sum_i \lVert\mathbf{v}_i\rVert^2 + k \sum_{i<j}
    q_i q_j / \lVert\mathbf{x}_i - \mathbf{x}_j\rVert` of each system (unit masses), for sanity checks.

    Args:
        charges: ``[S, N]``; pos, vel: ``[S, N, d]`` (as returned by :func:`simulate_charged_particles`).

    Returns:
        ``[S]`` float64. The leapfrog velocities lag the positions by half a step, so this is conserved to
        :math:`O(\Delta t)` between close encounters, not exactly.
    """
    first, second = np.triu_indices(charges.shape[1], 1)
    dist = np.linalg.norm(pos[:, first] - pos[:, second], axis=-1)
    kinetic = 0.5 * np.einsum("snd,snd->s", vel, vel)
    return kinetic + strength * (charges[:, first] * charges[:, second] / dist).sum(-1)


class NBodyDataset(InMemoryDataset):
    r"""Charged-particle N-body trajectories: predict positions 1,000 steps ahead (see the module docstring).

    Each graph is one system of 5 particles:

    * ``x`` ``[5, 2]``: :math:`(q_i, \lVert\mathbf{v}_i\rVert)`, charge and speed, both E(n)-invariant
      (EGNN's node feature is the speed, its edge attribute the charge product; with the charge in ``x`` a
      model that reads only ``x`` sees it too),
    * ``charge`` ``[5, 1]``: :math:`q_i = \pm 1`,
    * ``pos``, ``vel`` ``[5, 3]``: input positions and velocities,
    * ``y`` ``[5, 3]``: positions 1,000 steps later,
    * ``edge_index`` ``[2, 20]``: the complete directed graph, ``edge_attr`` ``[20, 1]``: :math:`q_i q_j`.

    Trajectories are generated on first use (all 7,000 in about 3 s on one CPU core, simulation and conversion)
    and cached under ``<root>/processed``; a different ``seed`` or split size gets its own files.

    Args:
        root: dataset folder (default ``data_root() / "NBody"``).
        split: ``'train'``, ``'valid'`` or ``'test'``.
        num_train, num_valid, num_test: split sizes (EGNN: 3,000 / 2,000 / 2,000).
        seed: seed of the generation.
        transform, force_reload: as in :class:`~torch_geometric.data.InMemoryDataset`.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 num_train: int = DEFAULT_SIZES["train"], num_valid: int = DEFAULT_SIZES["valid"],
                 num_test: int = DEFAULT_SIZES["test"], seed: int = 43,
                 transform: Callable | None = None, force_reload: bool = False):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.sizes = {"train": num_train, "valid": num_valid, "test": num_test}
        for name, size in self.sizes.items():
            if size < 1:
                raise ValueError(f"num_{name} must be >= 1, got {size}")
        self.split, self.seed = split, seed
        root = data_root(root) / "NBody" if root is None else data_root(root)
        super().__init__(str(root), transform, force_reload=force_reload)
        self.load(self.processed_paths[SPLITS.index(split)])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return [f"charged5_v{FORMAT_VERSION}_seed{self.seed}_{name}{self.sizes[name]}.pt" for name in SPLITS]

    def process(self) -> None:
        for number, (name, path) in enumerate(zip(SPLITS, self.processed_paths)):
            sim = simulate_charged_particles(self.sizes[name], np.random.default_rng([self.seed, number]))
            self.save(trajectories_to_data(sim), path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, {len(self)} trajectories, seed={self.seed})"


def load_nbody(root: Path, **options) -> Benchmark:
    """Charged N-body dynamics (``<root>/NBody``; generated on first use), MSE of the predicted positions.
    ``options`` go to :class:`NBodyDataset` (split sizes, ``seed``)."""
    train, val, test = (NBodyDataset(str(Path(root) / "NBody"), split=s, **options)
                        for s in ("train", "valid", "test"))
    return Benchmark(name="NBody", task="dynamics", metric="mse", train=train, val=val, test=test,
                     num_features=train.num_node_features, num_targets=train[0].y.size(-1),
                     num_edge_features=train.num_edge_features,
                     info={"split": "simulated train / valid / test streams", "seed": train.seed})
