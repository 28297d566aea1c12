"""Multi-agent PPO (Schulman et al. 2017; Yu et al. 2022): the on-policy learner of IPPO and MAPPO.

IPPO and MAPPO differ only in the critic's input: the agent's own observation (IPPO, de Witt et
al. 2020) or the global state (MAPPO's centralised critic, Yu et al. 2022, Sec. 3); see
:mod:`hieralloc.algos.pg.ippo` and :mod:`hieralloc.algos.pg.mappo`. Everything else is here:

* actors and critics are :class:`~hieralloc.nn.sharing.AgentNet`\\ s (FC-GRU-FC or MLP) under any
  parameter-sharing mode; the actor's outputs go through an action-distribution head
  (:mod:`hieralloc.nn.heads`): categorical with action masks, or Gaussian / Beta for continuous
  actions, one code path;
* one iteration collects ``episodes_per_iteration`` whole episodes with the current policy;
* generalised advantage estimation (Schulman et al. 2016, Eq. (16)), :func:`gae`;
* clipped surrogate objective (Schulman et al. 2017, Eq. (7)), :func:`clipped_surrogate`;
* clipped value loss on normalised targets (Yu et al. 2022, Sec. 5 "value normalisation" and
  "value clipping"; Huber or squared error), :func:`value_loss`; value normalisation by running
  statistics, optionally with PopArt output preservation (:mod:`hieralloc.nn.normalize`);
* an entropy bonus, advantage standardisation, ``epochs`` passes over the data in
  ``n_minibatches`` minibatches (whole episodes for recurrent networks, single steps otherwise),
  Adam with separate actor/critic learning rates and separate gradient-norm clipping.

Total loss of a minibatch (mask m over real agent-steps)::

    rho   = exp(log pi(a|tau) - log pi_old(a|tau))
    L_pi  = -mean_m min(rho A, clip(rho, 1 - eps, 1 + eps) A)
    L_V   = mean_m max(l(R - V), l(R - clip(V, V_old - eps_V, V_old + eps_V)))     (normalised R, V)
    L     = L_pi + c_V L_V - c_H mean_m H(pi(.|tau))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hieralloc.algos.marl import (
    AgentConfig,
    EnvView,
    MARLLearner,
    initial_groups,
    masked_mean,
    run_episode,
    seeded_torch,
    stack_episodes,
    team_reward,
)
from hieralloc.config import param
from hieralloc.nn.heads import ActionHead, make_head
from hieralloc.nn.normalize import RunningMeanStd, ValueNormalizer
from hieralloc.nn.sharing import AgentNet

# ---------------------------------------------------------------------------------------------
# Loss terms as pure functions (tested against hand-computed values)


def gae(reward: torch.Tensor, values: torch.Tensor, done: torch.Tensor, valid: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, Eqs. (11)-(16)).

    ``reward, done, valid``: ``[T, ...]``; ``values``: ``[T + 1, ...]`` (the value of the state
    after the last step at index L, read when an episode is truncated and bootstrapped)::

        delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t
        A_t     = delta_t + gamma lambda (1 - d_t) A_{t+1}          (A_{t+1} = 0 past the last valid step)
        R_t     = A_t + V_t                                          (the critic's target)

    Returns ``(advantages, returns)``, zero where ``valid`` is false.
    """
    T = reward.shape[0]
    notdone = 1.0 - done.to(reward.dtype)
    validf = valid.to(reward.dtype)
    adv = torch.zeros_like(reward)
    last = torch.zeros_like(reward[0])
    for t in range(T - 1, -1, -1):
        nxt_valid = validf[t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = reward[t] + gamma * notdone[t] * values[t + 1] - values[t]
        last = (delta + gamma * lam * notdone[t] * nxt_valid * last) * validf[t]
        adv[t] = last
    return adv, (adv + values[:-1]) * validf


def clipped_surrogate(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float,
                      mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, Eq. (7)) as a loss to minimise, plus the
    fraction of clipped ratios and the approximate KL divergence E[(rho - 1) - log rho]."""
    log_ratio = logp - logp_old
    ratio = torch.exp(log_ratio)
    surr = torch.min(ratio * adv, torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv)
    with torch.no_grad():
        clip_frac = masked_mean(((ratio - 1.0).abs() > clip).float(), mask)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
    return {"policy_loss": -masked_mean(surr, mask), "clip_frac": clip_frac, "approx_kl": approx_kl}


def _elementwise(err: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "huber":
        a = err.abs()
        return torch.where(a <= delta, 0.5 * err**2, delta * (a - 0.5 * delta))
    return 0.5 * err**2


def value_loss(v: torch.Tensor, v_old: torch.Tensor, ret: torch.Tensor, clip: float, mask: torch.Tensor,
               kind: str = "mse", delta: float = 10.0) -> torch.Tensor:
    """Clipped value loss (Yu et al. 2022, Sec. 5; MAPPO code): max of the errors of V and of
    V_old + clip(V - V_old, -eps, eps); ``clip = 0`` disables clipping. ``kind``: 'mse' (e^2 / 2) or
    'huber' with threshold ``delta``."""
    loss = _elementwise(ret - v, kind, delta)
    if clip > 0:
        v_clipped = v_old + torch.clamp(v - v_old, -clip, clip)
        loss = torch.max(loss, _elementwise(ret - v_clipped, kind, delta))
    return masked_mean(loss, mask)


# ---------------------------------------------------------------------------------------------


@dataclass
class PPOConfig(AgentConfig):
    """Hyper-parameters of IPPO/MAPPO (defaults: Yu et al. 2022 and EPyMARL; see the docs pages)."""

    critic_lr: float = param(5e-4, "critic learning rate (EPyMARL: 5e-4)", low=0.0, low_open=True)
    adam_eps: float = param(1e-5, "Adam epsilon (MAPPO: 1e-5)", low=0.0, low_open=True)
    episodes_per_iteration: int = param(10, "episodes collected per update (EPyMARL: 10 parallel episodes)",
                                        low=1)
    epochs: int = param(5, "passes over each batch (MAPPO: 5-15; EPyMARL: 4)", low=1)
    n_minibatches: int = param(1, "minibatches per epoch (MAPPO: 1 on MPE)", low=1)
    clip: float = param(0.2, "PPO ratio clip epsilon (MAPPO, EPyMARL: 0.2)", low=0.0, low_open=True)
    value_clip: float = param(0.2, "value clip epsilon on normalised values (MAPPO: 0.2; 0 disables)", low=0.0)
    value_loss: str = param("huber", "critic loss: huber (MAPPO) or mse", choices=("huber", "mse"))
    huber_delta: float = param(10.0, "Huber threshold (MAPPO: 10)", low=0.0, low_open=True)
    value_coef: float = param(1.0, "weight of the value loss", low=0.0)
    entropy_coef: float = param(0.01, "entropy bonus weight (MAPPO: 0.01; EPyMARL: 0.001-0.01)", low=0.0)
    gae_lambda: float = param(0.95, "GAE lambda (MAPPO: 0.95)", low=0.0, high=1.0)
    value_norm: str = param("running", "value-target normalisation: running (MAPPO ValueNorm), popart, none",
                            choices=("running", "popart", "none"))
    value_norm_beta: float = param(0.99999, "EMA rate of the value statistics (MAPPO: 0.99999)",
                                   low=0.0, high=1.0, high_open=True)
    normalise_advantages: bool = param(True, "standardise advantages over each batch (MAPPO: true)")
    standardise_rewards: bool = param(False, "divide rewards by their running standard deviation")
    critic_recurrent: bool = param(False, "FC-GRU-FC critic (MAPPO's code: recurrent like the actor; "
                                   "EPyMARL's critics: feed-forward)")
    continuous_dist: str = param("gaussian", "policy distribution for Box actions", choices=("gaussian", "beta"))
    log_std_init: float = param(0.0, "initial log standard deviation of Gaussian policies")


class PPOLearner(MARLLearner):
    """Trainer-facing multi-agent PPO learner; the critic input is chosen by subclasses."""

    algo_name: ClassVar[str] = "ppo"
    cfg: PPOConfig
    #: whether the critic reads the global state (MAPPO)
    centralised: ClassVar[bool] = False

    # --- critic input (overridden by MAPPO) -----------------------------------------------------
    def critic_spec(self) -> tuple[int, int, str]:
        """(input size, number of critic 'agents', sharing mode) of the critic network."""
        return self.view.obs_dim, self.view.n_agents, self.cfg.sharing

    def critic_inputs(self, batch: dict[str, torch.Tensor], steps: slice) -> torch.Tensor:
        """``[T, B, N_c, in]`` critic inputs for the time steps ``steps`` of a batch."""
        return batch["obs"][steps]

    # --------------------------------------------------------------------------------------------
    def __init__(self, env: Any, cfg: PPOConfig, seed: int) -> None:
        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        self.view = EnvView(env, need_state=self.centralised, algo=self.algo_name)
        v = self.view
        self.n_agents = v.n_agents
        self.groups = initial_groups(cfg, self.n_agents)
        with seeded_torch(self.seed):
            self.head: ActionHead = make_head(v.action_space, cfg.continuous_dist, cfg.log_std_init)
            self.actor = AgentNet(v.obs_dim, self.head.n_params, v.n_agents, cfg.sharing, cfg.n_groups,
                                  cfg.hidden, cfg.recurrent)
            c_in, c_agents, c_sharing = self.critic_spec()
            self.critic = AgentNet(c_in, 1, c_agents, c_sharing, cfg.n_groups, cfg.hidden, cfg.critic_recurrent)
        # one team value V(s) (MAPPO critic_input=state): evaluated once per step, shared by the agents
        self.critic_shared_team = c_agents == 1 and c_sharing == "full"
        self.actor_params = list(self.actor.parameters()) + list(self.head.parameters())
        self.critic_params = list(self.critic.parameters())
        self.opt = torch.optim.Adam([{"params": self.actor_params, "lr": cfg.lr},
                                     {"params": self.critic_params, "lr": cfg.critic_lr}], eps=cfg.adam_eps)
        self.value_norm = ValueNormalizer(cfg.value_norm_beta, popart=cfg.value_norm == "popart")
        self.reward_stats = RunningMeanStd()
        self.rng = np.random.default_rng(self.seed)
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.policy = PPOPolicy(self)

    def grouped_net(self) -> AgentNet:
        return self.actor

    # --- acting --------------------------------------------------------------------------------
    @torch.no_grad()
    def policy_params(self, obs: np.ndarray, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.actor(torch.from_numpy(obs)[None, None], torch.as_tensor(self.groups), h)
        return y[0, 0], h

    def _to_env(self, a: np.ndarray) -> list[Any]:
        return [self.view.env_action(i, self.head.to_env(a[i])) for i in range(self.n_agents)]

    def collect_episode(self) -> dict[str, Any]:
        from hieralloc.eval import episode_seed

        h = self.actor.initial_hidden(1)
        discrete = self.head.discrete

        def act(o: np.ndarray, m: np.ndarray, present: np.ndarray,
                s: np.ndarray | None) -> tuple[np.ndarray, list[Any]]:
            nonlocal h
            params, h = self.policy_params(o, h)
            a = self.head.sample(params, torch.from_numpy(m) if discrete else None, self.rng).numpy()
            return a, self._to_env(a)

        return run_episode(self.env, self.view, episode_seed(self.seed, self.episodes), act,
                           self.cfg.bootstrap_on_truncation)

    # --- learning --------------------------------------------------------------------------------
    def values(self, batch: dict[str, torch.Tensor], steps: slice) -> torch.Tensor:
        """Critic outputs (normalised space) ``[T, B, N]`` for the steps ``steps``."""
        v, _ = self.critic(self.critic_inputs(batch, steps), None if self.critic_shared_team else batch["groups"])
        v = v.squeeze(-1)
        if self.critic_shared_team:
            v = v.expand(*v.shape[:2], self.n_agents)
        return v

    def log_probs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a_t | tau_t), entropy) ``[T, B, N]`` of the batch's actions."""
        params, _ = self.actor(batch["obs"], batch["groups"])
        dist = self.head.dist(params, batch["avail"] if self.head.discrete else None)
        return dist.log_prob(batch["actions"]), dist.entropy()

    def loss(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """PPO loss of a minibatch (module docstring); ``loss`` is minimised."""
        cfg = self.cfg
        valid = mb["valid"]
        logp, ent = self.log_probs(mb)
        terms = clipped_surrogate(logp, mb["logp_old"], mb["adv"], cfg.clip, valid)
        v = self.values(mb, slice(None))
        terms["value_loss"] = value_loss(v, mb["v_old"], mb["ret"], cfg.value_clip, valid, cfg.value_loss,
                                         cfg.huber_delta)
        terms["entropy"] = masked_mean(ent, valid)
        terms["loss"] = (terms["policy_loss"] + cfg.value_coef * terms["value_loss"]
                         - cfg.entropy_coef * terms["entropy"])
        return terms

    @torch.no_grad()
    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Old log-probabilities, values, GAE advantages and normalised returns of a fresh batch."""
        cfg = self.cfg
        valid = batch["filled"].unsqueeze(-1) & batch["active"][:-1]
        reward = team_reward(batch["reward"], cfg.reward)
        if reward.dim() == 2:
            reward = reward.unsqueeze(-1).expand(-1, -1, self.n_agents)
        if cfg.standardise_rewards:
            self.reward_stats.update(reward[valid])
            reward = reward / self.reward_stats.std.float()
        steps = slice(None, -1)
        data = {k: batch[k][steps] for k in ("obs", "avail", "active")}
        if "state" in batch:
            data["state"] = batch["state"][steps]
        data["actions"], data["groups"] = batch["actions"], batch["groups"]
        logp_old, _ = self.log_probs(data)
        v_all = self.values(batch, slice(None))  # [T + 1, B, N]
        use_norm = cfg.value_norm != "none"
        v_den = self.value_norm.denormalize(v_all) if use_norm else v_all
        adv, ret = gae(reward, v_den, batch["done"], valid, cfg.gamma, cfg.gae_lambda)
        if use_norm:
            self.value_norm.update(ret[valid], self.critic.out if cfg.value_norm == "popart" else None)
            v_old, ret_n = self.value_norm.normalize(v_den[:-1]), self.value_norm.normalize(ret)
        else:
            v_old, ret_n = v_den[:-1], ret
        if cfg.normalise_advantages:
            a = adv[valid]
            adv = (adv - a.mean()) / (a.std(unbiased=False) + 1e-8) if a.numel() > 1 else adv - a.mean()
        data.update({"logp_old": logp_old, "v_old": v_old, "ret": ret_n, "adv": adv, "valid": valid})
        return data

    def _minibatches(self, data: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        if not (self.cfg.recurrent or self.cfg.critic_recurrent):
            # feed-forward networks: every step is its own 'episode' of length 1 (steps are shuffled)
            T, B = data["obs"].shape[:2]
            flat = {k: v.reshape(1, T * B, *v.shape[2:]) for k, v in data.items() if k != "groups"}
            flat["groups"] = data["groups"].repeat(T, 1)
            data = flat
        n = data["obs"].shape[1]
        perm = self.rng.permutation(n)
        out = []
        for idx in np.array_split(perm, min(self.cfg.n_minibatches, n)):
            it = torch.as_tensor(idx, dtype=torch.long)
            out.append({k: (v[it] if k == "groups" else v.index_select(1, it)) for k, v in data.items()})
        return out

    def update(self, data: dict[str, torch.Tensor]) -> dict[str, float]:
        acc: dict[str, float] = {}
        n = 0
        for _ in range(self.cfg.epochs):
            for mb in self._minibatches(data):
                terms = self.loss(mb)
                self.opt.zero_grad()
                terms["loss"].backward()
                gn_a = nn.utils.clip_grad_norm_(self.actor_params, self.cfg.grad_clip)
                gn_c = nn.utils.clip_grad_norm_(self.critic_params, self.cfg.grad_clip)
                self.opt.step()
                self.updates += 1
                n += 1
                vals = {k: float(v.detach()) for k, v in terms.items()}
                vals["actor_grad_norm"], vals["critic_grad_norm"] = float(gn_a), float(gn_c)
                for k, x in vals.items():
                    acc[k] = acc.get(k, 0.0) + x
        return {k: v / max(n, 1) for k, v in acc.items()}

    def train_iteration(self) -> dict[str, float]:
        """Collect ``episodes_per_iteration`` episodes, then ``epochs`` x ``n_minibatches`` steps."""
        eps, groups = [], []
        for _ in range(self.cfg.episodes_per_iteration):
            self.before_episode()
            groups.append(list(self.groups))
            eps.append(self.collect_episode())
            self.env_steps += int(eps[-1]["length"])
            self.episodes += 1
        batch = stack_episodes(eps, groups)
        out = self.update(self.prepare(batch))
        out["episode_return"] = float(np.mean([e["return"] for e in eps]))
        out["episode_length"] = float(np.mean([e["length"] for e in eps]))
        out["updates"] = float(self.updates)
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def modules_state(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "head": self.head.state_dict(),
            "opt": self.opt.state_dict(),
            "value_norm": self.value_norm.state_dict(),
            "reward_stats": self.reward_stats.state_dict(),
        }

    def load_modules(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.head.load_state_dict(state["head"])
        self.opt.load_state_dict(state["opt"])
        self.value_norm.load_state_dict(state["value_norm"])
        self.reward_stats.load_state_dict(state["reward_stats"])


class PPOPolicy:
    """The deployable policy of a PPO learner: the distribution's mode (argmax over valid actions,
    the Gaussian mean, the Beta mean), or a sample with ``explore=True``."""

    def __init__(self, learner: PPOLearner) -> None:
        self.learner = learner
        self.env: Any = None
        self.h = learner.actor.initial_hidden(1)
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.h = self.learner.actor.initial_hidden(1)
        self.rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        lr = self.learner
        o, _ = lr.view.obs(observations)
        mask = torch.from_numpy(lr.view.masks(observations, None, env=self.env)) if lr.head.discrete else None
        params, self.h = lr.policy_params(o, self.h)
        a = (lr.head.sample(params, mask, self.rng) if explore else lr.head.mode(params, mask)).numpy()
        acts = lr._to_env(a)
        return {ag: acts[lr.view.index[ag]] for ag in observations if ag in lr.view.index}


__all__ = ["PPOConfig", "PPOLearner", "PPOPolicy", "clipped_surrogate", "gae", "value_loss"]
