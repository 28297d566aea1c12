"""Independent Q-learning (IQL) with a parameter-shared MLP Q-network.

The simplest learner of the toolkit and the reference point for the cooperative MARL core: each
agent treats the others as part of the environment and learns Q_i(o_i, a_i) by deep Q-learning
(Mnih et al. 2015; Tan 1993 for the independent-learner setting). Parameters are shared across
agents; a one-hot agent id is appended to the observation so shared parameters can still
specialise. Double-Q targets (van Hasselt et al. 2016), a hard-updated target network,
epsilon-greedy exploration annealed linearly, Adam and gradient-norm clipping.

TD target for a transition (o, a, r, o', d) of one agent:

    y = r + gamma * (1 - d) * Q_target(o', argmax_a' Q(o', a'))        (double Q)
    loss = mean (Q(o, a) - y)^2

Episode ends are terminal (d = 1) unless ``bootstrap_on_truncation``: the coverage grid's horizon
T is part of the task and the time step is in the observation, so a time-limit end is a real end.

One training iteration collects one episode and then runs ``updates_per_episode`` gradient
steps. Everything needed to continue exactly (networks, optimiser, replay buffer, RNG, counters)
is in :meth:`IQLLearner.state_dict`, as tensors and plain Python values only, so checkpoints load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from hieralloc.config import Config, param
from hieralloc.errors import IncompatibleError
from hieralloc.nn import mlp
from hieralloc.registry import AlgoSpec, Capabilities, register_algo


@dataclass
class IQLConfig(Config):
    """Hyper-parameters of independent Q-learning (defaults follow common DQN practice)."""

    lr: float = param(5e-4, "Adam learning rate", low=0.0, low_open=True)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0)
    hidden: tuple[int, ...] = param((64, 64), "hidden layer widths of the Q-network")
    batch_size: int = param(64, "transitions per gradient step", low=1)
    buffer_size: int = param(50_000, "replay capacity in agent-transitions", low=1)
    updates_per_episode: int = param(4, "gradient steps after each collected episode", low=0)
    target_update: int = param(200, "gradient steps between hard target-network copies", low=1)
    eps_start: float = param(1.0, "initial epsilon of epsilon-greedy", low=0.0, high=1.0)
    eps_end: float = param(0.05, "final epsilon", low=0.0, high=1.0)
    eps_anneal_steps: int = param(5_000, "environment steps over which epsilon decays linearly", low=1)
    grad_clip: float = param(10.0, "max gradient norm", low=0.0, low_open=True)
    bootstrap_on_truncation: bool = param(False, "bootstrap through time-limit ends instead of stopping")
    agent_id: bool = param(True, "append a one-hot agent id to the observation")

    def validate(self) -> None:
        super().validate()
        if any(h < 1 for h in self.hidden):
            from hieralloc.errors import ConfigError

            raise ConfigError("hidden", f"widths must be >= 1, got {list(self.hidden)}")


def _flat_obs(space: spaces.Space[Any], obs: Any) -> np.ndarray:
    if isinstance(space, spaces.Dict) and "observation" in space.spaces:
        return np.asarray(spaces.flatten(space.spaces["observation"], obs["observation"]), dtype=np.float32)
    return np.asarray(spaces.flatten(space, obs), dtype=np.float32)


def _obs_dim(space: spaces.Space[Any]) -> int:
    if isinstance(space, spaces.Dict) and "observation" in space.spaces:
        return int(spaces.flatdim(space.spaces["observation"]))
    return int(spaces.flatdim(space))


def _mask(obs: Any, info: Any, n_actions: int) -> np.ndarray:
    """Valid-action mask from the observation dict or the info dict (all valid when absent)."""
    if isinstance(obs, dict) and "action_mask" in obs:
        return np.asarray(obs["action_mask"], dtype=bool)
    if isinstance(info, dict) and "action_mask" in info:
        return np.asarray(info["action_mask"], dtype=bool)
    return np.ones(n_actions, dtype=bool)


class _QNet(nn.Module):
    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, cfg: IQLConfig) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.use_id = cfg.agent_id
        self.body = mlp(obs_dim + (n_agents if cfg.agent_id else 0), cfg.hidden, n_actions)

    def forward(self, obs: torch.Tensor, agent_idx: torch.Tensor) -> torch.Tensor:
        if self.use_id:
            obs = torch.cat([obs, nn.functional.one_hot(agent_idx, self.n_agents).float()], dim=-1)
        out: torch.Tensor = self.body(obs)
        return out


class GreedyQPolicy:
    """The deployable policy of a Q-learner: argmax over valid actions, no exploration."""

    def __init__(self, learner: IQLLearner) -> None:
        self.learner = learner
        self._infos: dict[str, Any] = {}

    def reset(self, env: Any, seed: int | None = None) -> None:
        self._infos = {}

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        return self.learner.select(observations, self._infos, epsilon=0.0)


class IQLLearner:
    """Trainer-facing object: ``train_iteration``, ``policy``, ``env_steps`` and state dicts."""

    def __init__(self, env: Any, cfg: IQLConfig, seed: int) -> None:
        self.env = env
        self.cfg = cfg
        self.seed = seed
        self.agents = list(env.possible_agents)
        space = env.action_space(self.agents[0])
        if not isinstance(space, spaces.Discrete):
            raise IncompatibleError(f"iql needs discrete actions; the environment's action space is {space}")
        self.n_actions = int(space.n)
        self.obs_space = env.observation_space(self.agents[0])
        self.obs_dim = _obs_dim(self.obs_space)
        n = len(self.agents)
        torch.manual_seed(seed)
        self.q = _QNet(self.obs_dim, n, self.n_actions, cfg)
        self.q_target = _QNet(self.obs_dim, n, self.n_actions, cfg)
        self.q_target.load_state_dict(self.q.state_dict())
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(seed)
        cap = cfg.buffer_size
        self.buf = {
            "obs": torch.zeros(cap, self.obs_dim),
            "next_obs": torch.zeros(cap, self.obs_dim),
            "agent": torch.zeros(cap, dtype=torch.long),
            "action": torch.zeros(cap, dtype=torch.long),
            "reward": torch.zeros(cap),
            "done": torch.zeros(cap),
            "next_mask": torch.ones(cap, self.n_actions, dtype=torch.bool),
        }
        self.buf_pos = 0
        self.buf_size = 0
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.policy = GreedyQPolicy(self)

    # --- acting -------------------------------------------------------------------------------
    def epsilon(self) -> float:
        frac = min(1.0, self.env_steps / self.cfg.eps_anneal_steps)
        return self.cfg.eps_start + frac * (self.cfg.eps_end - self.cfg.eps_start)

    def select(self, observations: dict[str, Any], infos: dict[str, Any], epsilon: float) -> dict[str, Any]:
        names = [a for a in self.agents if a in observations]
        obs = torch.as_tensor(np.stack([_flat_obs(self.obs_space, observations[a]) for a in names]))
        idx = torch.as_tensor([self.agents.index(a) for a in names])
        masks = np.stack([_mask(observations[a], infos.get(a), self.n_actions) for a in names])
        with torch.no_grad():
            qv = self.q(obs, idx).numpy()
        qv = np.where(masks, qv, -np.inf)
        greedy = qv.argmax(axis=1)
        out: dict[str, Any] = {}
        for k, a in enumerate(names):
            if epsilon > 0 and self.rng.random() < epsilon:
                out[a] = int(self.rng.choice(np.flatnonzero(masks[k])))
            else:
                out[a] = int(greedy[k])
        return out

    # --- learning -----------------------------------------------------------------------------
    def _store(self, o: np.ndarray, agent: int, a: int, r: float, o2: np.ndarray, d: float,
               mask2: np.ndarray) -> None:
        i = self.buf_pos
        self.buf["obs"][i] = torch.as_tensor(o)
        self.buf["next_obs"][i] = torch.as_tensor(o2)
        self.buf["agent"][i] = agent
        self.buf["action"][i] = a
        self.buf["reward"][i] = r
        self.buf["done"][i] = d
        self.buf["next_mask"][i] = torch.as_tensor(mask2)
        self.buf_pos = (i + 1) % self.cfg.buffer_size
        self.buf_size = min(self.buf_size + 1, self.cfg.buffer_size)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Double-Q TD loss; returns named terms (``loss`` is the one to minimise)."""
        q = self.q(batch["obs"], batch["agent"]).gather(1, batch["action"][:, None]).squeeze(1)
        with torch.no_grad():
            q_next_online = self.q(batch["next_obs"], batch["agent"]).masked_fill(~batch["next_mask"], -1e9)
            a_star = q_next_online.argmax(dim=1, keepdim=True)
            q_next = self.q_target(batch["next_obs"], batch["agent"]).gather(1, a_star).squeeze(1)
            y = batch["reward"] + self.cfg.gamma * (1.0 - batch["done"]) * q_next
        td = q - y
        return {"loss": (td**2).mean(), "q_mean": q.mean().detach(), "td_abs": td.abs().mean().detach()}

    def train_iteration(self) -> dict[str, float]:
        """Collect one episode with epsilon-greedy, then run the configured gradient steps."""
        from hieralloc.eval import episode_seed

        env = self.env
        obs, infos = env.reset(seed=episode_seed(self.seed, self.episodes))
        ep_return = 0.0
        steps = 0
        eps = self.epsilon()
        while env.agents:
            eps = self.epsilon()
            actions = self.select(obs, infos, eps)
            nxt, rewards, terms, truncs, infos = env.step(actions)
            for a, act in actions.items():
                done = bool(terms.get(a, False)) or (bool(truncs.get(a, False))
                                                     and not self.cfg.bootstrap_on_truncation)
                o2 = nxt.get(a, obs[a])
                self._store(_flat_obs(self.obs_space, obs[a]), self.agents.index(a), act,
                            float(rewards.get(a, 0.0)), _flat_obs(self.obs_space, o2), float(done),
                            _mask(o2, infos.get(a), self.n_actions))
                ep_return += float(rewards.get(a, 0.0))
            obs = nxt
            steps += 1
            self.env_steps += 1
        self.episodes += 1
        out: dict[str, float] = {"episode_return": ep_return, "epsilon": eps}
        if self.buf_size >= self.cfg.batch_size:
            terms_acc: dict[str, float] = {}
            for _ in range(self.cfg.updates_per_episode):
                idx = torch.as_tensor(self.rng.integers(0, self.buf_size, size=self.cfg.batch_size))
                batch = {k: v[idx] for k, v in self.buf.items()}
                terms = self.loss(batch)
                self.opt.zero_grad()
                terms["loss"].backward()
                nn.utils.clip_grad_norm_(self.q.parameters(), self.cfg.grad_clip)
                self.opt.step()
                self.updates += 1
                if self.updates % self.cfg.target_update == 0:
                    self.q_target.load_state_dict(self.q.state_dict())
                for k, v in terms.items():
                    terms_acc[k] = terms_acc.get(k, 0.0) + float(v.detach()) / self.cfg.updates_per_episode
            out.update(terms_acc)
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "opt": self.opt.state_dict(),
            "buffer": {k: v.clone() for k, v in self.buf.items()},
            "buf_pos": self.buf_pos,
            "buf_size": self.buf_size,
            "rng": self.rng.bit_generator.state,
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from hieralloc.errors import CheckpointError

        try:
            self.q.load_state_dict(state["q"])
            self.q_target.load_state_dict(state["q_target"])
            self.opt.load_state_dict(state["opt"])
            for k in self.buf:
                if state["buffer"][k].shape != self.buf[k].shape:
                    raise ValueError(f"replay field {k} has shape {tuple(state['buffer'][k].shape)}")
                self.buf[k] = state["buffer"][k]
            self.buf_pos = int(state["buf_pos"])
            self.buf_size = int(state["buf_size"])
            self.rng.bit_generator.state = state["rng"]
            self.env_steps = int(state["env_steps"])
            self.episodes = int(state["episodes"])
            self.updates = int(state["updates"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(f"checkpoint does not match this iql learner ({str(e).splitlines()[0]}); "
                                  "resume with the config it was written with") from None


register_algo(AlgoSpec(
    name="iql",
    config_cls=IQLConfig,
    build=IQLLearner,
    caps=Capabilities(discrete=True, off_policy=True, supports_masks=True, learns=True),
    description="independent Q-learning, parameter-shared MLP, double Q (Tan 1993; Mnih et al. 2015)",
))
