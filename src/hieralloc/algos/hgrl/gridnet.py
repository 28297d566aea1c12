"""GridNet (Han et al. 2019, "Grid-wise control for multi-agent reinforcement learning in video game
AI", ICML): the structured-RL baseline of HGRL (Sec. 5.1 "Baselines", App. D) on the coverage grid.

GridNet treats the whole H x W map as an image. A convolutional encoder-decoder reads per-cell
input channels and writes, for every cell, a distribution over the actions an agent standing there
may take; agents coordinate implicitly through the large receptive field of the stacked
convolutions (HGRL App. D). A value head on the encoder's compressed features gives the team value.

Structure (``phi_c`` input channels per cell, ``phi_a = w^2`` actions per cell, HGRL App. D)::

    X_t      = [ D_hat(F_t) ; occupancy_t / N ; t / T ]                        (3, H, W)
    E_0      = relu(conv3x3(X_t)),  E_k = relu(conv3x3_stride2(E_{k-1}))  k = 1..depth  (encoder)
    U_depth  = E_depth,  U_{k-1} = relu(conv3x3([deconv_stride2(U_k) ; E_{k-1}]))         (decoder,
                                                                                 skip connections)
    logits_t = conv1x1(U_0)                                                     (w^2, H, W)
    V(s_t)   = MLP(mean_{x,y} E_depth)                                          (team value)
    pi(a_t | s_t) = prod_i softmax_mask_i(logits_t[:, x_i, y_i])[a_i]           (joint policy)

``D_hat`` is the level-1 demand estimate of :class:`~hieralloc.algos.hgrl.features.DemandFeatures`
(GDI-Net, the true frames, or zeros), without the multi-scale gradients: HGRL Sec. 5.1, "all
baselines use the same GDI-Net inputs where applicable, excluding the multi-scale gradient
information". ``phi_c = 1`` demand channel as in App. D, plus the occupancy and time planes without
which a per-cell policy cannot tell where the agents are or how much of the episode is left.

Each agent samples from the distribution of the cell it stands in (agents sharing a cell sample
independently); moves leaving the grid are masked with the environment's action masks. The joint
policy factorises over agents (Han et al. 2019), so log pi(a_t | s_t) = sum_i log pi_i.

Training: actor-critic on the team reward r_t = mean_i r_t^i with PPO's clipped surrogate on the
joint ratio (Schulman et al. 2017, Eq. (7)), GAE (Schulman et al. 2016, Eq. (16)), value loss on
running-normalised returns (MAPPO's ValueNorm) and an entropy bonus on the agents' mean entropy::

    rho_t = exp(sum_i log pi(a_t^i | s_t) - sum_i log pi_old(a_t^i | s_t))
    L     = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)
            + c_V mean_t (V(s_t) - R_t)^2 / 2 - c_H mean_t mean_i H(pi_i(. | s_t))

See docs/algorithms/gridnet.md for every choice and its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hieralloc.algos.base import checkpoint_for, load_progress, progress_state
from hieralloc.algos.hgrl.features import DemandFeatures, FeatureConfig
from hieralloc.algos.marl import EnvView, masked_mean, seeded_torch
from hieralloc.algos.pg.ppo import clipped_surrogate, gae
from hieralloc.config import Config, param
from hieralloc.errors import IncompatibleError
from hieralloc.nn.heads import CategoricalHead
from hieralloc.nn.normalize import ValueNormalizer
from hieralloc.registry import AlgoSpec, Capabilities, register_algo

#: input planes per cell: estimated demand, agent occupancy / N, t / T
N_INPUT_CHANNELS = 3


@dataclass
class GridNetConfig(Config):
    """Hyper-parameters of GridNet (network: Han et al. 2019 / HGRL App. D; update: PPO, see the docs)."""

    channels: int = param(32, "convolution channels of every encoder/decoder layer (kept small for CPU)",
                          low=1, high=1024)
    depth: int = param(3, "stride-2 convolutions of the encoder (and transposed convolutions of the "
                       "decoder): the receptive field grows about 2^depth", low=1, high=8)
    hidden: int = param(64, "hidden width of the value head's MLP", low=1)
    lr: float = param(5e-4, "Adam learning rate", low=0.0, low_open=True)
    adam_eps: float = param(1e-5, "Adam epsilon (MAPPO: 1e-5)", low=0.0, low_open=True)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0)
    gae_lambda: float = param(0.95, "GAE lambda", low=0.0, high=1.0)
    clip: float = param(0.2, "PPO clip epsilon of the joint ratio", low=0.0, low_open=True)
    epochs: int = param(4, "passes over each batch", low=1)
    n_minibatches: int = param(1, "minibatches (of shuffled time steps) per epoch", low=1)
    episodes_per_iteration: int = param(4, "episodes collected per update", low=1)
    entropy_coef: float = param(0.01, "weight of the entropy bonus (mean entropy over agents)", low=0.0)
    value_coef: float = param(0.5, "weight of the value loss", low=0.0)
    grad_clip: float = param(10.0, "max global gradient norm", low=0.0, low_open=True)
    value_norm: bool = param(True, "learn normalised returns (MAPPO's ValueNorm running statistics)")
    normalise_advantages: bool = param(True, "standardise advantages over each batch")
    bootstrap_on_truncation: bool = param(False, "bootstrap through the time limit instead of treating "
                                          "it as terminal (the coverage objective ends at T)")
    greedy_eval: bool = param(True, "evaluation policy: the per-agent argmax (true) or a sample of "
                              "the stochastic policy seeded by the episode seed (false)")
    features: FeatureConfig = param(default_factory=FeatureConfig, help="the demand channel's source "
                                    "and GDI-Net schedule (HGRL Sec. 4.4, 5.1; see docs/methods/hgrl.md)")


class GridNetModule(nn.Module):
    """Encoder-decoder over the grid (module docstring): ``(B, C, H, W) -> (B, K, H, W), (B,)``."""

    def __init__(self, in_channels: int, n_actions: int, channels: int = 32, depth: int = 3,
                 hidden: int = 64) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1) for _ in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c, 3, stride=2, padding=1) for _ in range(depth)])
        self.merge = nn.ModuleList([nn.Conv2d(2 * c, c, 3, padding=1) for _ in range(depth)])
        self.policy = nn.Conv2d(c, n_actions, 1)  # phi_a = w^2 logits per cell (HGRL App. D)
        self.value = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.stem(x))
        skips = [h]
        for conv in self.down:  # encoder: receptive field doubles with every stride-2 layer
            h = F.relu(conv(h))
            skips.append(h)
        v = self.value(h.mean(dim=(-2, -1))).squeeze(-1)  # global average pool -> MLP -> V(s)
        for k in range(len(self.up) - 1, -1, -1):  # decoder with skip connections back to H x W
            skip = skips[k]
            h = F.relu(self.up[k](h, output_size=list(skip.shape[-2:])))
            h = F.relu(self.merge[k](torch.cat([h, skip], dim=1)))
        return self.policy(h), v


def _core(env: Any) -> Any:
    core = getattr(getattr(env, "unwrapped", env), "core", None)
    if core is None or not hasattr(core, "pos") or not hasattr(core, "frame_index"):
        raise IncompatibleError("gridnet needs a coverage environment (hieralloc.envs.coverage.CoverageEnv, "
                                f"with a batched core at env.core); got {type(env).__name__}")
    return core


def grid_inputs(core: Any, features: DemandFeatures) -> np.ndarray:
    """``(3, H, W)`` float32 input planes of the current step of episode 0 of a coverage core:
    the estimated demand of the current frame (HGRL App. D, phi_c = 1; zeros for source none), the
    number of agents in each cell divided by N, and t / T."""
    H, W, N = int(core.H), int(core.W), int(core.N)
    x = np.zeros((N_INPUT_CHANNELS, H, W), dtype=np.float32)
    if features.enabled:
        frame = int(core.frame_index(core.t)[0])
        x[0] = features.demand_map(0, frame)  # level 1 (factor 1): the base grid
    pos = np.asarray(core.pos[0])
    np.add.at(x[1], (pos[:, 0], pos[:, 1]), 1.0 / N)
    x[2] = float(core.t) / float(core.T)
    return x


def agent_logits(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Each agent's logits, read at its cell: ``(B, K, H, W), (B, N, 2) -> (B, N, K)``."""
    b = torch.arange(logits.shape[0]).unsqueeze(-1)
    return logits.permute(0, 2, 3, 1)[b, positions[..., 0], positions[..., 1]]


class GridNetLearner:
    """Trainer-facing GridNet learner (see the module docstring and :mod:`hieralloc.train`)."""

    algo_name = "gridnet"

    def __init__(self, env: Any, cfg: GridNetConfig, seed: int) -> None:
        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        self.core = _core(env)
        self.view = EnvView(env, algo=self.algo_name)
        if not self.view.discrete or self.view.n_actions != int(self.core.K):
            raise IncompatibleError(f"gridnet needs the coverage env's Discrete({self.core.K}) moves; "
                                    f"got {self.view.action_space}")
        self.n_agents, self.n_actions = self.view.n_agents, self.view.n_actions
        self.features = DemandFeatures.for_env(env, cfg.features, self.seed)
        self.head = CategoricalHead(self.n_actions)
        with seeded_torch(self.seed):
            self.net = GridNetModule(N_INPUT_CHANNELS, self.n_actions, cfg.channels, cfg.depth, cfg.hidden)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.value_norm = ValueNormalizer()
        self.rng = np.random.default_rng(self.seed)
        self.env_steps = 0
        self.episodes = 0
        self.updates = 0
        self.explored = False
        self.policy = GridNetPolicy(self)

    # --- acting --------------------------------------------------------------------------------
    @torch.no_grad()
    def step_logits(self, x: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        """``(N, K)`` logits of the agents at ``positions`` for the input planes ``x``."""
        logits, _ = self.net(torch.from_numpy(x)[None])
        return agent_logits(logits, torch.as_tensor(positions, dtype=torch.long)[None])[0]

    def collect_episode(self) -> dict[str, Any]:
        """Play one sampled episode from ``env.reset(seed=episode_seed(seed, episodes))``."""
        from hieralloc.eval import episode_seed

        env, core, view = self.env, self.core, self.view
        observations, infos = env.reset(seed=episode_seed(self.seed, self.episodes))
        self.features.record(env)
        xs, pos, avail, acts, rews, dones = [], [], [], [], [], []
        ret = 0.0
        while env.agents:
            x = grid_inputs(core, self.features)
            p = np.array(core.pos[0], dtype=np.int64)
            m = view.masks(observations, infos)
            a = self.head.sample(self.step_logits(x, p), torch.from_numpy(m), self.rng).numpy()
            step = {ag: view.env_action(view.index[ag], a[view.index[ag]]) for ag in env.agents}
            observations, rewards, terms, truncs, infos = env.step(step)
            self.features.record(env)
            r = np.array([float(rewards.get(ag, 0.0)) for ag in view.agents])
            ret += float(r.sum())
            done = any(terms.values()) or (any(truncs.values()) and not self.cfg.bootstrap_on_truncation)
            xs.append(x)
            pos.append(p)
            avail.append(m)
            acts.append(a)
            rews.append(float(r.mean()))  # the team reward: mean over agents of the env rewards
            dones.append(done)
        xs.append(grid_inputs(core, self.features))  # the state after the last step (bootstrapping)
        pos.append(np.array(core.pos[0], dtype=np.int64))
        avail.append(view.masks(observations, infos) if observations else np.ones_like(avail[-1]))
        return {"x": np.stack(xs), "pos": np.stack(pos), "avail": np.stack(avail),
                "actions": np.stack(acts).astype(np.int64), "reward": np.asarray(rews, dtype=np.float32),
                "done": np.asarray(dones, dtype=bool), "length": len(acts), "return": ret}

    # --- learning --------------------------------------------------------------------------------
    def evaluate_actions(self, x: torch.Tensor, positions: torch.Tensor, avail: torch.Tensor,
                         actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(joint log pi(a | s) = sum_i log pi_i, mean agent entropy, V(s)) of ``M`` states."""
        logits, v = self.net(x)
        dist = self.head.dist(agent_logits(logits, positions), avail)
        return dist.log_prob(actions).sum(-1), dist.entropy().mean(-1), v

    @staticmethod
    def _stack(eps: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad episodes into time-major ``[T(+1), B, ...]`` tensors plus ``valid [T, B]``."""
        T = max(int(e["length"]) for e in eps)
        B = len(eps)
        out: dict[str, torch.Tensor] = {}
        for key, extra in (("x", 1), ("pos", 1), ("avail", 1), ("actions", 0), ("reward", 0), ("done", 0)):
            first = eps[0][key]
            arr = np.zeros((T + extra, B, *first.shape[1:]), dtype=first.dtype)
            for b, e in enumerate(eps):
                arr[: e[key].shape[0], b] = e[key]
            out[key] = torch.from_numpy(arr)
        if T > 0:  # padded states: any action is 'valid' so that the masked softmax stays finite
            for b, e in enumerate(eps):
                out["avail"][int(e["length"]) + 1:, b] = True
        valid = torch.zeros((T, B), dtype=torch.bool)
        for b, e in enumerate(eps):
            valid[: int(e["length"]), b] = True
        out["valid"] = valid
        return out

    @torch.no_grad()
    def prepare(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Old joint log-probabilities, GAE advantages and (normalised) returns, flattened to the
        valid steps of the batch."""
        cfg = self.cfg
        T1, B = batch["x"].shape[:2]
        T = T1 - 1
        flat = {k: batch[k].reshape(T1 * B, *batch[k].shape[2:]) for k in ("x", "pos", "avail")}
        logits, v_all = self.net(flat["x"])
        v_all = v_all.reshape(T1, B)
        v_den = self.value_norm.denormalize(v_all) if cfg.value_norm else v_all
        valid = batch["valid"]
        adv, ret = gae(batch["reward"], v_den, batch["done"], valid, cfg.gamma, cfg.gae_lambda)
        if cfg.value_norm:
            self.value_norm.update(ret[valid])
            ret = self.value_norm.normalize(ret)
        idx = valid.reshape(-1).nonzero().squeeze(-1)  # step t of episode b at t * B + b
        x, pos, avail = flat["x"][:T * B][idx], flat["pos"][:T * B][idx], flat["avail"][:T * B][idx]
        actions = batch["actions"].reshape(T * B, -1)[idx]
        dist = self.head.dist(agent_logits(logits[:T * B][idx], pos), avail)
        logp_old = dist.log_prob(actions).sum(-1)
        adv = adv.reshape(-1)[idx]
        if cfg.normalise_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
        return {"x": x, "pos": pos, "avail": avail, "actions": actions, "logp_old": logp_old, "adv": adv,
                "ret": ret.reshape(-1)[idx]}

    def loss(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """PPO loss of a minibatch of steps (module docstring); ``loss`` is minimised."""
        cfg = self.cfg
        mask = torch.ones_like(mb["adv"], dtype=torch.bool)
        logp, ent, v = self.evaluate_actions(mb["x"], mb["pos"], mb["avail"], mb["actions"])
        terms = clipped_surrogate(logp, mb["logp_old"], mb["adv"], cfg.clip, mask)  # Schulman 2017 Eq. (7)
        terms["value_loss"] = masked_mean(0.5 * (v - mb["ret"]) ** 2, mask)
        terms["entropy"] = masked_mean(ent, mask)
        terms["loss"] = (terms["policy_loss"] + cfg.value_coef * terms["value_loss"]
                         - cfg.entropy_coef * terms["entropy"])
        return terms

    def update(self, data: dict[str, torch.Tensor]) -> dict[str, float]:
        acc: dict[str, float] = {}
        n_steps = int(data["adv"].shape[0])
        n = 0
        for _ in range(self.cfg.epochs):
            perm = self.rng.permutation(n_steps)
            for chunk in np.array_split(perm, min(self.cfg.n_minibatches, max(n_steps, 1))):
                if chunk.size == 0:
                    continue
                it = torch.as_tensor(chunk, dtype=torch.long)
                terms = self.loss({k: v[it] for k, v in data.items()})
                self.opt.zero_grad()
                terms["loss"].backward()
                grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
                self.opt.step()
                self.updates += 1
                n += 1
                vals = {k: float(v.detach()) for k, v in terms.items()}
                vals["grad_norm"] = float(grad_norm)
                for k, x in vals.items():
                    acc[k] = acc.get(k, 0.0) + x
        return {k: v / max(n, 1) for k, v in acc.items()}

    def train_iteration(self) -> dict[str, float]:
        """(First call: random exploration and the initial GDI-Net fit.) Collect
        ``episodes_per_iteration`` episodes, refitting GDI-Net on schedule, then ``epochs`` x
        ``n_minibatches`` PPO steps."""
        fcfg = self.cfg.features
        out: dict[str, float] = {}
        if not self.explored:
            self.env_steps += self.features.explore(self.env, fcfg, self.seed)  # HGRL Sec. 5.1
            self.explored = True
        eps = []
        for _ in range(self.cfg.episodes_per_iteration):
            eps.append(self.collect_episode())
            self.env_steps += int(eps[-1]["length"])
            self.episodes += 1
            out.update(self.features.maybe_refit(self.episodes, fcfg))  # HGRL Sec. 4.4 closed loop
        out.update(self.update(self.prepare(self._stack(eps))))
        out["episode_return"] = float(np.mean([e["return"] for e in eps]))
        out["team_return"] = float(np.mean([e["reward"].sum() for e in eps]))
        out["episode_length"] = float(np.mean([e["length"] for e in eps]))
        out["updates"] = float(self.updates)
        out["feature_fits"] = float(self.features.fits)
        return out

    # --- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain Python only (weights_only)."""
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "value_norm": self.value_norm.state_dict(),
            "features": self.features.state_dict(),
            **progress_state(self, ("explored",)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with checkpoint_for(self.algo_name):
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["opt"])
            self.value_norm.load_state_dict(state["value_norm"])
            self.features.load_state_dict(state["features"])
            load_progress(self, state, ("explored",))


class GridNetPolicy:
    """The deployable GridNet policy: each agent reads the distribution of its cell and takes its
    argmax over the valid moves (or a sample with ``explore=True`` or ``greedy_eval=False``)."""

    def __init__(self, learner: GridNetLearner) -> None:
        self.learner = learner
        self.env: Any = None
        self.core: Any = None
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.core = _core(env)
        self.rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        lr = self.learner
        if self.core is None:
            raise RuntimeError("call policy.reset(env, seed) before act()")
        x = grid_inputs(self.core, lr.features)
        logits = lr.step_logits(x, np.asarray(self.core.pos[0], dtype=np.int64))
        mask = torch.from_numpy(lr.view.masks(observations, None, env=self.env))
        sample = explore or not lr.cfg.greedy_eval
        a = (lr.head.sample(logits, mask, self.rng) if sample else lr.head.mode(logits, mask)).numpy()
        return {ag: lr.view.env_action(lr.view.index[ag], a[lr.view.index[ag]])
                for ag in observations if ag in lr.view.index}


CAPS = Capabilities(discrete=True, on_policy=True, learns=True, families=("coverage",))

register_algo(AlgoSpec(
    name="gridnet",
    config_cls=GridNetConfig,
    build=GridNetLearner,
    caps=CAPS,
    description="GridNet: grid-wise conv encoder-decoder actor-critic over the whole map "
                "(Han et al. 2019; HGRL App. D)",
))

__all__ = ["CAPS", "GridNetConfig", "GridNetLearner", "GridNetModule", "GridNetPolicy", "agent_logits",
           "grid_inputs"]
