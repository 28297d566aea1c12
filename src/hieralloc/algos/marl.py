"""Shared plumbing of the cooperative MARL learners (value-based and policy-gradient families).

* :class:`AgentConfig`: the hyper-parameters every multi-agent learner has (parameter sharing,
  agent body, reward signal, discount, optimiser basics).
* :class:`EnvView`: reads a PettingZoo ``ParallelEnv`` into fixed-size arrays: agents in
  ``possible_agents`` order, flattened observations (``{"observation", "action_mask"}`` dicts
  supported), action masks from the observation dict, ``infos[agent]["action_mask"]`` or
  ``env.action_mask(agent)``, the global state from ``env.state()``. Agents with different spaces
  are padded to the largest observation and action count; padded actions are masked out.
* :func:`run_episode`: plays one episode with an ``act`` callback and returns it as time-major
  numpy arrays; :func:`stack_episodes` pads several into ``[T, B, ...]`` tensors;
  :class:`EpisodeBuffer`: the episode replay buffer (ring, time-major, grows lazily).

Episode arrays (L = episode length, N agents, D observation size, A actions, S state size)::

    obs [L+1, N, D]  avail [L+1, N, A]  active [L+1, N]  state [L+1, S] (when needed)
    actions [L, N] (long) or [L, N, d]  reward [L, N]  done [L, N]  terminated [L]

``done[t, i]``: agent i's episode ends at step t without bootstrapping (termination, or
truncation unless ``bootstrap_on_truncation``); ``terminated[t]``: the same for the team (the
episode ends at t and some agent's end is not bootstrapped). Batches add ``filled [T, B]``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from hieralloc.algos.base import checkpoint_for, load_progress, progress_state
from hieralloc.config import Config, param
from hieralloc.errors import CheckpointError, ConfigError, IncompatibleError
from hieralloc.nn.sharing import SHARING_MODES, check_assignment, default_assignment, n_param_groups

REWARD_MODES = ("mean", "sum", "individual")


@dataclass
class AgentConfig(Config):
    """Hyper-parameters shared by every cooperative MARL learner (see docs/algorithms/sharing.md)."""

    sharing: str = param("full_id", "parameter sharing across agents: none (a network per agent), full, "
                         "full_id (full + one-hot agent id), grouped (k groups)", choices=SHARING_MODES)
    n_groups: int = param(2, "number of parameter groups k when sharing=grouped", low=1)
    groups: tuple[int, ...] = param((), "initial agent -> group map for sharing=grouped, one id in "
                                    "[0, n_groups) per agent; empty: agent i in group i mod n_groups")
    hidden: int = param(64, "hidden width of the agent networks and GRU state (EPyMARL: 64)", low=1)
    recurrent: bool = param(True, "FC-GRU-FC agents (true) or 3-layer MLP agents (false)")
    reward: str = param("mean", "learning signal from the agents' rewards: 'mean' or 'sum' over agents "
                        "(one team reward), 'individual' (each agent its own; independent learners only)",
                        choices=REWARD_MODES)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0)
    lr: float = param(5e-4, "learning rate (EPyMARL: 5e-4)", low=0.0, low_open=True)
    grad_clip: float = param(10.0, "max global gradient norm (EPyMARL, MAPPO: 10)", low=0.0, low_open=True)
    bootstrap_on_truncation: bool = param(False, "bootstrap through time-limit ends instead of treating "
                                          "them as terminal")

    def validate(self) -> None:
        super().validate()
        if any(g < 0 or g >= self.n_groups for g in self.groups):
            raise ConfigError("groups", f"ids must lie in [0, {self.n_groups - 1}] (n_groups={self.n_groups}), "
                              f"got {list(self.groups)}")
        if self.groups and self.sharing != "grouped":
            raise ConfigError("groups", f"is only used with sharing=grouped (sharing={self.sharing!r}); "
                              "remove it or set sharing=grouped")


def initial_groups(cfg: AgentConfig, n_agents: int) -> list[int]:
    """The agent -> group map a learner starts with (validated against the number of agents)."""
    G = n_param_groups(cfg.sharing, n_agents, cfg.n_groups)
    if cfg.sharing == "grouped" and cfg.groups:
        if len(cfg.groups) != n_agents:
            raise ConfigError("algo.groups", f"needs one group id per agent ({n_agents} agents), "
                              f"got {len(cfg.groups)}")
        return list(cfg.groups)
    return default_assignment(cfg.sharing, n_agents, G)


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Initialise networks from ``seed`` without touching the caller's global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _inner_obs_space(space: spaces.Space[Any]) -> spaces.Space[Any]:
    if isinstance(space, spaces.Dict) and "observation" in space.spaces:
        return space.spaces["observation"]
    return space


class MARLLearner(abc.ABC):
    """What every cooperative MARL learner shares around its family-specific networks: the agent ->
    parameter-group map (``set_groups``, DyPS's ``before_episode`` hook), the RNG and counters, and
    the checkpoint plumbing. Subclasses name their grouped network in :meth:`grouped_net` and put
    their modules, optimisers and buffers in :meth:`modules_state` / :meth:`load_modules`."""

    algo_name: ClassVar[str] = "marl"
    cfg: AgentConfig
    n_agents: int
    groups: list[int]
    rng: np.random.Generator
    env_steps: int
    episodes: int
    updates: int

    @abc.abstractmethod
    def grouped_net(self) -> Any:
        """The network whose parameter groups ``set_groups`` assigns agents to."""

    @abc.abstractmethod
    def modules_state(self) -> dict[str, Any]:
        """State dicts of the family's networks, optimisers, buffers and normalisers."""

    @abc.abstractmethod
    def load_modules(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`modules_state`."""

    def set_groups(self, groups: Any) -> None:
        """Assign agents to parameter groups for the following episodes (``sharing=grouped``)."""
        g = torch.as_tensor(np.asarray(groups), dtype=torch.long).reshape(-1)
        try:
            check_assignment(g, self.cfg.sharing, self.n_agents, self.grouped_net().n_groups)
        except ValueError as e:
            raise ConfigError("groups", str(e)) from None
        self.groups = [int(x) for x in g]

    def before_episode(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Hook called before each training episode (e.g. DyPS re-selects the groups here)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain Python only (weights_only)."""
        return {**self.modules_state(), **progress_state(self), "groups": list(self.groups)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with checkpoint_for(self.algo_name):
            self.load_modules(state)
            load_progress(self, state)
            self.groups = [int(g) for g in state["groups"]]


class EnvView:
    """Fixed-size array view of a PettingZoo ``ParallelEnv`` (see the module docstring)."""

    def __init__(self, env: Any, need_state: bool = False, algo: str = "this algorithm") -> None:
        self.env = env
        self.agents: list[str] = list(env.possible_agents)
        self.n_agents = len(self.agents)
        if self.n_agents == 0:
            raise IncompatibleError(f"{algo} needs at least one agent; the environment has none")
        self.index = {a: i for i, a in enumerate(self.agents)}
        self._obs_spaces = [_inner_obs_space(env.observation_space(a)) for a in self.agents]
        self._obs_dims = [int(spaces.flatdim(s)) for s in self._obs_spaces]
        self._box_obs = [isinstance(s, spaces.Box) for s in self._obs_spaces]
        self.obs_dim = max(self._obs_dims)
        acts = [env.action_space(a) for a in self.agents]
        if all(isinstance(s, spaces.Discrete) for s in acts):
            self.discrete = True
            self._n_actions = [int(s.n) for s in acts]
            self._act_start = [int(s.start) for s in acts]
            self.n_actions = max(self._n_actions)
            self.action_space: spaces.Space[Any] = spaces.Discrete(self.n_actions)
        elif all(isinstance(s, spaces.Box) for s in acts):
            shapes = {s.shape for s in acts}
            if len(shapes) != 1:
                raise IncompatibleError(f"{algo} needs continuous action boxes of one shape; got {shapes}")
            self.discrete = False
            self.n_actions = 1
            self._n_actions = [1] * self.n_agents
            self._act_start = [0] * self.n_agents
            self.action_space = acts[0]
        else:
            raise IncompatibleError(f"{algo} needs Discrete or Box action spaces for every agent; got "
                                    f"{sorted({type(s).__name__ for s in acts})}")
        self.need_state = need_state
        self.state_dim = 0
        if need_state:
            self.state_dim = self._state_dim(algo)

    def _state_dim(self, algo: str) -> int:
        ss = getattr(self.env, "state_space", None)
        if isinstance(ss, spaces.Space):
            return int(spaces.flatdim(ss))
        try:
            self.env.reset(seed=0)
            s = np.asarray(self.env.state())
        except (NotImplementedError, AttributeError) as e:
            raise IncompatibleError(f"{algo} needs a global state and the environment provides none ({e})") from None
        return int(s.size)

    # --- per-step reads ---------------------------------------------------------------------------
    def obs(self, observations: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(``[N, D]`` float32 observations, ``[N]`` bool present) for the agents in the dict."""
        out = np.zeros((self.n_agents, self.obs_dim), dtype=np.float32)
        present = np.zeros(self.n_agents, dtype=bool)
        for a, o in observations.items():
            i = self.index.get(a)
            if i is None:
                continue
            if isinstance(o, dict) and "observation" in o:
                o = o["observation"]
            if self._box_obs[i]:
                flat = np.asarray(o, dtype=np.float32).reshape(-1)
            else:
                flat = np.asarray(spaces.flatten(self._obs_spaces[i], o), dtype=np.float32)
            out[i, : flat.size] = flat
            present[i] = True
        return out, present

    def masks(self, observations: dict[str, Any], infos: dict[str, Any] | None, env: Any = None) -> np.ndarray:
        """``[N, A]`` bool valid actions: the observation's ``action_mask``, else the info's, else
        ``env.action_mask(agent)`` when no infos are given (evaluation), else all valid."""
        m = np.zeros((self.n_agents, self.n_actions), dtype=bool)
        for i, n in enumerate(self._n_actions):
            m[i, :n] = True
        if not self.discrete:
            return m
        env_mask = getattr(env, "action_mask", None) if env is not None else None
        for a, o in observations.items():
            k = self.index.get(a)
            if k is None:
                continue
            mask = None
            if isinstance(o, dict) and "action_mask" in o:
                mask = o["action_mask"]
            elif infos is not None:
                info = infos.get(a)
                if isinstance(info, dict) and "action_mask" in info:
                    mask = info["action_mask"]
            elif callable(env_mask):
                mask = env_mask(a)
            if mask is not None:
                mk = np.asarray(mask).astype(bool).reshape(-1)[: self._n_actions[k]]
                m[k, : mk.size] = mk
                if not mk.any():  # no valid action reported: let the agent act anyway
                    m[k, : self._n_actions[k]] = True
        return m

    def state(self, env: Any = None) -> np.ndarray:
        e = env if env is not None else self.env
        s = np.asarray(e.state(), dtype=np.float32).reshape(-1)
        if s.size != self.state_dim:
            raise IncompatibleError(f"env.state() has {s.size} entries, expected {self.state_dim}")
        return s

    def env_action(self, i: int, action: Any) -> Any:
        """An agent's stored action -> the value ``env.step`` expects."""
        if self.discrete:
            return int(action) + self._act_start[i]
        return action


def team_reward(reward: torch.Tensor, mode: str) -> torch.Tensor:
    """``[..., N]`` per-agent rewards -> the learning signal (``[...]`` team, or ``[..., N]``)."""
    if mode == "mean":
        return reward.mean(-1)
    if mode == "sum":
        return reward.sum(-1)
    return reward


#: ``act(obs [N, D], avail [N, A], present [N], state [S] or None) -> (stored actions, env actions)``
ActFn = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], tuple[np.ndarray, list[Any]]]


def run_episode(env: Any, view: EnvView, seed: int, act: ActFn, bootstrap_on_truncation: bool) -> dict[str, Any]:
    """Play one episode from ``env.reset(seed=seed)`` and return its arrays (module docstring)."""
    observations, infos = env.reset(seed=seed)
    obs_l, avail_l, act_l, state_l, rew_l, done_l, term_l, active_l = [], [], [], [], [], [], [], []
    ret = 0.0
    while env.agents:
        o, present = view.obs(observations)
        m = view.masks(observations, infos)
        s = view.state() if view.need_state else None
        stored, env_actions = act(o, m, present, s)
        step_actions = {a: env_actions[view.index[a]] for a in env.agents if a in view.index}
        observations_next, rewards, terms, truncs, infos = env.step(step_actions)
        r = np.zeros(view.n_agents, dtype=np.float32)
        d = np.zeros(view.n_agents, dtype=bool)
        for a, v in rewards.items():
            if a in view.index:
                r[view.index[a]] = float(v)
        for a in step_actions:
            i = view.index[a]
            d[i] = bool(terms.get(a, False)) or (bool(truncs.get(a, False)) and not bootstrap_on_truncation)
        ret += float(sum(float(v) for v in rewards.values()))
        obs_l.append(o)
        avail_l.append(m)
        active_l.append(present)
        if s is not None:
            state_l.append(s)
        act_l.append(stored)
        rew_l.append(r)
        done_l.append(d)
        term_l.append(bool(not env.agents and d[present].any()))
        # observations of the next step; agents that left keep their last observation (inactive)
        observations = observations_next
    # final observation (bootstrapping through truncation reads it)
    o, present = view.obs(observations)
    obs_l.append(o)
    avail_l.append(view.masks(observations, infos))
    active_l.append(present)
    if view.need_state:
        try:
            state_l.append(view.state())
        except (NotImplementedError, AttributeError, RuntimeError, IndexError):
            state_l.append(state_l[-1] if state_l else np.zeros(view.state_dim, dtype=np.float32))
    L = len(act_l)
    ep: dict[str, Any] = {
        "obs": np.stack(obs_l), "avail": np.stack(avail_l), "active": np.stack(active_l),
        "actions": np.stack(act_l) if L else np.zeros((0, view.n_agents), dtype=np.int64),
        "reward": np.stack(rew_l) if L else np.zeros((0, view.n_agents), dtype=np.float32),
        "done": np.stack(done_l) if L else np.zeros((0, view.n_agents), dtype=bool),
        "terminated": np.asarray(term_l, dtype=bool),
        "length": L, "return": ret,
    }
    if view.need_state:
        ep["state"] = np.stack(state_l)
    return ep


#: time-major fields with L + 1 entries; the others have L entries
_PLUS_ONE = ("obs", "avail", "active", "state")
#: padding values of the time-major fields (padded steps have every action available so that
#: maxima over actions stay finite; they are masked out of every loss)
_PAD = {"avail": True}
TIME_FIELDS = ("obs", "avail", "active", "state", "actions", "reward", "done", "terminated")


def _field_tensor(name: str, value: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(value)
    if t.dtype == torch.float64:
        t = t.float()
    if name == "actions" and t.dtype in (torch.int32, torch.int64):
        t = t.long()
    return t


def stack_episodes(episodes: Sequence[dict[str, Any]], groups: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    """Pad episodes to the longest and stack them time-major: ``[T(+1), B, ...]`` plus ``filled``
    ``[T, B]``, ``groups [B, N]`` and ``length [B]``."""
    T = max(int(e["length"]) for e in episodes)
    B = len(episodes)
    out: dict[str, torch.Tensor] = {}
    for k in TIME_FIELDS:
        if k not in episodes[0]:
            continue
        first = _field_tensor(k, episodes[0][k])
        rows = T + 1 if k in _PLUS_ONE else T
        full = torch.full((rows, B, *first.shape[1:]), _PAD.get(k, 0), dtype=first.dtype)
        for b, e in enumerate(episodes):
            v = _field_tensor(k, e[k])
            full[: v.shape[0], b] = v
        out[k] = full
    lengths = torch.as_tensor([int(e["length"]) for e in episodes], dtype=torch.long)
    out["filled"] = torch.arange(T)[:, None] < lengths[None, :]
    out["groups"] = torch.as_tensor(np.asarray(groups), dtype=torch.long).reshape(B, -1)
    out["length"] = lengths
    return out


class RingSlots:
    """The ring bookkeeping every episode replay shares: ``capacity`` slots, each episode's ``length``,
    the write position and the fill level. Slots are allocated lazily, doubling up to ``capacity``,
    and the oldest episode is overwritten once the ring is full. Subclasses keep the fields in
    ``data`` in their own layout (time-major here, episode-major in LPMARL's
    :class:`~hieralloc.algos.lpmarl.buffer.EpisodeRing`)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.data: dict[str, torch.Tensor] = {}
        self.lengths = torch.zeros(0, dtype=torch.long)
        self.pos = 0
        self.size = 0

    @property
    def allocated(self) -> int:
        return int(self.lengths.shape[0])

    def _slots_needed(self) -> int:
        """Slots to hold the next episode: double the allocation (up to ``capacity``) when it is full."""
        return min(self.capacity, max(1, 2 * self.allocated)) if self.pos >= self.allocated else self.allocated

    def _grow_lengths(self, slots: int) -> None:
        if self.lengths.shape[0] < slots:
            ln = torch.zeros(slots, dtype=torch.long)
            ln[: self.lengths.shape[0]] = self.lengths
            self.lengths = ln

    def _advance(self, length: int) -> None:
        """Record the episode just written at ``pos`` and move to the next slot."""
        self.lengths[self.pos] = int(length)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch: int, rng: np.random.Generator) -> torch.Tensor:
        """``batch`` distinct episode indices drawn uniformly (at most ``size``; PyMARL/EPyMARL)."""
        return torch.as_tensor(rng.choice(self.size, size=min(int(batch), self.size), replace=False),
                               dtype=torch.long)

    def _ring_state(self) -> dict[str, Any]:
        return {"lengths": self.lengths[: self.size].clone(), "pos": self.pos, "size": self.size}

    def _load_ring_state(self, state: dict[str, Any]) -> None:
        size, pos = int(state["size"]), int(state["pos"])
        if size > self.capacity:
            raise CheckpointError(f"replay buffer holds {size} episodes, more than buffer_size={self.capacity}")
        self.lengths = state["lengths"].clone()
        self.size, self.pos = size, pos


class EpisodeBuffer(RingSlots):
    """Episode replay buffer (ring of ``capacity`` episodes), stored time-major ``[T+1, capacity, ...]``.

    Storage is allocated lazily and grows (doubling) with the number of episodes and the longest
    episode seen, so memory follows what was collected. :meth:`sample` draws episodes uniformly
    without replacement (PyMARL/EPyMARL) and trims the batch to its longest episode.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.groups = torch.zeros(0, 0, dtype=torch.long)

    @property
    def max_len(self) -> int:
        return int(self.data["actions"].shape[0]) if self.data else 0

    def _grow(self, n_slots: int, T: int) -> None:
        for k, v in list(self.data.items()):
            rows = T + 1 if k in _PLUS_ONE else T
            if v.shape[0] >= rows and v.shape[1] >= n_slots:
                continue
            new = torch.full((max(rows, v.shape[0]), max(n_slots, v.shape[1]), *v.shape[2:]), _PAD.get(k, 0),
                             dtype=v.dtype)
            new[: v.shape[0], : v.shape[1]] = v
            self.data[k] = new
        if self.groups.shape[0] < n_slots:
            g = torch.zeros(n_slots, self.groups.shape[1], dtype=torch.long)
            g[: self.groups.shape[0]] = self.groups
            self.groups = g
        self._grow_lengths(n_slots)

    def insert(self, episode: dict[str, Any], groups: Sequence[int]) -> None:
        L = int(episode["length"])
        if not self.data:
            self.groups = torch.zeros(0, len(groups), dtype=torch.long)
            for k in TIME_FIELDS:
                if k in episode:
                    v = _field_tensor(k, episode[k])
                    rows = L + 1 if k in _PLUS_ONE else L
                    self.data[k] = torch.full((rows, 0, *v.shape[1:]), _PAD.get(k, 0), dtype=v.dtype)
        self._grow(self._slots_needed(), max(L, self.max_len))
        i = self.pos
        for k, v in self.data.items():
            e = _field_tensor(k, episode[k])
            v[:, i] = _PAD.get(k, 0)
            v[: e.shape[0], i] = e
        self.groups[i] = torch.as_tensor(list(groups), dtype=torch.long)
        self._advance(L)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = self.sample_indices(batch_size, rng)
        lengths = self.lengths[idx]
        T = int(lengths.max())
        out: dict[str, torch.Tensor] = {}
        for k, v in self.data.items():
            rows = T + 1 if k in _PLUS_ONE else T
            out[k] = v[:rows].index_select(1, idx)
        out["filled"] = torch.arange(T)[:, None] < lengths[None, :]
        out["groups"] = self.groups[idx]
        out["length"] = lengths
        return out

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"data": {k: v[:, :n].clone() for k, v in self.data.items()}, "groups": self.groups[:n].clone(),
                **self._ring_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_ring_state(state)
        self.data = {k: v.clone() for k, v in state["data"].items()}
        self.groups = state["groups"].clone()


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


__all__ = ["REWARD_MODES", "AgentConfig", "EnvView", "EpisodeBuffer", "RingSlots", "initial_groups", "masked_mean",
           "run_episode", "seeded_torch", "stack_episodes", "team_reward"]
