"""The value-based cooperative MARL learner: one class for IQL, VDN, QMIX and QPLEX.

What varies between the four algorithms is only the *mixer* that turns the agents' utilities
Q_i(tau_i, a_i) into the value being trained (:mod:`hieralloc.nn.mixers`): none (IQL: every agent
its own TD loss), a sum (VDN), a monotonic hypernetwork (QMIX), a duplex dueling network (QPLEX).
The rest is the shared PyMARL/EPyMARL machinery (Rashid et al. 2018, App. B; Papoudakis et al.
2021, Sec. 3-4):

* agents: :class:`~hieralloc.nn.sharing.AgentNet` (FC-GRU-FC or MLP) under any sharing mode,
  unrolled over whole episodes from a zero hidden state;
* an episode replay buffer (time-major), batches of whole episodes drawn uniformly;
* epsilon-greedy over the valid actions, epsilon annealed linearly in environment steps and held
  fixed within an episode;
* double Q-learning (van Hasselt et al. 2016): the online network picks a* = argmax_a Q(s', a)
  over valid actions, the target network (and target mixer) evaluates it;
* n-step or TD(lambda) targets (:mod:`hieralloc.algos.value.targets`);
* target networks copied every ``target_interval`` gradient steps (hard) or Polyak-averaged
  with ``target_tau`` after every step (soft);
* rewards optionally divided by their running standard deviation (``standardise_rewards``);
* Adam or RMSprop, global gradient-norm clipping.

Loss of one batch (mask m over real steps; for IQL per agent, for mixers per team step)::

    Q_tot(t)  = mixer(Q_i(tau_i,t, a_i,t), s_t, a_t, max_a Q_i(tau_i,t, a))
    Q'_tot(t) = target_mixer(Q^-_i(tau_i,t+1, a*_i,t+1), s_t+1, a*_t+1, max_a Q^-_i(tau_i,t+1, a))
    y_t       = n-step or TD(lambda) target from r and Q'_tot
    L         = sum_t m_t (Q_tot(t) - y_t)^2 / sum_t m_t

One ``train_iteration`` collects one episode and, once the buffer holds ``batch_size`` episodes,
takes ``updates_per_episode`` gradient steps (EPyMARL's episode runner: one step per episode).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from hieralloc.algos.marl import (
    AgentConfig,
    EnvView,
    EpisodeBuffer,
    MARLLearner,
    initial_groups,
    masked_mean,
    run_episode,
    seeded_torch,
    team_reward,
)
from hieralloc.algos.value.targets import lambda_targets, nstep_targets
from hieralloc.config import param
from hieralloc.errors import ConfigError, IncompatibleError
from hieralloc.nn.mixers import Mixer
from hieralloc.nn.normalize import RunningMeanStd
from hieralloc.nn.sharing import AgentNet

_NEG = -1e9


@dataclass
class ValueConfig(AgentConfig):
    """Hyper-parameters of the value-based family (defaults: EPyMARL, Papoudakis et al. 2021)."""

    optimizer: str = param("adam", "adam (EPyMARL) or rmsprop (PyMARL)", choices=("adam", "rmsprop"))
    optim_alpha: float = param(0.99, "RMSprop smoothing constant (PyMARL: 0.99)", low=0.0, high=1.0)
    optim_eps: float = param(1e-5, "RMSprop epsilon (PyMARL: 1e-5)", low=0.0, low_open=True)
    batch_size: int = param(32, "episodes per gradient step (EPyMARL: 32)", low=1)
    buffer_size: int = param(5000, "replay capacity in episodes (EPyMARL: 5000)", low=1)
    updates_per_episode: int = param(1, "gradient steps after each collected episode (EPyMARL: 1)", low=0)
    target_update: str = param("hard", "target networks: 'hard' copies every target_interval steps, "
                               "'soft' Polyak-averages with target_tau every step", choices=("hard", "soft"))
    target_interval: int = param(200, "gradient steps between hard target copies (EPyMARL: 200)", low=1)
    target_tau: float = param(0.01, "Polyak rate of soft target updates (EPyMARL: 0.01)", low=0.0, high=1.0,
                              low_open=True)
    double_q: bool = param(True, "double Q-learning targets (EPyMARL: true)")
    eps_start: float = param(1.0, "initial epsilon of epsilon-greedy", low=0.0, high=1.0)
    eps_end: float = param(0.05, "final epsilon", low=0.0, high=1.0)
    eps_anneal_steps: int = param(50_000, "environment steps of the linear epsilon decay (EPyMARL: 50000)",
                                  low=1)
    td: str = param("nstep", "target type: 'nstep' returns or 'lambda' (TD(lambda))", choices=("nstep", "lambda"))
    n_step: int = param(1, "n of n-step targets (1: one-step Q-learning)", low=1)
    td_lambda: float = param(0.8, "lambda of TD(lambda) targets (pymarl2/QPLEX: 0.6-0.8)", low=0.0, high=1.0)
    standardise_rewards: bool = param(True, "divide rewards by their running standard deviation "
                                      "(EPyMARL: true; scale only, see docs)")


@dataclass(frozen=True)
class LevelSpace:
    """Input and action sizes of a learner that is one level of a hierarchy rather than the learner
    of a whole environment (:mod:`hieralloc.algos.hierarchy`): what :class:`EnvView` would report."""

    n_agents: int
    obs_dim: int
    n_actions: int
    state_dim: int = 0
    discrete: bool = True

    @property
    def action_space(self) -> str:
        return f"Discrete({self.n_actions})"


class ValueLearner(MARLLearner):
    """Trainer-facing learner of the value-based family; subclasses choose the mixer."""

    #: registered name of the algorithm (messages, docs)
    algo_name: ClassVar[str] = "value"
    cfg: ValueConfig
    #: whether the mixer reads the global state
    mixer_needs_state: ClassVar[bool] = False

    def make_mixer(self) -> Mixer | None:
        """The mixer of the algorithm (``None``: independent learners)."""
        return None

    def __init__(self, env: Any, cfg: ValueConfig, seed: int, view: EnvView | LevelSpace | None = None) -> None:
        """``view``: the agents' input/action sizes when the learner is one level of a hierarchy
        (:class:`LevelSpace`; ``env`` may then be ``None``); by default read from ``env``."""
        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        # a LevelSpace carries only the sizes; the env-facing methods (collect_episode, the greedy
        # policy) are used only when the learner was built from an environment
        self.view: EnvView = cast(EnvView, view) if view is not None else EnvView(
            env, need_state=self.mixer_needs_state, algo=self.algo_name)
        if not self.view.discrete:
            raise IncompatibleError(f"{self.algo_name} needs discrete actions; the environment's action "
                                    f"space is {self.view.action_space}")
        v = self.view
        self.n_agents, self.n_actions = v.n_agents, v.n_actions
        self.groups = initial_groups(cfg, self.n_agents)
        with seeded_torch(self.seed):
            self.agent = AgentNet(v.obs_dim, v.n_actions, v.n_agents, cfg.sharing, cfg.n_groups, cfg.hidden,
                                  cfg.recurrent)
            self.mixer = self.make_mixer()
        if self.mixer is not None and cfg.reward == "individual":
            raise ConfigError("algo.reward", f"{self.algo_name} learns one team value; use 'mean' or 'sum' "
                              "('individual' is for iql, ippo, mappo)")
        self.target_agent = copy.deepcopy(self.agent)
        self.target_mixer = copy.deepcopy(self.mixer)
        for p in self._target_params():
            p.requires_grad_(False)
        self.params = list(self.agent.parameters()) + (list(self.mixer.parameters()) if self.mixer else [])
        if cfg.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(self.params, lr=cfg.lr)
        else:
            self.opt = torch.optim.RMSprop(self.params, lr=cfg.lr, alpha=cfg.optim_alpha, eps=cfg.optim_eps)
        self.buffer = EpisodeBuffer(cfg.buffer_size)
        self.reward_stats = RunningMeanStd()
        self.rng = np.random.default_rng(self.seed)
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.policy = GreedyQPolicy(self)

    # --- parameters --------------------------------------------------------------------------------
    def _online(self) -> list[nn.Module]:
        return [self.agent] + ([self.mixer] if self.mixer is not None else [])

    def _target(self) -> list[nn.Module]:
        return [self.target_agent] + ([self.target_mixer] if self.target_mixer is not None else [])

    def _target_params(self) -> list[nn.Parameter]:
        return [p for m in self._target() for p in m.parameters()]

    def grouped_net(self) -> AgentNet:
        return self.agent

    # --- acting --------------------------------------------------------------------------------
    def epsilon(self) -> float:
        frac = min(1.0, self.env_steps / self.cfg.eps_anneal_steps)
        return self.cfg.eps_start + frac * (self.cfg.eps_end - self.cfg.eps_start)

    @torch.no_grad()
    def q_values(self, obs: np.ndarray, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-values ``[N, A]`` of one step and the next hidden state (``h``: ``[1, N, H]``)."""
        y, h = self.agent(torch.from_numpy(obs)[None, None], torch.as_tensor(self.groups), h)
        return y[0, 0], h

    @staticmethod
    def select(q: torch.Tensor, avail: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy over valid actions: ``[N]`` actions."""
        qn = np.where(avail, q.numpy(), -np.inf)
        greedy = qn.argmax(1)
        if epsilon <= 0.0:
            return greedy
        n = avail.shape[0]
        explore = rng.random(n) < epsilon
        k = (rng.random(n) * avail.sum(1)).astype(np.int64)  # the k-th valid action, uniformly
        rand = (np.cumsum(avail, 1) <= k[:, None]).sum(1)
        return np.where(explore, rand, greedy)

    # --- learning --------------------------------------------------------------------------------
    def _rewards(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        r = team_reward(batch["reward"], self.cfg.reward)
        if self.cfg.standardise_rewards:
            r = r / self.reward_stats.std.float()
        return r

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """TD loss of a time-major episode batch; ``loss`` is minimised, the rest are diagnostics."""
        cfg = self.cfg
        obs, avail, groups = batch["obs"], batch["avail"], batch["groups"]
        actions = batch["actions"]
        q, _ = self.agent(obs, groups)  # [T+1, B, N, A]
        chosen = q[:-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # Q_i(tau_t, a_t)
        q_det = q.detach().masked_fill(~avail, _NEG)
        with torch.no_grad():
            q_tgt, _ = self.target_agent(obs, groups)
            q_tgt = q_tgt.masked_fill(~avail, _NEG)
            a_next = (q_det if cfg.double_q else q_tgt)[1:].argmax(-1)  # double Q: online argmax
            next_q = q_tgt[1:].gather(-1, a_next.unsqueeze(-1)).squeeze(-1)
        reward = self._rewards(batch)
        filled = batch["filled"]
        if self.mixer is not None:
            assert self.target_mixer is not None
            state = batch.get("state")
            onehot = nn.functional.one_hot(actions, self.n_actions).float()
            q_tot = self.mixer(chosen, None if state is None else state[:-1], onehot, q_det[:-1].max(-1).values)
            with torch.no_grad():
                next_tot = self.target_mixer(next_q, None if state is None else state[1:],
                                             nn.functional.one_hot(a_next, self.n_actions).float(),
                                             q_tgt[1:].max(-1).values)
            done = batch["terminated"]
            valid = filled
        else:
            q_tot, next_tot = chosen, next_q
            if reward.dim() == 2:
                reward = reward.unsqueeze(-1).expand_as(chosen)
            done = batch["done"]
            valid = filled.unsqueeze(-1) & batch["active"][:-1]
        with torch.no_grad():
            if cfg.td == "lambda":
                y = lambda_targets(reward, done, valid, next_tot, cfg.gamma, cfg.td_lambda)
            else:
                y = nstep_targets(reward, done, valid, next_tot, cfg.gamma, cfg.n_step)
        td = q_tot - y
        loss = masked_mean(td**2, valid)
        return {
            "loss": loss,
            "td_error_abs": masked_mean(td.detach().abs(), valid),
            "q_taken_mean": masked_mean(q_tot.detach(), valid),
            "target_mean": masked_mean(y, valid),
        }

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on a batch, then the target-network update."""
        terms = self.loss(batch)
        self.opt.zero_grad()
        terms["loss"].backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        self.updates += 1
        self._update_targets()
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["grad_norm"] = float(grad_norm)
        return out

    @torch.no_grad()
    def _update_targets(self) -> None:
        if self.cfg.target_update == "soft":
            tau = self.cfg.target_tau
            for src, dst in zip(self._online(), self._target(), strict=True):
                for p, tp in zip(src.parameters(), dst.parameters(), strict=True):
                    tp.mul_(1.0 - tau).add_(tau * p)
        elif self.updates % self.cfg.target_interval == 0:
            for src, dst in zip(self._online(), self._target(), strict=True):
                dst.load_state_dict(src.state_dict())

    def collect_episode(self) -> dict[str, Any]:
        """Play one epsilon-greedy episode (epsilon fixed within it, as EPyMARL's runner)."""
        from hieralloc.eval import episode_seed

        eps = self.epsilon()
        h = self.agent.initial_hidden(1)

        def act(o: np.ndarray, m: np.ndarray, present: np.ndarray,
                s: np.ndarray | None) -> tuple[np.ndarray, list[Any]]:
            nonlocal h
            q, h = self.q_values(o, h)
            a = self.select(q, m, eps, self.rng)
            return a, [self.view.env_action(i, x) for i, x in enumerate(a)]

        ep = run_episode(self.env, self.view, episode_seed(self.seed, self.episodes), act,
                         self.cfg.bootstrap_on_truncation)
        ep["epsilon"] = eps
        return ep

    def store_episode(self, ep: dict[str, Any]) -> None:
        """Put an episode (the arrays of :func:`~hieralloc.algos.marl.run_episode`) in the replay
        buffer and update the reward statistics."""
        self.buffer.insert(ep, self.groups)
        if self.cfg.standardise_rewards and ep["length"]:
            r = team_reward(torch.as_tensor(ep["reward"]), self.cfg.reward)
            if r.dim() == 2:
                r = r[torch.as_tensor(ep["active"][:-1])]
            self.reward_stats.update(r)

    def learn(self) -> dict[str, float]:
        """``updates_per_episode`` gradient steps once the buffer holds a batch; averaged terms."""
        acc: dict[str, float] = {}
        if self.buffer.size >= self.cfg.batch_size and self.cfg.updates_per_episode > 0:
            for _ in range(self.cfg.updates_per_episode):
                terms = self.update(self.buffer.sample(self.cfg.batch_size, self.rng))
                for k, v in terms.items():
                    acc[k] = acc.get(k, 0.0) + v / self.cfg.updates_per_episode
        return acc

    def train_iteration(self) -> dict[str, float]:
        """Collect one episode, store it, and take ``updates_per_episode`` gradient steps."""
        self.before_episode()
        ep = self.collect_episode()
        self.store_episode(ep)
        self.env_steps += int(ep["length"])
        self.episodes += 1
        out: dict[str, float] = {"episode_return": float(ep["return"]), "episode_length": float(ep["length"]),
                                 "epsilon": float(ep["epsilon"])}
        out.update(self.learn())
        out["updates"] = float(self.updates)
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def modules_state(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "target_agent": self.target_agent.state_dict(),
            "mixer": self.mixer.state_dict() if self.mixer is not None else {},
            "target_mixer": self.target_mixer.state_dict() if self.target_mixer is not None else {},
            "opt": self.opt.state_dict(),
            "buffer": self.buffer.state_dict(),
            "reward_stats": self.reward_stats.state_dict(),
        }

    def load_modules(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.target_agent.load_state_dict(state["target_agent"])
        if self.mixer is not None and self.target_mixer is not None:
            self.mixer.load_state_dict(state["mixer"])
            self.target_mixer.load_state_dict(state["target_mixer"])
        self.opt.load_state_dict(state["opt"])
        self.buffer.load_state_dict(state["buffer"])
        self.reward_stats.load_state_dict(state["reward_stats"])


class GreedyQPolicy:
    """The deployable policy of a value-based learner: argmax over valid actions, recurrent state
    carried through the episode (epsilon ``eps_end`` only with ``explore=True``)."""

    def __init__(self, learner: ValueLearner) -> None:
        self.learner = learner
        self.env: Any = None
        self.h = learner.agent.initial_hidden(1)
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.h = self.learner.agent.initial_hidden(1)
        self.rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        lr = self.learner
        o, _ = lr.view.obs(observations)
        m = lr.view.masks(observations, None, env=self.env)
        q, self.h = lr.q_values(o, self.h)
        a = lr.select(q, m, lr.cfg.eps_end if explore else 0.0, self.rng)
        return {ag: lr.view.env_action(lr.view.index[ag], a[lr.view.index[ag]])
                for ag in observations if ag in lr.view.index}


__all__ = ["GreedyQPolicy", "LevelSpace", "ValueConfig", "ValueLearner"]
