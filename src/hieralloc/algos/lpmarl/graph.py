"""What the LPMARL learner reads from an environment: the agent-task graph and the task-conditioned low level.

A :class:`Family` adapts one environment family (constrained navigation, combat) to the learner:

* :meth:`Family.graph`: the bipartite agent-task graph of LPMARL Sec. 3.1 at the current state
  (:class:`TaskGraph`: agent and task node features whose first two columns are positions, alive
  flags, the capacities k_j of Eq. (5), and the observation ranges Dec-LPMARL's local graph needs,
  App. D);
* :meth:`Family.task_obs` / :meth:`Family.task_masks` / :meth:`Family.env_actions`: the
  task-conditioned low level of Eq. (8) through the environments' ``task_observation`` accessors;
* :meth:`Family.low_rewards` (the sub-task rewards r^l_i of Eq. (18)) and :meth:`Family.high_reward`
  (the team reward r^h of Eq. (14)): each level trained on its own reward (App. E);
* :meth:`Family.event_key`: what changes when the high level must re-decide (a unit died, App. F.2).

Graphs travel through the hierarchy (:mod:`hieralloc.algos.hierarchy`) and the replay buffer as one
``(N, D)`` float32 array per decision (:func:`pack_graph`), row ``i`` holding agent ``i``'s features
and ranges followed by the task block (the same in every row); :func:`unpack_graph` restores batched
tensors. Every size is read from the array, so one model runs on any ``(N, M)`` (Sec. 5.1.2).
Mixed-size training (``size_range``) stores every graph padded to one ``(N_max, M_max)`` with dead
agents and tasks (:func:`pad_graph`, :func:`pad_packed`); :meth:`Family.resized` makes an environment
of the same family with another size.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from hieralloc.errors import IncompatibleError


@dataclass
class TaskGraph:
    """The agent-task graph at one state (LPMARL Sec. 3.1); positions are ``agent_x[:, :2]``, ``task_x[:, :2]``."""

    agent_x: np.ndarray        # (N, FA) float
    task_x: np.ndarray         # (M, FT) float
    agent_alive: np.ndarray    # (N,) bool
    task_alive: np.ndarray     # (M,) bool
    capacity: np.ndarray       # (M,) int64, Eq. (5)
    visible: np.ndarray        # (N, M) bool: task within the agent's observation range (App. D)
    agent_visible: np.ndarray  # (N, N) bool: other agent within range (diagonal False)


class GraphBatch(NamedTuple):
    """Batched tensors of packed graphs ``(B, N, D)``."""

    agent_x: torch.Tensor        # (B, N, FA)
    task_x: torch.Tensor         # (B, M, FT)
    agent_alive: torch.Tensor    # (B, N) bool
    task_alive: torch.Tensor     # (B, M) bool
    capacity: torch.Tensor       # (B, M) int64
    visible: torch.Tensor        # (B, N, M) bool
    agent_visible: torch.Tensor  # (B, N, N) bool

    @property
    def allowed(self) -> torch.Tensor:
        """(B, N, M) bool: pairs the LP may use (alive agent, alive task)."""
        return self.agent_alive.unsqueeze(2) & self.task_alive.unsqueeze(1)

    def distances(self) -> torch.Tensor:
        """(B, N, M) agent-task distances in feature units (the LP-distance / greedy costs)."""
        return (self.task_x[..., None, :, :2] - self.agent_x[..., :, None, :2]).norm(dim=-1)


def graph_width(n: int, m: int, fa: int, ft: int) -> int:
    """Width D of a packed graph with ``n`` agents, ``m`` tasks and the family's feature sizes."""
    return fa + 1 + m + n + m * ft + 2 * m


def pack_graph(g: TaskGraph) -> np.ndarray:
    """``(N, D)`` float32: ``[agent_x_i, alive_i, visible_i (M), agent_visible_i (N), task_x (M*FT),
    task_alive (M), capacity (M)]`` per row (the task block repeated in every row)."""
    n = g.agent_x.shape[0]
    task_block = np.concatenate([np.asarray(g.task_x, dtype=np.float64).reshape(-1),
                                 g.task_alive.astype(np.float64), g.capacity.astype(np.float64)])
    out = np.concatenate([np.asarray(g.agent_x, dtype=np.float64), g.agent_alive[:, None].astype(np.float64),
                          g.visible.astype(np.float64), g.agent_visible.astype(np.float64),
                          np.broadcast_to(task_block, (n, task_block.size))], axis=1)
    return out.astype(np.float32)


def pad_graph(g: TaskGraph, n_max: int, m_max: int) -> TaskGraph:
    """``g`` with *dead* padding up to ``n_max`` agents and ``m_max`` tasks (mixed-size replay, Sec. 5.1.2):
    padded agents have zero features, ``alive = False`` and see nothing (nor are seen); padded tasks have
    zero features, ``task_alive = False`` and capacity 0. Every consumer of the graph masks by these flags
    (GNN messages, the LP's ``agent_mask`` / ``task_mask``, the losses), as for combat's dead units."""
    n, m = g.agent_x.shape[0], g.task_x.shape[0]
    if n_max < n or m_max < m:
        raise ValueError(f"cannot pad a graph of N={n}, M={m} down to N={n_max}, M={m_max}")
    dn, dm = n_max - n, m_max - m

    def rows(a: np.ndarray, k: int, fill: Any = 0) -> np.ndarray:
        return np.concatenate([a, np.full((k, *a.shape[1:]), fill, dtype=a.dtype)], axis=0)

    visible = np.zeros((n_max, m_max), dtype=bool)
    visible[:n, :m] = g.visible
    agent_visible = np.zeros((n_max, n_max), dtype=bool)
    agent_visible[:n, :n] = g.agent_visible
    return TaskGraph(rows(np.asarray(g.agent_x), dn), rows(np.asarray(g.task_x), dm),
                     rows(np.asarray(g.agent_alive, dtype=bool), dn, False),
                     rows(np.asarray(g.task_alive, dtype=bool), dm, False),
                     rows(np.asarray(g.capacity, dtype=np.int64), dm), visible, agent_visible)


def pad_packed(x: np.ndarray, n: int, m: int, n_max: int, m_max: int, fa: int, ft: int) -> np.ndarray:
    """Packed graphs ``(..., n, D(n, m))`` -> ``(..., n_max, D(n_max, m_max))`` with the dead padding of
    :func:`pad_graph` (equal to packing the padded graph): padded agent rows are zero but for the task
    block, which every row repeats; within each row the ``visible`` / ``agent_visible`` blocks and the
    task block (features, alive flags, capacities) grow by zeros."""
    x = np.asarray(x)
    if x.shape[-2] != n or x.shape[-1] != graph_width(n, m, fa, ft):
        raise ValueError(f"packed graphs have shape {x.shape}, expected (..., {n}, {graph_width(n, m, fa, ft)}) "
                         f"for N={n}, M={m}")
    if n_max < n or m_max < m:
        raise ValueError(f"cannot pad graphs of N={n}, M={m} down to N={n_max}, M={m_max}")
    if (n_max, m_max) == (n, m):
        return x
    lead = x.shape[:-2]
    o = fa + 1
    t = o + m + n
    out = np.zeros((*lead, n_max, graph_width(n_max, m_max, fa, ft)), dtype=x.dtype)
    po, pt = o, o + m_max + n_max  # the padded layout's offsets
    out[..., :n, :o] = x[..., :o]                                  # agent_x, alive
    out[..., :n, po:po + m] = x[..., o:o + m]                      # visible
    out[..., :n, po + m_max:po + m_max + n] = x[..., o + m:t]      # agent_visible
    task_block = np.zeros((*lead, 1, m_max * ft + 2 * m_max), dtype=x.dtype)
    task_block[..., : m * ft] = x[..., :1, t:t + m * ft]           # task_x (row-major (M, FT)): real tasks first
    task_block[..., m_max * ft:m_max * ft + m] = x[..., :1, t + m * ft:t + m * ft + m]                  # task_alive
    task_block[..., m_max * ft + m_max:m_max * ft + m_max + m] = x[..., :1, t + m * ft + m:t + m * ft + 2 * m]  # k
    out[..., pt:] = task_block                                     # repeated in every row, padded ones too
    return out


def unpack_graph(x: torch.Tensor, m: int, fa: int, ft: int) -> GraphBatch:
    """Inverse of :func:`pack_graph` for a batch ``(B, N, D)`` (or one graph ``(N, D)``, given a batch axis)."""
    if x.dim() == 2:
        x = x.unsqueeze(0)
    B, n, D = x.shape
    if D != graph_width(n, m, fa, ft):
        raise ValueError(f"packed graph has width {D}, expected {graph_width(n, m, fa, ft)} for N={n}, M={m}")
    o = fa + 1
    agent_x = x[..., :fa]
    alive = x[..., fa] > 0.5
    visible = x[..., o:o + m] > 0.5
    agent_visible = x[..., o + m:o + m + n] > 0.5
    t = o + m + n
    row = x[:, 0]
    task_x = row[:, t:t + m * ft].reshape(B, m, ft)
    task_alive = row[:, t + m * ft:t + m * ft + m] > 0.5
    capacity = row[:, t + m * ft + m:t + m * ft + 2 * m].round().long()
    return GraphBatch(agent_x, task_x, alive, task_alive, capacity, visible, agent_visible)


class Family(abc.ABC):
    """Adapter of one environment family to the LPMARL learner (module docstring)."""

    name: str = ""
    #: agent / task node feature sizes (positions first)
    agent_dim: int = 0
    task_dim: int = 0

    def __init__(self, env: Any) -> None:
        self.check(env)

    @abc.abstractmethod
    def check(self, env: Any) -> None:
        """Raise :class:`IncompatibleError` when ``env`` is not of this family or not usable."""

    @abc.abstractmethod
    def graph(self, env: Any) -> TaskGraph:
        """The agent-task graph at the current state."""

    @abc.abstractmethod
    def sizes(self, env: Any) -> tuple[int, int]:
        """``(N, M)``: agents and tasks of ``env``."""

    @abc.abstractmethod
    def task_obs_dim(self, env: Any) -> int:
        """Width of the task-conditioned observation (independent of N and M)."""

    @abc.abstractmethod
    def n_task_actions(self) -> int:
        """Size of the task-relative low-level action set."""

    @abc.abstractmethod
    def task_obs(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        """``(N, task_obs_dim)`` float32 observations conditioned on ``assignment`` (LPMARL Eq. (8))."""

    @abc.abstractmethod
    def task_masks(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        """``(N, n_task_actions)`` bool valid low-level actions."""

    @abc.abstractmethod
    def env_actions(self, env: Any, assignment: np.ndarray, actions: np.ndarray) -> dict[str, Any]:
        """Task-relative low-level actions ``(N,)`` -> the ``env.step`` dict."""

    @abc.abstractmethod
    def low_rewards(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        """``(N,)`` sub-task rewards r^l_i of the last step (the assignment in force during it)."""

    @abc.abstractmethod
    def high_reward(self, env: Any, rewards: dict[str, float], infos: dict[str, Any]) -> float:
        """The team reward r^h of the last step."""

    @abc.abstractmethod
    def agent_alive(self, env: Any) -> np.ndarray:
        """``(N,)`` bool."""

    @abc.abstractmethod
    def distances(self, env: Any) -> np.ndarray:
        """``(N, M)`` agent-task distances in the environment's units (Fig. 2b)."""

    def event_key(self, env: Any) -> bytes:
        """Changes exactly when the high level must re-decide outside its period (none by default)."""
        return b""

    def resized(self, env: Any, n: int, m: int) -> Any:
        """A fresh environment of this family like ``env`` but with ``n`` agents and ``m`` tasks (mixed-size
        training, Sec. 5.1.2); :class:`IncompatibleError` where the family has no such knob."""
        raise IncompatibleError(f"algo.size_range draws the number of agents and tasks of every training episode, "
                                f"which the {self.name} environment does not allow (its sizes are fixed by its "
                                f"setting); drop algo.size_range or train on navigation")


class NavigationFamily(Family):
    """Constrained cooperative navigation (LPMARL Sec. 5.1; :mod:`hieralloc.envs.navigation`).

    Agents: ``[x, y, vx, vy, t/T]``; landmarks: ``[x, y, k_j, k_j / N]``; capacities: the landmark
    capacities (App. E.2); visibility: ``env.visible()`` / ``env.agent_visible()`` (obs_range);
    r^h: ``infos['high_reward']``; r^l_i: ``env.task_rewards(assignment)`` (Table 5 terms for the
    assigned landmark). Low-level actions are the environment's ``Discrete(5)`` moves.
    """

    name = "navigation"
    agent_dim = 5
    task_dim = 4

    def check(self, env: Any) -> None:
        from hieralloc.envs.navigation import NavigationEnv

        base = getattr(env, "unwrapped", env)
        if not isinstance(base, NavigationEnv):
            raise IncompatibleError(f"expected a navigation environment, got {type(base).__name__}")
        if not base.core.discrete:
            raise IncompatibleError("lpmarl's low-level policy is a softmax over discrete moves (LPMARL Eq. (8)); "
                                    "the navigation environment has env.movement=continuous; set "
                                    "env.movement=discrete")

    def sizes(self, env: Any) -> tuple[int, int]:
        return int(env.core.N), int(env.core.M)

    def graph(self, env: Any) -> TaskGraph:
        core = env.core
        n = int(core.N)
        pos, vel = env.agent_positions(), env.agent_velocities()
        t_frac = np.full((n, 1), core.t / max(core.T, 1))
        k = env.capacities()
        agent_x = np.concatenate([pos, vel, t_frac], axis=1)
        task_x = np.concatenate([env.landmark_positions(), k[:, None], k[:, None] / n], axis=1)
        return TaskGraph(agent_x, task_x, np.ones(n, dtype=bool), np.ones(int(core.M), dtype=bool),
                         k.astype(np.int64), env.visible(), env.agent_visible())

    def task_obs_dim(self, env: Any) -> int:
        return int(env.task_obs_dim)

    def n_task_actions(self) -> int:
        from hieralloc.envs.navigation import N_ACTIONS

        return int(N_ACTIONS)

    def task_obs(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.asarray(env.task_observation(assignment), dtype=np.float32)

    def task_masks(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.ones((int(env.core.N), self.n_task_actions()), dtype=bool)  # every move is always valid

    def env_actions(self, env: Any, assignment: np.ndarray, actions: np.ndarray) -> dict[str, Any]:
        return {a: int(actions[i]) for i, a in enumerate(env.possible_agents)}

    def low_rewards(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.asarray(env.task_rewards(assignment), dtype=np.float64)

    def high_reward(self, env: Any, rewards: dict[str, float], infos: dict[str, Any]) -> float:
        for info in infos.values():
            return float(info["high_reward"])
        return 0.0

    def agent_alive(self, env: Any) -> np.ndarray:
        return np.ones(int(env.core.N), dtype=bool)

    def distances(self, env: Any) -> np.ndarray:
        return np.asarray(env.distances(), dtype=np.float64)

    def resized(self, env: Any, n: int, m: int) -> Any:
        """``NavigationEnv`` with ``n_agents=n, n_landmarks=m`` and every other setting of ``env``'s config
        (capacities drawn per episode, App. E.2; fixed ``env.capacities`` fit one size only and are refused)."""
        from hieralloc.envs.navigation import NavigationEnv

        cfg = getattr(env, "unwrapped", env).config
        if cfg.capacities:
            raise IncompatibleError(f"algo.size_range draws N and M every episode, but env.capacities="
                                    f"{list(cfg.capacities)} fixes the capacities of one size; leave env.capacities "
                                    "empty (random capacities, LPMARL App. E.2) or drop algo.size_range")
        if not 1 <= int(m) <= int(n):
            raise IncompatibleError(f"navigation needs 1 <= M <= N landmarks, got N={n}, M={m}")
        return NavigationEnv(cfg.replace(n_agents=int(n), n_landmarks=int(m)))


class CombatFamily(Family):
    """Dynamic target assignment (the SMAC stand-in of LPMARL Sec. 5.2; :mod:`hieralloc.envs.combat`).

    Positions are centred on the arena and divided by its half width. Allies: ``[x, y, health
    fraction, cooldown fraction, max health / 100, damage per step / 10, weapon range / 10, speed]``;
    enemies the same without the cooldown. Tasks are the living enemies; capacities k_j =
    max(ceil(M / 2), ceil(living allies / living enemies)) (App. E.3's ceil(M / 2), raised to the
    smallest value that keeps Eq. (5)-(6) feasible). Visibility: the allies' sight range. r^h: the
    environment's team reward (sparse win by default); r^l_i: ``env.task_rewards(assignment,
    dense)``. Low-level actions are the 7 task-relative actions (attack *my* target).
    The high level re-decides whenever a unit dies (App. F.2).
    """

    name = "combat"
    agent_dim = 8
    task_dim = 7

    def __init__(self, env: Any, dense_task_reward: bool = True) -> None:
        super().__init__(env)
        self.dense = bool(dense_task_reward)

    def check(self, env: Any) -> None:
        from hieralloc.envs.combat import CombatEnv

        base = getattr(env, "unwrapped", env)
        if not isinstance(base, CombatEnv):
            raise IncompatibleError(f"expected a combat environment, got {type(base).__name__}")

    def sizes(self, env: Any) -> tuple[int, int]:
        return int(env.core.N), int(env.core.M)

    def _scale(self, env: Any) -> tuple[np.ndarray, float]:
        c = env.core
        return np.array([c.W / 2, c.H / 2]), c.W / 2

    def graph(self, env: Any) -> TaskGraph:
        c = env.core
        centre, s = self._scale(env)
        a_alive, e_alive = env.ally_alive(), env.enemy_alive()
        a_pos, e_pos = (env.ally_positions() - centre) / s, (env.enemy_positions() - centre) / s
        n, m = int(c.N), int(c.M)
        agent_x = np.concatenate([
            a_pos, env.ally_health()[:, None], (c.a_cdl[0] / c.a_cd)[:, None], (c.a_hp_max / 100.0)[:, None],
            (c.a_dmg / c.a_cd / 10.0)[:, None], (c.a_wr / 10.0)[:, None], c.a_speed[:, None]], axis=1)
        task_x = np.concatenate([
            e_pos, env.enemy_health()[:, None], (c.e_hp_max / 100.0)[:, None], (c.e_dmg / c.e_cd / 10.0)[:, None],
            (c.e_wr / 10.0)[:, None], c.e_speed[:, None]], axis=1)
        n_alive, m_alive = int(a_alive.sum()), int(e_alive.sum())
        k = max(math.ceil(m / 2), math.ceil(n_alive / max(m_alive, 1)))
        capacity = np.where(e_alive, k, 0).astype(np.int64)
        d = env.distances()
        sight = c.a_sight[:, None]
        visible = (d < sight) & a_alive[:, None] & e_alive[None, :]
        ad = np.hypot(*(env.ally_positions()[None, :, :] - env.ally_positions()[:, None, :]).transpose(2, 0, 1))
        agent_visible = (ad < sight) & a_alive[:, None] & a_alive[None, :] & ~np.eye(n, dtype=bool)
        return TaskGraph(agent_x, task_x, a_alive, e_alive, capacity, visible, agent_visible)

    def task_obs_dim(self, env: Any) -> int:
        return int(env.core.task_obs_dim)

    def n_task_actions(self) -> int:
        from hieralloc.envs.combat.core import N_TASK_ACTIONS

        return int(N_TASK_ACTIONS)

    def task_obs(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.asarray(env.task_observation(assignment), dtype=np.float32)

    def task_masks(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.asarray(env.task_action_masks(assignment), dtype=bool)

    def env_actions(self, env: Any, assignment: np.ndarray, actions: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = env.task_actions_to_env(assignment, actions)
        return out

    def low_rewards(self, env: Any, assignment: np.ndarray) -> np.ndarray:
        return np.asarray(env.task_rewards(assignment, dense=self.dense), dtype=np.float64)

    def high_reward(self, env: Any, rewards: dict[str, float], infos: dict[str, Any]) -> float:
        for r in rewards.values():
            return float(r)  # the team reward, the same for every agent
        return 0.0

    def agent_alive(self, env: Any) -> np.ndarray:
        return np.asarray(env.ally_alive(), dtype=bool)

    def distances(self, env: Any) -> np.ndarray:
        return np.asarray(env.distances(), dtype=np.float64)

    def event_key(self, env: Any) -> bytes:
        return env.ally_alive().tobytes() + env.enemy_alive().tobytes()


#: env family name -> adapter class
FAMILIES: dict[str, type[Family]] = {"navigation": NavigationFamily, "combat": CombatFamily}


def family_of(env: Any, dense_task_reward: bool = True, algo: str = "lpmarl") -> Family:
    """The adapter of ``env``'s family; :class:`IncompatibleError` for any other environment."""
    from hieralloc.envs.combat import CombatEnv
    from hieralloc.envs.navigation import NavigationEnv

    base = getattr(env, "unwrapped", env)
    if isinstance(base, NavigationEnv):
        return NavigationFamily(base)
    if isinstance(base, CombatEnv):
        return CombatFamily(base, dense_task_reward)
    raise IncompatibleError(f"{algo} runs on the navigation and combat environments (an agent-task graph with "
                            f"task-conditioned observations); got {type(base).__name__}")


__all__ = ["FAMILIES", "CombatFamily", "Family", "GraphBatch", "NavigationFamily", "TaskGraph", "family_of",
           "graph_width", "pack_graph", "pad_graph", "pad_packed", "unpack_graph"]
