"""HGRL's hierarchical multi-agent learner on the coverage grid (HGRL Sec. 4.1, 4.3, 4.4, App. C).

Levels l = 1..L (code index k = l - 1) run through the library's one hierarchical composition
(:class:`~hieralloc.algos.hierarchy.HierarchicalController`):

* level 1 (the executor) picks a cell of the agent's w x w window every step: the environment's
  action (HGRL Eq. (2), l = 1);
* level l > 1 picks, every tau^(l-1) steps, a sub-goal region on the coarse grid of resolution l
  (cells of ``pool_factors[l]`` x ``pool_factors[l]`` base cells) among the ``goal_window`` x
  ``goal_window`` regions around the agent's current region (Eq. (2), l > 1);
* the state embedding of level l is Eq. (11): the agent's position, its local window observation,
  the level's GDI-Net demand D_hat^l and gradients G_x^l, G_y^l at the agent (and those of the next
  coarser resolution: "level 1 aligns with resolutions 1 and 2, level 2 with 2 and 3", App. C), and
  the sub-goal a^(l+1) handed down by the parent;
* per-agent Q_i^l is an FC-GRU(64)-FC network (Eq. (12)); the level's joint value mixes them: a sum
  (VDN, Eq. (13)/(15), HGRL's choice) or, for the "w/ HG" variants of Fig. 4, the QMIX or QPLEX
  mixer: the level learners *are* the library's value learners
  (:class:`~hieralloc.algos.value.learner.ValueLearner`) with a different mixer, trained by the
  double-Q TD loss of Eq. (16) with target networks;
* level l's reward is the discounted sum of the environment's rewards over its decision interval
  (Eq. (3), :func:`~hieralloc.algos.hierarchy.aggregate_rewards`) and it bootstraps with gamma^tau
  (the semi-MDP discount of an interval of tau steps);
* GDI-Net (:class:`~hieralloc.algos.hgrl.features.DemandFeatures`) is fitted on random-exploration
  observations first and then refitted every ``features.refit_every`` episodes on the growing set of
  cells the agents observed while learning (the closed loop of Sec. 4.4).

With ``levels = 1`` the same code is a flat value learner on GDI-Net inputs: with ``gradients =
false`` these are Table 1's VDN/QMIX/QPLEX baselines ("the same GDI-Net inputs ... excluding the
multi-scale gradient information", App. D), with ``gradients = true`` Fig. 3's "w/ G" variant.
Choices the paper leaves open are recorded in docs/methods/hgrl.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hieralloc.algos.hgrl.features import DemandFeatures, FeatureConfig
from hieralloc.algos.hgrl.gdinet import pool_shape
from hieralloc.algos.hierarchy import HierarchicalController, Level, aggregate_rewards
from hieralloc.algos.marl import MARLLearner
from hieralloc.algos.value.learner import LevelSpace, ValueLearner
from hieralloc.algos.value.qmix import QMIXConfig, QMIXLearner
from hieralloc.algos.value.qplex import QPLEXConfig, QPLEXLearner
from hieralloc.algos.value.vdn import VDNConfig, VDNLearner
from hieralloc.config import from_dict, param, to_dict
from hieralloc.errors import CheckpointError, ConfigError, IncompatibleError
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

#: mixer name -> (value learner class, its config class): one learner, different mixers
MIXERS: dict[str, tuple[type[ValueLearner], type[Any]]] = {
    "vdn": (VDNLearner, VDNConfig),
    "qmix": (QMIXLearner, QMIXConfig),
    "qplex": (QPLEXLearner, QPLEXConfig),
}


@dataclass
class HGRLConfig(QMIXConfig, QPLEXConfig):
    """HGRL's hyper-parameters (defaults: HGRL App. C) plus the value family's and the mixers'."""

    mixer: str = param("vdn", "mixer of every level: vdn (HGRL, Eq. (13)), qmix or qplex (Fig. 4's 'w/ HG' "
                       "variants)", choices=tuple(MIXERS))
    levels: int = param(2, "hierarchy levels L (App. C: 2); 1 = a flat learner on the same inputs", low=1, high=8)
    tau: int = param(3, "decision interval between adjacent levels, in steps of the level below (App. C: 3)",
                     low=1)
    goal_window: int = param(3, "odd side of the square of coarse regions a level > 1 chooses among, "
                             "centred on the agent's current region", low=1)
    goal_shaping: float = param(0.5, "weight of the executor's potential-based sub-goal shaping "
                                "(Phi = -distance to the sub-goal region in regions; 0: the paper's reward "
                                "only). See docs/methods/hgrl.md", low=0.0)
    gradients: bool = param(True, "include the Sobel gradients G_x, G_y in the embedding (HGRL Eq. (11); "
                            "false: the baselines' inputs, App. D)")
    features: FeatureConfig = param(default_factory=FeatureConfig, help="GDI-Net and its closed-loop "
                                    "schedule (source none: the 'w/o GDI-Net' variants)")
    # App. C overrides of the value family's defaults
    optimizer: str = param("rmsprop", "optimiser of every level (App. C: RMSprop)", choices=("adam", "rmsprop"))
    lr: float = param(1e-4, "learning rate (App. C: 1e-4)", low=0.0, low_open=True)
    buffer_size: int = param(1000, "replay capacity in episodes (App. C: 20k transitions = 1000 episodes of 20 "
                             "steps)", low=1)
    eps_anneal_steps: int = param(150_000, "environment steps of the epsilon decay (App. C: the first 30% of "
                                  "500k = 150k)", low=1)

    def validate(self) -> None:
        super().validate()
        if self.goal_window % 2 != 1:
            raise ConfigError("goal_window", f"must be odd (centred on the agent's region), got {self.goal_window}")
        need = self.levels + 1
        if len(self.features.pool_factors) < need:
            raise ConfigError("features.pool_factors", f"levels={self.levels} needs {need} resolutions (level l "
                              f"reads resolutions l and l+1), got {list(self.features.pool_factors)}; add "
                              "coarser factors or lower levels")


class _Context:
    """What the levels read at one environment step: the env (positions, clock, window observations)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.core = env.core

    @property
    def positions(self) -> np.ndarray:
        return np.asarray(self.core.pos[0])

    @property
    def frame(self) -> int:
        return int(self.core.frame_index(self.core.t)[0])


class ValueLevel(Level):
    """Level k of HGRL: Eq. (11) embedding + a value learner's epsilon-greedy choice."""

    def __init__(self, owner: HGRLLearner, k: int, learner: ValueLearner) -> None:
        self.owner = owner
        self.k = k
        self.period = owner.cfg.tau ** k  # level l = k + 1 decides every tau^(l-1) steps
        self.learner = learner

    # --- sizes -----------------------------------------------------------------------------------
    @property
    def goal_factor(self) -> int:
        """Base cells per side of the regions this level chooses (k >= 1)."""
        return int(self.owner.cfg.features.pool_factors[self.k + 1])

    # --- Level API ---------------------------------------------------------------------------------
    def observe(self, ctx: _Context, goal: Any) -> tuple[np.ndarray, np.ndarray]:
        o = self.owner
        pos = ctx.positions
        parts = [np.asarray(ctx.core.observations()[0], dtype=np.float32)]  # position, t/T, local window
        if o.features.enabled:  # HGRL Eq. (11): D^l, G_x^l, G_y^l at the agent (resolutions l and l+1)
            for res in (self.k, self.k + 1):
                parts.append(o.features.lookup(res, ctx.frame, pos, o.cfg.gradients))
        if self.k + 1 < o.cfg.levels:  # the parent's sub-goal a^(l+1)
            parts.append(o.goal_features(pos, goal))
        x = np.concatenate(parts, axis=1).astype(np.float32)
        if self.k == 0:
            m = np.asarray(ctx.core.action_masks()[0], dtype=bool)
        else:
            m = o.region_masks(pos, self.goal_factor)
        return x, m

    def choose(self, inputs: np.ndarray, avail: np.ndarray, hidden: Any, explore: float,
               rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        q, h = self.learner.q_values(inputs, hidden)
        return self.learner.select(q, avail, explore, rng), h

    def initial_hidden(self) -> Any:
        return self.learner.agent.initial_hidden(1)

    def goal(self, ctx: _Context, choices: np.ndarray) -> Any:
        if self.k == 0:
            return None
        f = self.goal_factor
        G = self.owner.cfg.goal_window
        cur = ctx.positions // f
        d = np.stack([choices // G - G // 2, choices % G - G // 2], axis=1)
        hi = np.array(self.owner.region_grid(f)) - 1
        return np.clip(cur + d, 0, hi), f  # (N, 2) region indices and their size


class HGRLLearner(MARLLearner):
    """Trainer-facing HGRL learner (module docstring); one ``train_iteration`` = one episode."""

    algo_name = "hgrl"
    cfg: HGRLConfig

    def __init__(self, env: Any, cfg: HGRLConfig, seed: int) -> None:
        core = getattr(env, "core", None)
        if core is None or not hasattr(core, "frame_index"):
            raise IncompatibleError("hgrl runs on the coverage grid (an environment with a batched coverage core)")
        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        self.n_agents = int(core.N)
        self.features = DemandFeatures.for_env(env, cfg.features, self.seed)
        self.level_learners: list[ValueLearner] = []
        learner_cls, cfg_cls = MIXERS[cfg.mixer]
        self._needs_state = learner_cls.mixer_needs_state
        #: the mixers' compact state reads the true frames pooled to the coarsest resolution, computed
        #: once for the whole data set (blocks past the border count as zero demand)
        self._pooled_frames = self._pool_frames(core, int(cfg.features.pool_factors[-1])) if self._needs_state else None
        state_dim = self._pooled_frames.shape[1] + 2 * self.n_agents + 1 if self._pooled_frames is not None else 0
        base = to_dict(cfg)
        names = {f.name for f in dataclasses.fields(cfg_cls)}
        self.levels: list[ValueLevel] = []
        for k in range(cfg.levels):
            # HGRL Eq. (3): an interval of tau^k steps discounts the next decision by gamma^(tau^k)
            values = {n: v for n, v in base.items() if n in names}
            values["gamma"] = cfg.gamma ** (cfg.tau ** k)
            level_cfg = from_dict(cfg_cls, values)
            n_actions = int(core.K) if k == 0 else cfg.goal_window ** 2
            space = LevelSpace(self.n_agents, self._input_dim(k, core), n_actions, state_dim)
            learner = learner_cls(None, level_cfg, self.seed + 1000 * k, view=space)
            self.level_learners.append(learner)
            self.levels.append(ValueLevel(self, k, learner))
        self.controller = HierarchicalController(self.levels)
        self.groups = list(self.level_learners[0].groups)
        self.rng = np.random.default_rng(self.seed)
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.policy = HGRLPolicy(self)

    # --- geometry ------------------------------------------------------------------------------
    def region_grid(self, factor: int) -> tuple[int, int]:
        core = self.env.core
        return pool_shape(int(core.H), int(core.W), factor)

    def _pool_frames(self, core: Any, f: int) -> np.ndarray:
        hs, ws = self.region_grid(f)
        pad = np.zeros((int(core.L), hs * f, ws * f))
        pad[:, : core.H, : core.W] = np.asarray(core.frames) / core.obs_div
        return pad.reshape(-1, hs, f, ws, f).mean((2, 4)).reshape(int(core.L), -1).astype(np.float32)

    def _input_dim(self, k: int, core: Any) -> int:
        d = int(core.obs_dim)
        if self.features.enabled:
            d += 2 * (3 if self.cfg.gradients else 1)
        if k + 1 < self.cfg.levels:
            d += 5
        return d

    def region_masks(self, pos: np.ndarray, factor: int) -> np.ndarray:
        """``[N, G^2]`` bool: the candidate regions that lie on the coarse grid."""
        G = self.cfg.goal_window
        hi = np.array(self.region_grid(factor))
        cur = pos // factor
        d = np.arange(G) - G // 2
        dx, dy = np.meshgrid(d, d, indexing="ij")
        tx, ty = cur[:, 0, None] + dx.ravel(), cur[:, 1, None] + dy.ravel()
        return (tx >= 0) & (tx < hi[0]) & (ty >= 0) & (ty < hi[1])

    def goal_features(self, pos: np.ndarray, goal: Any) -> np.ndarray:
        """``[N, 5]``: the sub-goal region's centre (normalised), the displacement to it in regions,
        and whether the agent is inside it (HGRL Eq. (11)'s a^(l+1))."""
        region, f = goal
        core = self.env.core
        centre = region * f + (f - 1) / 2.0
        lo, hi = region * f, np.minimum(region * f + f - 1, np.array([core.H - 1, core.W - 1]))
        inside = np.all((pos >= lo) & (pos <= hi), axis=1)
        out = np.empty((pos.shape[0], 5), dtype=np.float32)
        out[:, 0] = centre[:, 0] / max(core.H - 1, 1)
        out[:, 1] = centre[:, 1] / max(core.W - 1, 1)
        out[:, 2:4] = (centre - pos) / (f * self.cfg.goal_window)
        out[:, 4] = inside
        return out

    @staticmethod
    def goal_potential(pos: np.ndarray, goal: Any) -> np.ndarray:
        """Phi = -(Chebyshev distance from the cell to the sub-goal region) / region size."""
        region, f = goal
        lo, hi = region * f, region * f + f - 1
        gap = np.maximum(np.maximum(lo - pos, pos - hi), 0)
        return -gap.max(axis=1) / float(f)

    def global_state(self) -> np.ndarray | None:
        """Compact global state for the QMIX/QPLEX mixers: the true frame pooled to the coarsest
        resolution, the positions and t/T (centralised training only; agents never see it)."""
        if self._pooled_frames is None:
            return None
        core = self.env.core
        pooled = self._pooled_frames[int(core.frame_index(core.t)[0])]
        p = (core.pos[0] / np.array([max(core.H - 1, 1), max(core.W - 1, 1)])).reshape(-1)
        return np.concatenate([pooled, p, [core.t / core.T]]).astype(np.float32)

    # --- training ------------------------------------------------------------------------------
    def _epsilon(self) -> float:
        return self.level_learners[0].epsilon()

    def collect_episode(self) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """Play one epsilon-greedy episode through the composition; returns one episode per level."""
        from hieralloc.eval import episode_seed

        env, cfg = self.env, self.cfg
        eps = self._epsilon()
        env.reset(seed=episode_seed(self.seed, self.episodes))
        self.features.record(env)
        ctx = _Context(env)
        ctl = self.controller
        ctl.reset(trace=True)
        rewards, shaping, states = [], [], []
        t = 0
        while env.agents:
            s = self.global_state()
            a = ctl.step(t, ctx, [eps] * len(self.levels), self.rng)
            goal0 = ctl.goals[1] if len(self.levels) > 1 else None
            pre = self.goal_potential(ctx.positions, goal0) if goal0 is not None else None
            _, rew, *_ = env.step({ag: int(a[i]) for i, ag in enumerate(env.agents)})
            self.features.record(env)
            r = np.array([rew[ag] for ag in env.possible_agents], dtype=np.float64)
            rewards.append(r)
            if pre is not None and cfg.goal_shaping > 0:
                shaping.append(cfg.goal_shaping * (self.goal_potential(ctx.positions, goal0) - pre))
            else:
                shaping.append(np.zeros_like(r))
            states.append(s)
            t += 1
        states.append(self.global_state())
        ctl.close_trace(ctx)
        R = np.stack(rewards)  # [T, N] environment rewards
        episodes = []
        for k in range(len(self.levels)):
            rec = ctl.records[k]
            steps = rec["t"]
            n = len(steps)
            if k == 0:
                rk = R + np.stack(shaping)
            else:  # HGRL Eq. (3): discounted sum over the decision interval
                rk = aggregate_rewards(R, steps, cfg.gamma)
            done = np.zeros((n, self.n_agents), dtype=bool)
            if not cfg.bootstrap_on_truncation:
                done[-1] = True
            ep: dict[str, Any] = {
                "obs": np.stack(rec["obs"]), "avail": np.stack(rec["avail"]),
                "active": np.ones((n + 1, self.n_agents), dtype=bool),
                "actions": np.stack(rec["actions"]).astype(np.int64),
                "reward": rk.astype(np.float32), "done": done, "terminated": done.any(1),
                "length": n, "return": float(rk.sum()),
            }
            if self._needs_state:
                ep["state"] = np.stack([states[i] for i in [*steps, len(R)]])
            episodes.append(ep)
        info = {"episode_return": float(R.sum()), "episode_length": float(len(R)), "epsilon": eps}
        return episodes, info

    def train_iteration(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.episodes == 0 and self.env_steps == 0:  # HGRL Sec. 5.1: GDI-Net first sees random exploration
            explored = self.features.explore(self.env, self.cfg.features, self.seed + 7919)
            self.env_steps += explored
            for lr in self.level_learners:
                lr.env_steps = self.env_steps
        episodes, info = self.collect_episode()
        out.update(info)
        self.env_steps += int(info["episode_length"])
        self.episodes += 1
        for k, (lr, ep) in enumerate(zip(self.level_learners, episodes, strict=True)):
            lr.store_episode(ep)
            lr.env_steps = self.env_steps
            lr.episodes = self.episodes
            terms = lr.learn()
            for name, v in terms.items():
                out[f"l{k + 1}/{name}"] = v
        self.updates = self.level_learners[0].updates
        out.update(self.features.maybe_refit(self.episodes, self.cfg.features))
        out["updates"] = float(self.updates)
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def grouped_net(self) -> Any:
        return self.level_learners[0].agent

    def modules_state(self) -> dict[str, Any]:
        return {"levels": [lr.state_dict() for lr in self.level_learners], "features": self.features.state_dict()}

    def load_modules(self, state: dict[str, Any]) -> None:
        levels = state["levels"]
        if len(levels) != len(self.level_learners):
            raise CheckpointError(f"checkpoint has {len(levels)} levels, this hgrl run has {len(self.level_learners)}")
        for lr, s in zip(self.level_learners, levels, strict=True):
            lr.load_state_dict(s)
        try:
            self.features.load_state_dict(state["features"])
        except ValueError as e:
            raise CheckpointError(str(e)) from None


class HGRLPolicy:
    """The deployable hierarchical policy: every level greedy, decisions every tau^(l-1) steps, GDI-Net
    frozen (its last fit)."""

    def __init__(self, learner: HGRLLearner) -> None:
        self.learner = learner
        self.env: Any = None
        self.rng = np.random.default_rng(0)
        self.controller = HierarchicalController(learner.levels)

    def reset(self, env: Any, seed: int | None = None) -> None:
        if getattr(env, "core", None) is None:
            raise IncompatibleError("the hgrl policy acts on a coverage-grid environment")
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.controller.reset(trace=False)

    @torch.no_grad()
    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        env = self.env
        ctx = _Context(env)
        eps = self.learner.level_learners[0].cfg.eps_end if explore else 0.0
        a = self.controller.step(int(env.core.t), ctx, [eps] * len(self.learner.levels), self.rng)
        return {ag: int(a[i]) for i, ag in enumerate(env.possible_agents) if ag in observations}


CAPS = Capabilities(discrete=True, continuous=False, off_policy=True, needs_global_state=False,
                    supports_masks=True, learns=True, families=("coverage",))

register_algo(AlgoSpec(
    name="hgrl",
    config_cls=HGRLConfig,
    build=HGRLLearner,
    caps=CAPS,
    description="HGRL: multi-level value decomposition over GDI-Net's multi-scale demand and gradients "
                "(mixer vdn|qmix|qplex; levels=1 gives the flat baselines on GDI-Net inputs)",
))

__all__ = ["CAPS", "MIXERS", "HGRLConfig", "HGRLLearner", "HGRLPolicy", "ValueLevel"]
