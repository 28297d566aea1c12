r"""The LPMARL learner (paper 002, Sec. 3-4, App. B-D, F.1.3) and its variants, as one class.

Two decision levels run through the library's one hierarchical composition
(:class:`~hieralloc.algos.hierarchy.HierarchicalController`):

* :class:`AssignmentLevel` (period ``tau``; combat also re-decides when a unit dies, App. F.2):
  builds the agent-task graph (Sec. 3.1), scores every pair with the GNN cost model ``C_theta(s)``
  (Eq. (1)-(3)) and solves the assignment LP of Eq. (4)-(7) for ``Z*`` (:func:`~hieralloc.lpmarl.assign.lp_assign`);
  the agents' tasks ``a^h_i = argmax_j z*_ij`` are the goal it hands down. The ablations replace the
  rule (``high_level``): ``nolp`` a per-agent softmax over ``C`` (Sec. 5 "No-LP"), ``lpdist`` the LP
  on ``-D`` (App. F.1.3), ``greedy`` the nearest task (App. F.1.3).
* :class:`ExecutorLevel` (every step): the task-conditioned low-level policy of Eq. (8),
  ``pi^l(a^l_i | o_i, a^h_i)``, a softmax over an MLP of ``env.task_observation(assignment)``, one
  network shared by all agents (so by every group).

Training (one ``train_iteration`` = one episode collected + ``updates_per_episode`` gradient steps
on ``batch_size`` replayed episodes):

* high-level critic ``Q^h(s, a^h_i = j)`` (a second bipartite GNN with a pair head): Eq. (13)-(14),
  ``y = r^h + gamma^tau sum_i max Q^h-bar(s_{t+tau}, .)`` with ``r^h`` the discounted team reward
  over the decision's interval;
* high-level policy: ``-J_h = -sum_ij z*_ij(C_theta(s)) Q^h(s, i, j)`` (Eq. (15)); its gradient goes
  through the LP by the blackbox rule of Eq. (10)-(12), (16) (``lam``), or the perturbed optimiser;
* low-level critic: the per-group VDN sum of Eq. (17)-(18) on the groups' summed sub-task rewards;
* low-level policy: Eq. (19) (expectation over the discrete actions in closed form, on the online
  critic, advantages normalised per batch, entropy bonus);
* the two policy objectives are combined as ``J = w J_l + (1 - w) J_h`` with ``w`` decayed from 0.9
  to 0.1 (Sec. 4); target critics Polyak-averaged (or hard copies, ``target_update``);
* exploration in training episodes: a random feasible assignment with probability epsilon at a
  learned high level's decision, and epsilon of uniform actions mixed into the low-level policy;
* each level trains on its own reward (App. E): navigation's ``high_reward`` / ``task_rewards``,
  combat's team (sparse win) reward / ``task_rewards``.

Mixed problem sizes (``size_range=[lo, hi]``, Sec. 5.1.2 / Table 2): each training episode draws
``N ~ U{lo..hi}`` then ``M ~ U{lo..min(N, hi)}`` and plays a navigation env of that size
(:meth:`~hieralloc.algos.lpmarl.graph.Family.resized`); replay stores every episode padded to
``(hi, hi)`` with dead agents and tasks, which every loss, mask and the LP already ignore.

Dec-LPMARL (``decentralised=true``, App. D): a third bipartite GNN on the graph restricted to the
observation range is trained by behaviour cloning (Eq. (20)) on the LP's current assignments of
replayed states; its amortisation accuracy (Fig. 6) is logged (``dec/accuracy``) and the
evaluation policy uses it instead of the LP. Choices the paper leaves open: docs/methods/lpmarl.md.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hieralloc.algos.base import checkpoint_for, load_progress, progress_state
from hieralloc.algos.hierarchy import HierarchicalController, Level
from hieralloc.algos.lpmarl.buffer import EpisodeRing, pad_agents
from hieralloc.algos.lpmarl.config import (
    LEARNED_HIGH_LEVELS,
    DecLPMARLConfig,
    GreedyConfig,
    LPDistConfig,
    LPMARLConfig,
    NoLPConfig,
)
from hieralloc.algos.lpmarl.graph import Family, GraphBatch, family_of, pack_graph, pad_packed, unpack_graph
from hieralloc.algos.lpmarl.losses import (
    agent_targets,
    bc_loss,
    group_vdn_loss,
    high_actor_loss,
    high_critic_loss,
    independent_max,
    interval_returns,
    joint_loss,
    lambda_returns,
    level_weight,
    low_actor_loss,
    masked_log_softmax,
)
from hieralloc.algos.lpmarl.nets import graph_forward, graph_model, low_net
from hieralloc.algos.marl import seeded_torch
from hieralloc.errors import CheckpointError, ConfigError, IncompatibleError
from hieralloc.lpmarl.assign import assigned_tasks, lp_assign
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

_NEG = -1e9
#: low-level replay fields with an agent axis and the value of a padded (dead) agent (mixed sizes, Sec. 5.1.2)
_LOW_PADDING: dict[str, Any] = {"obs": 0.0, "avail": False, "action": 0, "task": -1, "reward": 0.0, "next_obs": 0.0,
                                "next_avail": False, "alive": False, "next_alive": False}


class _Context:
    """What the levels read at one step: the environment, its family adapter, and a one-entry cache of
    the task observation (the learner computes it after a step under the assignment in force; the
    executor reuses it at the next step when the assignment did not change)."""

    def __init__(self, env: Any, family: Family) -> None:
        self.env = env
        self.family = family
        self._key: tuple[int, bytes] | None = None
        self._value: tuple[np.ndarray, np.ndarray] | None = None

    def task_obs(self, assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(assignment, dtype=np.int64)
        key = (int(self.env.t), z.tobytes())
        if key != self._key or self._value is None:
            self._value = (self.family.task_obs(self.env, z), self.family.task_masks(self.env, z))
            self._key = key
        return self._value


def _describe(variant: dict[str, Any]) -> str:
    """``high_level=lp, decentralised=true, family navigation`` for error messages."""
    return (f"high_level={variant.get('high_level')}, decentralised={str(variant.get('decentralised')).lower()}, "
            f"{variant.get('family')}")


def _sample_rows(logp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row drawn from the row distributions ``exp(logp)`` (inverse CDF, one uniform per row)."""
    p = np.exp(logp - logp.max(1, keepdims=True))
    c = np.cumsum(p, 1)
    u = rng.random(p.shape[0]) * c[:, -1]
    return np.minimum((c <= u[:, None]).sum(1), p.shape[1] - 1)


class AssignmentLevel(Level):
    """The high level: agent-task graph -> tasks ``(N,)`` (-1 for dead agents), every ``tau`` steps."""

    def __init__(self, owner: LPMARLLearner, mode: str) -> None:
        self.owner = owner
        self.mode = mode
        self.period = owner.cfg.tau

    def observe(self, ctx: _Context, goal: Any) -> tuple[np.ndarray, np.ndarray]:
        g = ctx.family.graph(ctx.env)
        return pack_graph(g), g.agent_alive[:, None] & g.task_alive[None, :]

    def choose(self, inputs: np.ndarray, avail: np.ndarray, hidden: Any, explore: float,
               rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        return self.owner.decide(inputs, avail.shape[1], self.mode, explore, rng), hidden

    def initial_hidden(self) -> Any:
        return None

    def goal(self, ctx: _Context, choices: np.ndarray) -> Any:
        return np.asarray(choices, dtype=np.int64)


class DecAssignmentLevel(AssignmentLevel):
    """Dec-LPMARL's high level (App. D): each agent's task from the local GNN policy; counts how often it
    equals the centralised LP's choice on the same state (amortisation accuracy, Fig. 6)."""

    def __init__(self, owner: LPMARLLearner) -> None:
        super().__init__(owner, "dec")
        self.matches = 0
        self.total = 0

    def choose(self, inputs: np.ndarray, avail: np.ndarray, hidden: Any, explore: float,
               rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        m = avail.shape[1]
        tasks = self.owner.decide(inputs, m, "dec", explore, rng)
        teacher = self.owner.decide(inputs, m, "lp", 0.0, rng)
        alive = teacher >= 0
        self.matches += int((tasks[alive] == teacher[alive]).sum())
        self.total += int(alive.sum())
        return tasks, hidden


class ExecutorLevel(Level):
    """The low level (Eq. (8)): task observation -> one task-relative action per agent, every step.
    ``explore > 0``: sample from ``(1 - mix) pi^l + mix * uniform`` (``mix`` set by the trainer per
    episode, COMA's exploration); ``explore = 0``: the policy's mode."""

    period = 1

    def __init__(self, owner: LPMARLLearner) -> None:
        self.owner = owner
        self.mix = 0.0

    def observe(self, ctx: _Context, goal: Any) -> tuple[np.ndarray, np.ndarray]:
        return ctx.task_obs(goal)

    def choose(self, inputs: np.ndarray, avail: np.ndarray, hidden: Any, explore: float,
               rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        return self.owner.act_low(inputs, avail, explore > 0, rng, self.mix), hidden

    def initial_hidden(self) -> Any:
        return None


class LPMARLLearner:
    """Trainer-facing LPMARL learner (module docstring); the variant is ``cfg.high_level`` /
    ``cfg.decentralised``."""

    algo_name = "lpmarl"

    def __init__(self, env: Any, cfg: LPMARLConfig, seed: int) -> None:
        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        self.family = family_of(env, cfg.task_reward_dense, self.algo_name)
        self.n_agents, self.n_tasks = self.family.sizes(env)
        self.task_obs_dim = self.family.task_obs_dim(env)
        #: mixed problem sizes (LPMARL Sec. 5.1.2, Table 2: "the policy learned from 3 <= N, M <= 10"):
        #: ``(lo, hi)`` or ``()``; the training envs of each drawn size, built on demand (deterministically)
        self.size_range: tuple[int, ...] = tuple(int(v) for v in cfg.size_range)
        self._sized_envs: dict[tuple[int, int], Any] = {}
        if self.size_range:
            lo, hi = self.size_range
            self.sized_env(lo, lo)  # the family must allow it (navigation; not combat) and keep task_obs_dim
            # replay holds every episode padded with dead agents / tasks to the largest size (hi, hi)
            self.n_agents, self.n_tasks = hi, hi
        #: the environment of the last training episode (``cost_snapshot``'s default)
        self.train_env = env
        self.n_low_actions = self.family.n_task_actions()
        self.learned_high = cfg.high_level in LEARNED_HIGH_LEVELS
        fa, ft = self.family.agent_dim, self.family.task_dim
        with seeded_torch(self.seed):
            self.policy_l = low_net(self.task_obs_dim, cfg.policy_units, self.n_low_actions)
            self.critic_l = low_net(self.task_obs_dim, cfg.critic_units, self.n_low_actions)
            self.cost_model = graph_model(fa, ft, cfg.gnn_units, cfg.cost_units, cfg.gnn_rounds, cfg.gnn_aggr) \
                if self.learned_high else None
            self.critic_h = graph_model(fa, ft, cfg.gnn_units, cfg.critic_units, cfg.gnn_rounds, cfg.gnn_aggr) \
                if self.learned_high else None
            self.student = graph_model(fa, ft, cfg.gnn_units, cfg.cost_units, cfg.gnn_rounds, cfg.gnn_aggr) \
                if cfg.decentralised else None
        self.target_critic_l = copy.deepcopy(self.critic_l)
        self.target_critic_h = copy.deepcopy(self.critic_h)
        for m in (self.target_critic_l, self.target_critic_h):
            if m is not None:
                for p in m.parameters():
                    p.requires_grad_(False)
        actor_params = list(self.policy_l.parameters())
        if self.cost_model is not None:
            actor_params += list(self.cost_model.parameters())
        self.actor_params = actor_params
        # Sec. 4: theta_h and theta_l optimised jointly on J = w J_l + (1 - w) J_h (Table 4: Adam, 1e-3)
        self.opts: dict[str, torch.optim.Optimizer] = {
            "actor": torch.optim.Adam(actor_params, lr=cfg.lr),
            "critic_l": torch.optim.Adam(self.critic_l.parameters(), lr=cfg.lr),
        }
        if self.critic_h is not None:
            self.opts["critic_h"] = torch.optim.Adam(self.critic_h.parameters(), lr=cfg.lr)
        if self.student is not None:
            self.opts["student"] = torch.optim.Adam(self.student.parameters(), lr=cfg.lr)
        self.low_buf = EpisodeRing(cfg.buffer_size)
        self.high_buf = EpisodeRing(cfg.buffer_size, plus_one=("x",))
        self.executor = ExecutorLevel(self)
        self.assignment = AssignmentLevel(self, cfg.high_level)
        self.controller = HierarchicalController([self.executor, self.assignment])
        self.rng = np.random.default_rng(self.seed)
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        #: the greedy policy of the centralised hierarchy (LP, or the ablation's rule)
        self.central_policy = LPMARLPolicy(self, decentralised=False)
        #: the evaluation policy: Dec-LPMARL's local high level when ``decentralised``, else the central one
        self.policy = LPMARLPolicy(self, decentralised=True) \
            if cfg.decentralised and not cfg.evaluate_central else self.central_policy
        #: where the networks came from (``finetune_from``), '' for a fresh start
        self.pretrained = ""
        if cfg.finetune_from:
            self.load_pretrained(Path(cfg.finetune_from))

    def load_pretrained(self, path: Path) -> None:
        """Every network of a trained run of the same variant (its newest checkpoint); replay buffers,
        optimisers and counters stay fresh. The networks act on nodes and edges only, so the source may
        have been trained on another ``(N, M)`` (Sec. 5.1.2)."""
        from hieralloc.runs import RunDir, load_checkpoint

        if path.is_dir():
            ckpts = RunDir(path).checkpoints()
            if not ckpts:
                raise ConfigError("algo.finetune_from", f"'{path}' holds no checkpoint; pass the run directory of a "
                                  f"finished {self.algo_name} training run (or one of its checkpoints/ckpt_*.pt)")
            path = ckpts[-1][1]
        elif not path.is_file():
            raise ConfigError("algo.finetune_from", f"'{path}' does not exist; pass the run directory of a trained "
                              f"{self.algo_name} run")
        state = load_checkpoint(path)["payload"]["learner"]
        nets = state.get("nets") if isinstance(state, dict) else None
        if not isinstance(nets, dict) or "policy_l" not in nets:
            raise ConfigError("algo.finetune_from", f"'{path}' is not a checkpoint of an LPMARL learner (lpmarl, "
                              "dec-lpmarl, lpmarl-nolp, lpmarl-lpdist, lpmarl-greedy)")
        variant = state.get("variant", {})
        mine = self._variant()
        if variant and variant != mine:
            raise ConfigError("algo.finetune_from", f"'{path}' holds a {_describe(variant)} learner, this run is "
                              f"{_describe(mine)}; start from a run of the same variant")
        mods = self._modules()
        if set(nets) != set(mods):
            raise ConfigError("algo.finetune_from", f"'{path}' holds networks {sorted(nets)}, this variant has "
                              f"{sorted(mods)}; start from a run of the same variant")
        try:
            for k, m in mods.items():
                m.load_state_dict(nets[k])
        except RuntimeError as e:
            raise CheckpointError(f"'{path}' was trained with other network sizes or environment features "
                                  f"({str(e).splitlines()[0]}); use the source run's algo.*_units, gnn_rounds and "
                                  "task_neighbors / task_obs_* settings") from None
        self.pretrained = str(path)

    def sized_env(self, n: int, m: int) -> Any:
        """The training environment with ``n`` agents and ``m`` tasks (``size_range``): ``env``'s family and
        settings at another size (:meth:`Family.resized`), one per size, built on first use."""
        key = (int(n), int(m))
        env = self._sized_envs.get(key)
        if env is None:
            env = self.family.resized(self.env, *key)
            dim = self.family.task_obs_dim(env)
            if dim != self.task_obs_dim:  # pragma: no cover - navigation's width does not depend on N, M
                raise IncompatibleError(f"algo.size_range: the {self.family.name} environment's task observation "
                                        f"has {dim} entries at N={n}, M={m} but {self.task_obs_dim} at the "
                                        "configured size; the low-level policy needs one width")
            self._sized_envs[key] = env
        return env

    def draw_size(self) -> tuple[int, int]:
        """LPMARL Sec. 5.1.2 (Table 2's training range): ``N ~ U{lo..hi}``, then ``M ~ U{lo..min(N, hi)}``
        (``M <= N``: every landmark needs capacity >= 1), drawn with the learner's generator."""
        lo, hi = self.size_range
        n = int(self.rng.integers(lo, hi + 1))
        m = int(self.rng.integers(lo, min(n, hi) + 1))
        return n, m

    def _variant(self) -> dict[str, Any]:
        return {"high_level": self.cfg.high_level, "decentralised": bool(self.cfg.decentralised),
                "family": self.family.name}

    # --- networks ----------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        named: dict[str, nn.Module | None] = {
            "policy_l": self.policy_l, "critic_l": self.critic_l, "target_critic_l": self.target_critic_l,
            "cost_model": self.cost_model, "critic_h": self.critic_h, "target_critic_h": self.target_critic_h,
            "student": self.student,
        }
        return {k: v for k, v in named.items() if v is not None}

    def _graphs(self, x: torch.Tensor, m: int) -> GraphBatch:
        return unpack_graph(x, m, self.family.agent_dim, self.family.task_dim)

    # --- acting ------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        """Exploration rate of the training episodes (linear decay): the probability of a random feasible
        assignment at a learned high level's decision, and the uniform share of the low level's actions."""
        c = self.cfg
        frac = min(1.0, self.env_steps / c.eps_anneal_steps)
        return float(c.eps_start + frac * (c.eps_end - c.eps_start))

    def _lp(self, scores: torch.Tensor, g: GraphBatch) -> torch.Tensor:
        """``Z*`` (Eq. (4)-(7)) of ``scores`` ``(B, N, M)`` on the graphs' capacities and alive masks (no gradient)."""
        with torch.no_grad():
            return lp_assign(scores.detach().double(), g.capacity.numpy(), agent_mask=g.agent_alive.numpy(),
                             task_mask=g.task_alive.numpy(), method=self.cfg.lp_method)  # type: ignore[arg-type]

    @torch.no_grad()
    def decide(self, inputs: np.ndarray, n_tasks: int, mode: str, explore: float,
               rng: np.random.Generator) -> np.ndarray:
        """Tasks ``(N,)`` (-1: dead agent) of one packed graph under the high-level rule ``mode``
        (lp, nolp, lpdist, greedy, or dec for Dec-LPMARL's local policy). ``explore > 0`` (training):
        with that probability a learned rule takes a uniformly random feasible assignment instead, and
        No-LP / Dec-LPMARL sample from their softmax."""
        g = self._graphs(torch.from_numpy(np.asarray(inputs, dtype=np.float32))[None], n_tasks)
        allowed = g.allowed[0].numpy()
        alive = g.agent_alive[0].numpy()
        n = allowed.shape[0]
        random_pick = mode in LEARNED_HIGH_LEVELS and explore > 0 and bool(rng.random() < explore)
        if mode == "lpdist" or (mode == "lp" and random_pick):
            # LP-distance (App. F.1.3) maximises -D (minimises the summed distance); exploration: random scores
            scores = -g.distances() if mode == "lpdist" else torch.from_numpy(rng.random((1, n, n_tasks)))
            tasks = assigned_tasks(self._lp(scores, g))[0].numpy()
        elif mode == "lp":
            assert self.cost_model is not None
            tasks = assigned_tasks(self._lp(graph_forward(self.cost_model, g), g))[0].numpy()
        elif mode == "greedy":  # App. F.1.3: each agent its nearest (alive) task, capacities ignored
            d = g.distances()[0].numpy()
            tasks = np.where(allowed, d, np.inf).argmin(1)
        else:  # per-agent softmax: No-LP over C_theta(s), Dec-LPMARL over its local logits
            if mode == "nolp":
                assert self.cost_model is not None
                logits = graph_forward(self.cost_model, g)
                choice = allowed
            else:
                assert self.student is not None
                logits = graph_forward(self.student, g, local=True)
                choice = self.dec_choices(g)[0].numpy()
            logp = masked_log_softmax(logits[0], torch.from_numpy(choice)).numpy()
            if random_pick:
                logp = np.where(choice | ~choice.any(1, keepdims=True), 0.0, _NEG)
            tasks = _sample_rows(logp, rng) if explore > 0 else logp.argmax(1)
        return np.where(alive, tasks, -1).astype(np.int64)

    @staticmethod
    def dec_choices(g: GraphBatch) -> torch.Tensor:
        """Dec-LPMARL's choice sets ``(B, N, M)``: the alive tasks within the agent's range, or every alive
        task when it sees none (it must still pick one; App. D's graph gives it no edge then)."""
        local = g.visible & g.allowed
        return torch.where(local.any(-1, keepdim=True), local, g.allowed)

    @torch.no_grad()
    def act_low(self, obs: np.ndarray, avail: np.ndarray, sample: bool, rng: np.random.Generator,
                mix: float = 0.0) -> np.ndarray:
        """Low-level actions ``(N,)``: the mode of Eq. (8)'s softmax (evaluation) or, with ``sample``, a draw
        from ``(1 - mix) pi^l + mix * uniform over the valid actions`` (training; COMA's exploration)."""
        m = np.asarray(avail, dtype=bool)
        logits = self.policy_l(torch.from_numpy(np.asarray(obs, dtype=np.float32)))
        logp = masked_log_softmax(logits, torch.from_numpy(m)).numpy()
        if not sample:
            return logp.argmax(1)
        if mix > 0:
            p = (1.0 - mix) * np.exp(logp) + mix * m / np.maximum(m.sum(1, keepdims=True), 1)
            with np.errstate(divide="ignore"):
                logp = np.log(p)
        return _sample_rows(logp, rng)

    # --- data collection ---------------------------------------------------------------------------
    def collect_episode(self) -> dict[str, float]:
        """Play one training episode through the hierarchy and store both levels' transitions."""
        from hieralloc.eval import episode_seed

        env, fam, cfg = self.env, self.family, self.cfg
        if self.size_range:  # mixed sizes (Sec. 5.1.2): this episode's (N, M), drawn before the reset
            env = self.sized_env(*self.draw_size())
        self.train_env = env
        n_ep, m_ep = fam.sizes(env)
        env.reset(seed=episode_seed(self.seed, self.episodes))
        ctx = _Context(env, fam)
        ctl = self.controller
        ctl.reset(trace=True)
        eps = self.epsilon()
        self.executor.mix = eps
        key, clock, t = fam.event_key(env), 0, 0
        dec_steps: list[int] = []
        low: dict[str, list[Any]] = {k: [] for k in ("obs", "avail", "action", "task", "reward", "next_obs",
                                                     "next_avail", "alive", "next_alive")}
        r_high: list[float] = []
        terminated = False
        while env.agents:
            k = fam.event_key(env)
            if k != key:  # a unit died: the high level re-decides now (App. F.2)
                key, clock = k, 0
            n_dec = len(ctl.records[1]["actions"])
            u = ctl.step(clock, ctx, [1.0, eps if self.learned_high else 0.0], self.rng)
            if len(ctl.records[1]["actions"]) > n_dec:
                dec_steps.append(t)
            z = np.asarray(ctl.goals[1], dtype=np.int64)
            low["obs"].append(ctl.records[0]["obs"][-1])
            low["avail"].append(ctl.records[0]["avail"][-1])
            low["action"].append(u)
            low["task"].append(z)
            low["alive"].append(fam.agent_alive(env))
            _, rew, term, _trunc, infos = env.step(fam.env_actions(env, z, u))
            r_high.append(fam.high_reward(env, rew, infos))
            low["reward"].append(fam.low_rewards(env, z))
            nxt, nxt_avail = ctx.task_obs(z)  # s_{t+1} under the same assignment (Eq. (18))
            low["next_obs"].append(nxt)
            low["next_avail"].append(nxt_avail)
            low["next_alive"].append(fam.agent_alive(env))
            terminated = any(bool(v) for v in term.values())
            t += 1
            clock += 1
        ctl.close_trace(ctx)
        L = t
        end_done = terminated or not cfg.bootstrap_on_truncation
        done = np.zeros(L, dtype=bool)
        done[-1] = end_done
        self.store_low(L, n_ep, {
            "obs": np.stack(low["obs"]).astype(np.float32), "avail": np.stack(low["avail"]).astype(bool),
            "action": np.stack(low["action"]).astype(np.int64), "task": np.stack(low["task"]),
            "reward": np.stack(low["reward"]).astype(np.float32),
            "next_obs": np.stack(low["next_obs"]).astype(np.float32),
            "next_avail": np.stack(low["next_avail"]).astype(bool), "alive": np.stack(low["alive"]),
            "next_alive": np.stack(low["next_alive"]), "done": done})
        rh = np.asarray(r_high, dtype=np.float64)
        if self.learned_high:
            R, disc = interval_returns(rh, dec_steps, cfg.gamma)  # Eq. (14): r^h over the interval, gamma^tau
            k_dec = len(dec_steps)
            hdone = np.zeros(k_dec, dtype=bool)
            hdone[-1] = end_done
            self.store_high(k_dec, n_ep, m_ep, {
                "x": np.stack(ctl.records[1]["obs"]).astype(np.float32),
                "task": np.stack(ctl.records[1]["actions"]).astype(np.int64),
                "reward": R.astype(np.float32), "discount": disc.astype(np.float32), "done": hdone})
        info = {"episode_length": float(L), "high_return": float(rh.sum()),
                "low_return": float(np.sum(low["reward"]) / n_ep), "decisions": float(len(dec_steps)),
                "epsilon": eps}
        if self.size_range:
            info["size/n_agents"], info["size/n_tasks"] = float(n_ep), float(m_ep)
        metrics = getattr(env, "episode_metrics", None)
        if callable(metrics):
            for name, v in metrics().items():
                if np.isfinite(v):
                    info[f"env/{name}"] = float(v)
        return info

    def store_low(self, length: int, n: int, fields: dict[str, np.ndarray]) -> None:
        """Store one episode's low-level steps of ``n`` agents, padded with dead agents to ``n_agents``."""
        if n != self.n_agents:
            fields = {k: pad_agents(v, self.n_agents, _LOW_PADDING[k]) if k in _LOW_PADDING else v
                      for k, v in fields.items()}
        self.low_buf.insert(length, fields)

    def store_high(self, length: int, n: int, m: int, fields: dict[str, np.ndarray]) -> None:
        """Store one episode's decisions on ``n`` agents and ``m`` tasks; graphs and tasks padded with dead
        agents and tasks to ``(n_agents, n_tasks)`` (:func:`~hieralloc.algos.lpmarl.graph.pad_packed`)."""
        if (n, m) != (self.n_agents, self.n_tasks):
            fields = dict(fields)
            fields["x"] = pad_packed(fields["x"], n, m, self.n_agents, self.n_tasks, self.family.agent_dim,
                                     self.family.task_dim)
            fields["task"] = pad_agents(fields["task"], self.n_agents, -1)
        self.high_buf.insert(length, fields)

    # --- learning ------------------------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """One gradient step of every network on ``batch_size`` replayed episodes (module docstring)."""
        cfg = self.cfg
        idx = self.low_buf.sample_indices(cfg.batch_size, self.rng)
        lo = self.low_buf.gather(idx)  # (B, T, N, ...)
        mk = lo["mask"]
        alive, tasks = lo["alive"], lo["task"]
        out: dict[str, float] = {}
        w = level_weight(self.env_steps, cfg.w_start, cfg.w_end, cfg.w_decay_steps)
        # low-level critic, Eq. (17)-(18) (TD(lambda) per agent, summed per group)
        q = self.critic_l(lo["obs"][mk])
        q_taken = q.gather(-1, lo["action"][mk].unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            navail = lo["next_avail"]
            qn = self.target_critic_l(lo["next_obs"]).masked_fill(~navail, _NEG).amax(-1)
            qn = torch.where(navail.any(-1), qn, torch.zeros_like(qn))
            tm = (lambda v: v.transpose(0, 1))  # noqa: E731  (B, T, ...) <-> (T, B, ...)
            G = tm(agent_targets(tm(lo["reward"]), tm(qn), tm(lo["next_alive"]), tm(lo["done"]),
                                 tm(mk.unsqueeze(-1) & alive), cfg.gamma, cfg.td_lambda))
            q_eval = q.detach()  # Q^l(s, a; phi_l) of Eq. (19): the online critic before its step (docs: Choices)
        lc = group_vdn_loss(q_taken, G[mk], tasks[mk], alive[mk], self.n_tasks)
        out.update({f"low/critic_{k}": float(v.detach()) for k, v in lc.items()})
        out["low/critic_grad_norm"] = self._step("critic_l", lc["loss"], self.critic_l.parameters())
        # low-level policy, Eq. (19)
        la = low_actor_loss(self.policy_l(lo["obs"][mk]), lo["avail"][mk], q_eval, alive[mk], cfg.entropy_coef)
        out.update({f"low/actor_{k}": float(v.detach()) for k, v in la.items()})
        high_loss: torch.Tensor | None = None
        if self.learned_high:
            high_loss = self._high_losses(idx, out)
        # Sec. 4: J = w J_l + (1 - w) J_h, one step on theta_l and theta_h together
        actor = joint_loss(w, la["loss"], high_loss)
        out["actor_loss"] = float(actor.detach())
        out["actor_grad_norm"] = self._step("actor", actor, self.actor_params)
        if self.student is not None:
            self._bc_step(idx, out)
        self.updates += 1
        self._update_targets()
        out["w"] = w
        return out

    @torch.no_grad()
    def _update_targets(self) -> None:
        pairs: list[tuple[nn.Module, nn.Module]] = [(self.critic_l, self.target_critic_l)]
        if self.critic_h is not None and self.target_critic_h is not None:
            pairs.append((self.critic_h, self.target_critic_h))
        if self.cfg.target_update == "soft":
            tau = self.cfg.target_tau
            for src, dst in pairs:
                for p, tp in zip(src.parameters(), dst.parameters(), strict=True):
                    tp.mul_(1.0 - tau).add_(tau * p)
        elif self.updates % self.cfg.target_interval == 0:
            for src, dst in pairs:
                dst.load_state_dict(src.state_dict())

    def _step(self, name: str, loss: torch.Tensor, params: Any) -> float:
        opt = self.opts[name]
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(list(params), self.cfg.grad_clip)
        opt.step()
        return float(norm)

    def _high_batch(self, idx: torch.Tensor) -> tuple[GraphBatch, GraphBatch, dict[str, torch.Tensor]]:
        """Decisions of the episodes ``idx``: graphs at the decisions and at the next ones (flattened over the
        real decisions), the episodes' ``(B, K)`` fields and their ``mask``."""
        hi = self.high_buf.gather(idx)
        mk = hi["mask"]
        x = hi["x"]
        g = self._graphs(x[:, :-1][mk], self.n_tasks)
        gn = self._graphs(x[:, 1:][mk], self.n_tasks)
        return g, gn, {k: hi[k] for k in ("task", "reward", "discount", "done", "mask")}

    def _high_losses(self, idx: torch.Tensor, out: dict[str, float]) -> torch.Tensor:
        """High-level critic step (Eq. (13)-(14)); returns the high-level policy loss ``-J_h`` (Eq. (15))."""
        cfg = self.cfg
        assert self.cost_model is not None and self.critic_h is not None and self.target_critic_h is not None
        g, gn, b = self._high_batch(idx)
        mk = b["mask"]
        qh = graph_forward(self.critic_h, g)
        with torch.no_grad():
            q_next = graph_forward(self.target_critic_h, gn)
            live = ~b["done"][mk]
            nv = torch.zeros(live.shape, dtype=q_next.dtype)
            if cfg.target_max == "independent":
                nv = independent_max(q_next, gn.allowed)
            elif bool(live.any()):  # the best joint assignment within the capacities (LP on Q-bar)
                gl = GraphBatch(*(f[live] for f in gn))
                z = self._lp(q_next[live], gl)
                nv[live] = (z.to(q_next.dtype) * q_next[live]).sum((-1, -2))
            next_value = torch.zeros(mk.shape, dtype=nv.dtype)
            next_value[mk] = nv
            tm = (lambda v: v.transpose(0, 1))  # noqa: E731  (B, K) <-> (K, B)
            # Eq. (14) (lambda = 0), as TD(lambda) over the episode's decisions
            y = tm(lambda_returns(tm(b["reward"]), tm(b["discount"]), tm(b["done"]), tm(mk), tm(next_value),
                                  cfg.td_lambda))[mk]
        tasks = b["task"][mk]
        hc, q_tot = high_critic_loss(qh, tasks, g.agent_alive, y)
        out["high/critic_loss"] = float(hc.detach())
        out["high/q_tot"] = float(q_tot.detach().mean())
        out["high/target"] = float(y.mean())
        out["high/critic_grad_norm"] = self._step("critic_h", hc, self.critic_h.parameters())
        costs = graph_forward(self.cost_model, g)
        if cfg.high_level == "lp":
            # Eq. (15)-(16): Z*(C) with the blackbox (or perturbed) gradient of the assignment layer
            z = lp_assign(costs, g.capacity.numpy(), agent_mask=g.agent_alive.numpy(), task_mask=g.task_alive.numpy(),
                          mode=cfg.lp_gradient, lam=cfg.lam, sigma=cfg.lp_sigma,  # type: ignore[arg-type]
                          n_samples=cfg.lp_samples, method=cfg.lp_method, generator=self.rng)  # type: ignore[arg-type]
            loss = high_actor_loss(z, qh, g.agent_alive)
        else:  # No-LP: the per-agent softmax over C_theta(s) is a stochastic policy, trained like the low level
            terms = low_actor_loss(costs, g.allowed, qh, g.agent_alive, cfg.entropy_coef)
            loss = terms["loss"]
            out["high/entropy"] = float(terms["entropy"])
        out["high/actor_loss"] = float(loss.detach())
        return loss

    def _bc_step(self, idx: torch.Tensor, out: dict[str, float]) -> None:
        """Dec-LPMARL, App. D: one behaviour-cloning step (Eq. (20)) towards the LP's current assignments."""
        assert self.student is not None and self.cost_model is not None
        g, _, _ = self._high_batch(idx)
        with torch.no_grad():
            teacher = assigned_tasks(self._lp(graph_forward(self.cost_model, g), g))
        bc = bc_loss(graph_forward(self.student, g, local=True), self.dec_choices(g), teacher, g.agent_alive)
        out["dec/bc_loss"] = float(bc["loss"].detach())
        out["dec/accuracy"] = float(bc["accuracy"])  # amortisation accuracy before the step (Fig. 6)
        out["dec/grad_norm"] = self._step("student", bc["loss"], self.student.parameters())

    def train_iteration(self) -> dict[str, float]:
        """Collect one episode; once ``batch_size`` episodes are stored, ``updates_per_episode`` gradient steps."""
        out = self.collect_episode()
        self.env_steps += int(out["episode_length"])
        self.episodes += 1
        n = self.cfg.updates_per_episode
        if self.low_buf.size >= self.cfg.batch_size and n > 0:
            acc: dict[str, float] = {}
            for _ in range(n):
                for k, v in self.update().items():
                    acc[k] = acc.get(k, 0.0) + v / n
            out.update(acc)
        out["w"] = level_weight(self.env_steps, self.cfg.w_start, self.cfg.w_end, self.cfg.w_decay_steps)
        out["updates"] = float(self.updates)
        return out

    # --- inspection (Fig. 2) -------------------------------------------------------------------------
    @torch.no_grad()
    def cost_snapshot(self, env: Any = None) -> dict[str, np.ndarray]:
        """For the current state of ``env`` (default: the training env): ``costs`` ``(N, M)`` the scores
        the high level maximises (the learned ``C_theta(s)`` for lp / nolp, ``-D`` for lpdist / greedy;
        Fig. 2a), ``distances`` ``(N, M)`` (Fig. 2b), ``assignment`` ``(N, M)`` 0/1 the greedy high-level
        decision (the LP's ``Z*`` for lp; Fig. 2c), ``tasks`` ``(N,)`` and ``capacity`` ``(M,)``."""
        env = self.train_env if env is None else env
        fam = family_of(env, self.cfg.task_reward_dense, self.algo_name)
        graph = fam.graph(env)
        x = pack_graph(graph)
        m = graph.task_x.shape[0]
        g = self._graphs(torch.from_numpy(x)[None], m)
        costs = graph_forward(self.cost_model, g)[0] if self.cost_model is not None else -g.distances()[0]
        tasks = self.decide(x, m, self.cfg.high_level, 0.0, np.random.default_rng(0))
        z = np.zeros((x.shape[0], m))
        z[np.flatnonzero(tasks >= 0), tasks[tasks >= 0]] = 1.0
        return {"costs": costs.double().numpy(), "distances": fam.distances(env), "assignment": z,
                "tasks": tasks, "capacity": graph.capacity.copy()}

    # --- checkpointing -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors and plain Python only, ``weights_only`` loads)."""
        return {
            "nets": {k: m.state_dict() for k, m in self._modules().items()},
            "opts": {k: o.state_dict() for k, o in self.opts.items()},
            "low_buf": self.low_buf.state_dict(),
            "high_buf": self.high_buf.state_dict(),
            **progress_state(self),
            "variant": self._variant(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with checkpoint_for(self.algo_name):
            mods = self._modules()
            if state.get("variant", self._variant()) != self._variant():
                raise ValueError(f"it holds a {state['variant']} learner, this one is {self._variant()}")
            if set(state["nets"]) != set(mods):
                raise ValueError(f"networks {sorted(state['nets'])} != {sorted(mods)}")
            alive = state["low_buf"]["data"].get("alive")
            if alive is not None and alive.dim() == 3 and int(alive.shape[2]) != self.n_agents:
                raise ValueError(f"its replay stores {int(alive.shape[2])} agents per step, this learner "
                                 f"{self.n_agents} (another env size or algo.size_range)")
            for k, m in mods.items():
                m.load_state_dict(state["nets"][k])
            for k, o in self.opts.items():
                o.load_state_dict(state["opts"][k])
            self.low_buf.load_state_dict(state["low_buf"])
            self.high_buf.load_state_dict(state["high_buf"])
            load_progress(self, state)


class LPMARLPolicy:
    """The deployable hierarchy: greedy high level (the LP, an ablation's rule, or Dec-LPMARL's local
    policy) every ``tau`` steps and at events, greedy low level every step. Works on any ``(N, M)``
    of the learner's environment family (the transfer experiments, Sec. 5.1.2)."""

    def __init__(self, learner: LPMARLLearner, decentralised: bool = False) -> None:
        self.learner = learner
        self.decentralised = bool(decentralised)
        self.env: Any = None
        self.family: Family | None = None
        self.ctx: _Context | None = None
        self.dec_level: DecAssignmentLevel | None = None
        self.controller: HierarchicalController | None = None
        self.rng = np.random.default_rng(0)
        self.clock = 0
        self.key = b""

    def reset(self, env: Any, seed: int | None = None) -> None:
        lr = self.learner
        fam = family_of(env, lr.cfg.task_reward_dense, lr.algo_name)
        if fam.name != lr.family.name:
            raise IncompatibleError(f"this {lr.algo_name} policy was trained on a {lr.family.name} environment and "
                                    f"cannot act on a {fam.name} one")
        if fam.task_obs_dim(env) != lr.task_obs_dim:
            raise IncompatibleError(f"the environment's task observations have {fam.task_obs_dim(env)} entries, the "
                                    f"policy was trained on {lr.task_obs_dim}; use the training run's task_neighbors "
                                    "/ task_obs_allies / task_obs_enemies")
        self.env, self.family = env, fam
        self.ctx = _Context(env, fam)
        high: AssignmentLevel = lr.assignment
        if lr.cfg.eval_high_level:  # the diagnostic: the trained low level under a fixed rule
            high = AssignmentLevel(lr, lr.cfg.eval_high_level)
        if self.decentralised:
            self.dec_level = DecAssignmentLevel(lr)
            high = self.dec_level
        self.controller = HierarchicalController([ExecutorLevel(lr), high])
        self.rng = np.random.default_rng(seed)
        self.clock = 0
        self.key = fam.event_key(env)

    @property
    def assignment(self) -> np.ndarray | None:
        """The tasks ``(N,)`` in force (after the last ``act``; Fig. 3 / Fig. 8)."""
        if self.controller is None or self.controller.goals[1] is None:
            return None
        return np.asarray(self.controller.goals[1])

    @torch.no_grad()
    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        if self.controller is None or self.family is None or self.ctx is None:
            raise RuntimeError("call reset(env) before act()")
        k = self.family.event_key(self.env)
        if k != self.key:
            self.key, self.clock = k, 0
        u = self.controller.step(self.clock, self.ctx, [1.0 if explore else 0.0, 0.0], self.rng)
        self.clock += 1
        actions = self.family.env_actions(self.env, np.asarray(self.controller.goals[1]), u)
        return {a: actions[a] for a in observations if a in actions}

    def episode_metrics(self) -> dict[str, float]:
        """Dec-LPMARL: ``amortisation_accuracy``, the fraction of (decision, agent) pairs whose local choice
        equals the centralised LP's on the same state (Fig. 6)."""
        if self.dec_level is None or self.dec_level.total == 0:
            return {}
        return {"amortisation_accuracy": self.dec_level.matches / self.dec_level.total}


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=False,
                    supports_masks=True, learns=True, families=("navigation", "combat"))

VARIANTS: dict[str, tuple[type[LPMARLConfig], str]] = {
    "lpmarl": (LPMARLConfig, "LPMARL: GNN agent-task costs -> assignment LP (blackbox gradients), task-conditioned "
                             "group policies, per-group VDN critic (paper 002)"),
    "dec-lpmarl": (DecLPMARLConfig, "Dec-LPMARL: LPMARL plus a local-observation GNN high level trained by behaviour "
                                    "cloning on the LP's assignments (paper 002 App. D)"),
    "lpmarl-nolp": (NoLPConfig, "LPMARL ablation No-LP: per-agent softmax over the learned costs, no LP (paper 002 "
                                "Table 1)"),
    "lpmarl-lpdist": (LPDistConfig, "LPMARL ablation LP-distance: the LP on the distance matrix, no learned cost "
                                    "(paper 002 App. F.1.3)"),
    "lpmarl-greedy": (GreedyConfig, "LPMARL ablation Greedy: each agent its nearest task (paper 002 App. F.1.3)"),
}

for _name, (_cfg_cls, _desc) in VARIANTS.items():
    register_algo(AlgoSpec(name=_name, config_cls=_cfg_cls, build=LPMARLLearner, caps=CAPS, description=_desc))

__all__ = ["CAPS", "VARIANTS", "AssignmentLevel", "DecAssignmentLevel", "ExecutorLevel", "LPMARLLearner",
           "LPMARLPolicy"]
