"""Transitions for the OHIO learners: the replay store, offline datasets turned into (s, u, r, s')
with inverted (or observed) goals, Monte-Carlo returns for Cal-QL, and the B.5.2 mixing schedule."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hieralloc.algos.ohio.losses import discounted_returns
from hieralloc.errors import CheckpointError, DataError

#: per-transition fields: state, action, scaled reward, bootstrap mask, next state, Monte-Carlo return
FIELDS = ("x", "edge_attr", "action", "reward", "done", "next_x", "next_edge_attr", "mc_return")


class Transitions:
    """A fixed-capacity ring of graph transitions stored as float32 tensors.

    ``shapes`` gives each field's per-transition shape. Edge features may have width 0 (encoders
    that do not read them, e.g. the GCN, store nothing). ``state_dict`` holds only the filled part.
    """

    def __init__(self, capacity: int, shapes: dict[str, tuple[int, ...]]) -> None:
        self.capacity = int(capacity)
        self.shapes = {k: tuple(int(s) for s in shapes[k]) for k in FIELDS}
        self.data = {k: torch.zeros((self.capacity, *self.shapes[k]), dtype=torch.float32) for k in FIELDS}
        self.size = 0
        self.ptr = 0

    def __len__(self) -> int:
        return self.size

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        """Append ``n`` transitions (every field a tensor with leading axis n), overwriting the oldest."""
        n = int(rows["reward"].shape[0])
        for start in range(0, n, self.capacity):
            chunk = min(n - start, self.capacity)
            idx = (self.ptr + torch.arange(chunk)) % self.capacity
            for k in FIELDS:
                self.data[k][idx] = rows[k][start:start + chunk].to(torch.float32)
            self.ptr = int((self.ptr + chunk) % self.capacity)
            self.size = min(self.size + chunk, self.capacity)

    def get(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        it = torch.as_tensor(idx, dtype=torch.long)
        return {k: v.index_select(0, it) for k, v in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "ptr": self.ptr, "capacity": self.capacity,
                **{k: v[: self.size].clone() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise CheckpointError(f"the checkpoint's replay buffer holds {state['capacity']} transitions, this "
                                  f"learner's {self.capacity}; resume with the config it was written with")
        self.size, self.ptr = int(state["size"]), int(state["ptr"])
        for k in FIELDS:
            self.data[k].zero_()
            self.data[k][: self.size] = state[k]


def concat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Join batches field by field."""
    if len(parts) == 1:
        return parts[0]
    return {k: torch.cat([p[k] for p in parts], dim=0) for k in parts[0]}


def offline_fraction(online_episodes: int, start: float, episodes: int) -> float:
    """OHIO App. B.5.2: the share of a batch drawn from the offline data, ``start`` at the first online
    episode, decreasing linearly to 0 after ``episodes`` online episodes."""
    return float(start * max(0.0, 1.0 - online_episodes / max(episodes, 1)))


def _distribution(counts: np.ndarray) -> np.ndarray:
    """Rows of non-negative counts normalised to sum 1 (uniform where a row is all zero)."""
    c = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    tot = c.sum(axis=1, keepdims=True)
    return np.where(tot > 0, c / np.where(tot > 0, tot, 1.0), 1.0 / c.shape[1])


def observed_goals(family: str, next_aux: np.ndarray, n_nodes: int, goal_dim: int) -> np.ndarray:
    """The "Observed State" baseline (OHIO Sec. 5): the next observed state taken as the goal.

    * mobility: the idle-vehicle distribution of the next state (``next_aux[:, :N]``, the raw idle
      vehicles after the next matching, normalised). It differs from the inverted goal by the
      vehicles that arrive and depart between the rebalancing and the next observation.
    * supply: the next state's stock distribution over warehouse and stores (normalised), then
      the production in the pipeline of the next state as a fraction of the production capacity
      (the aux blocks of :mod:`hieralloc.envs.supply.formulation`).

    OHIO Tables 1 and 3 show why the baseline fails: the observed state is not what the low level
    was asked to reach.
    """
    aux = np.atleast_2d(np.asarray(next_aux, dtype=np.float64))
    if family == "mobility":
        goals = _distribution(aux[:, :n_nodes])
    elif family == "supply":
        from hieralloc.envs.supply.formulation import aux_slices

        sl = aux_slices(n_nodes - 1)
        cap = aux[:, sl["production_capacity"]]
        prod = np.divide(aux[:, sl["pipeline"]], cap, out=np.zeros_like(cap), where=cap > 0)
        goals = np.concatenate([_distribution(aux[:, sl["stock"]]), np.clip(prod, 0.0, 1.0)], axis=1)
    else:
        raise DataError(f"goals='observed' (the Observed State baseline) is defined for mobility and supply data, "
                        f"this dataset is {family}; use goals=inverse")
    if goals.shape[1] != goal_dim:
        raise DataError(f"observed goals have {goals.shape[1]} entries, the formulation's goals {goal_dim}")
    return goals


def dataset_transitions(ds: Any, actions: np.ndarray, *, reward_scale: float, gamma: float,
                        bootstrap_on_truncation: bool, edge_features: bool) -> Transitions:
    """All transitions of an :class:`~hieralloc.ohio.dataset.OfflineDataset` with the given
    high-level (or flow) ``actions`` (T, dim), as a :class:`Transitions` store.

    ``done`` (the bootstrap mask) is the dataset's ``terminated`` flag, or its episode end
    ``done`` when ``bootstrap_on_truncation`` is false; ``mc_return`` is the scaled discounted
    return-to-go of each transition within its episode (Cal-QL's ``V^mu``)."""
    T = len(ds)
    if actions.shape[0] != T:
        raise DataError(f"{actions.shape[0]} actions for {T} transitions")
    reward = torch.as_tensor(np.asarray(ds.reward, dtype=np.float64) * reward_scale, dtype=torch.float32)
    done = np.asarray(ds.terminated if bootstrap_on_truncation else ds.done, dtype=np.float32)
    mc = discounted_returns(reward.double(), torch.as_tensor(ds.episode), gamma).float()
    if edge_features:
        ea, nea = ds.edge_attr, ds.next_edge_attr
    else:
        ea = np.zeros((T, ds.edge_attr.shape[1], 0), dtype=np.float32)
        nea = ea
    rows = {"x": torch.as_tensor(ds.x), "edge_attr": torch.as_tensor(ea),
            "action": torch.as_tensor(np.asarray(actions, dtype=np.float32)), "reward": reward,
            "done": torch.as_tensor(done), "next_x": torch.as_tensor(ds.next_x),
            "next_edge_attr": torch.as_tensor(nea), "mc_return": mc}
    store = Transitions(T, {k: tuple(v.shape[1:]) for k, v in rows.items()})
    store.add(rows)
    return store


__all__ = ["FIELDS", "Transitions", "concat", "dataset_transitions", "observed_goals", "offline_fraction"]
