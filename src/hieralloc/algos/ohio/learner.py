"""The OHIO learner: one trainer for SAC, BC, IQL, CQL and Cal-QL on graph environments.

Everything the five algorithms share lives in :class:`OHIOLearner`: reading the environment
through its family's :class:`~hieralloc.ohio.Formulation` (graph layout, graph states, goal or flow
actions), the networks of OHIO App. B.5.1 (:mod:`hieralloc.algos.ohio.nets`), the offline data set
(checked against the environment's graph *before* any training), the online replay store, the
fine-tuning protocol of B.5.2, acting, exact checkpoints. Subclasses implement :meth:`update`, one
gradient step on a batch, from the loss terms of :mod:`hieralloc.algos.ohio.losses`.

Progress (``env_steps``, what ``train.steps`` bounds) counts *gradient steps on the dataset* while a
learner trains offline and *environment steps* once it interacts; with Table 12's one gradient step
per environment step both are gradient steps. A ``train_iteration`` is ``updates_per_iteration``
offline gradient steps, or one online episode followed by ``updates_per_step`` gradient steps per
step of it (the episode's transitions enter the replay store when it ends, with their Monte-Carlo
returns for Cal-QL).

Fine-tuning (OHIO App. B.5.2) runs when an offline learner passes ``offline_steps`` or when SAC
starts ``finetune_from`` a trained run: for the first ``freeze_episodes`` online episodes only the
Q/value functions learn; batches draw ``offline_fraction(e)`` of their transitions from the dataset,
0.5 at the first online episode, decaying linearly to 0 over ``mix_episodes`` episodes.

All randomness (exploration, batches, CQL's sampled actions) comes from the learner's numpy
generator: torch sampling runs under a forked torch RNG seeded from it, so the learner never
touches the global torch RNG and a checkpoint restores it exactly.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hieralloc.algos.base import checkpoint_for, load_progress, progress_state
from hieralloc.algos.ohio.config import FALLBACK_DEFAULTS, FAMILY_DEFAULTS, OHIOConfig
from hieralloc.algos.ohio.data import (
    Transitions,
    concat,
    dataset_transitions,
    observed_goals,
    offline_fraction,
)
from hieralloc.algos.ohio.dists import ActionSpec, make_dist
from hieralloc.algos.ohio.losses import discounted_returns, polyak_update
from hieralloc.algos.ohio.nets import GraphActor, GraphCritic, GraphValue, NetSpec
from hieralloc.errors import ConfigError, DataError, IncompatibleError

_OHIO_COUNTERS = ("offline_updates", "online_steps")  # checkpointed besides the common counters

# ---------------------------------------------------------------------------------------------
# the environment through its OHIO formulation


def env_family(env: Any) -> str:
    """The environment family of a (PettingZoo) env: its ``family`` attribute, else the ``FAMILY`` of
    the ``hieralloc.envs.<family>`` package that defines its class."""
    base = getattr(env, "unwrapped", env)
    fam = getattr(base, "family", None)
    if isinstance(fam, str) and fam:
        return fam
    parts = type(base).__module__.split(".")
    if "envs" in parts and parts.index("envs") + 1 < len(parts):
        pkg = importlib.import_module(".".join(parts[: parts.index("envs") + 2]))
        fam = getattr(pkg, "FAMILY", None)
        if isinstance(fam, str) and fam:
            return fam
    raise IncompatibleError(f"the OHIO learners need a network environment (mobility, supply); "
                            f"{type(base).__name__} has no environment family with an OHIO formulation")


class GraphView:
    """The learner's view of a single-agent network environment: formulation, layout, action space."""

    def __init__(self, env: Any, cfg: OHIOConfig, algo: str) -> None:
        from hieralloc.ohio.formulation import get_formulation

        self.env = env
        self.base = getattr(env, "unwrapped", env)
        agents = list(env.possible_agents)
        if len(agents) != 1:
            raise IncompatibleError(f"{algo} controls a single operator agent; the environment has {len(agents)}")
        self.agent = agents[0]
        self.family = env_family(env)
        self.formulation = get_formulation(self.family)
        self.layout = self.formulation.layout(self.base)
        mode = str(getattr(getattr(self.base, "config", None), "action_mode", "goal"))
        wanted = {"goal": "ohio", "flow": "e2e"}.get(mode)
        if wanted is None:
            raise IncompatibleError(f"{algo} needs an environment in action_mode goal or flow, got {mode!r}")
        form = wanted if cfg.formulation == "auto" else cfg.formulation
        if form != wanted:
            need = "goal" if form == "ohio" else "flow"
            raise ConfigError("formulation", f"'{form}' needs the environment in action_mode={need}, and it runs "
                              f"in action_mode={mode}; set env.action_mode={need} (or algo.formulation=auto)")
        self.form = form
        fam = FAMILY_DEFAULTS.get(self.family, FALLBACK_DEFAULTS)
        edge_dist = fam["edge_dist"] if cfg.edge_dist == "auto" else cfg.edge_dist
        lay = self.layout
        if form == "ohio":
            self.spec = ActionSpec("goal", int(lay.n_nodes), tuple(int(p) for p in np.asarray(lay.producers)))
            dim = int(self.formulation.goal_dim(lay))
        else:
            # production decisions are flows too (OHIO App. B.4.3: one Beta per edge, production bounded by
            # capacity): each producer enters the edge convolution as a self-loop (p, p) after the flow edges
            prod = np.asarray(lay.producers, dtype=np.int64).reshape(-1)
            fe = np.concatenate([np.asarray(lay.flow_edges, dtype=np.int64).reshape(2, -1), np.stack([prod, prod])],
                                axis=1)
            self.spec = ActionSpec("flow", int(lay.n_nodes), flow_edges=(tuple(int(i) for i in fe[0]),
                                                                         tuple(int(j) for j in fe[1])),
                                   edge_dist=edge_dist)
            dim = int(self.formulation.flow_dim(lay))
        if dim != self.spec.dim:
            raise IncompatibleError(f"the {self.family} formulation's {'goal' if form == 'ohio' else 'flow'} vector "
                                    f"has {dim} entries; {algo} expects {self.spec.dim} (N + P for goals, F + P "
                                    "for flows: one per flow edge, then one per producer)")
        shape = tuple(env.action_space(self.agent).shape or ())
        if shape != (dim,):
            raise IncompatibleError(f"the environment's action space has shape {shape}, the {form} formulation "
                                    f"needs ({dim},)")
        self.edge_index = torch.as_tensor(np.asarray(lay.edge_index, dtype=np.int64).reshape(2, -1))
        env.reset(seed=0)  # a defined state to read the feature widths from
        gs = self.formulation.observe(self.base)
        encoder = fam["encoder"] if cfg.encoder == "auto" else cfg.encoder
        self.net = NetSpec(
            node_dim=int(gs.x.shape[1]), edge_dim=int(gs.edge_attr.shape[1]) if encoder == "mpnn" else 0,
            encoder=encoder, hidden=cfg.hidden, conv_layers=cfg.conv_layers or int(fam["conv_layers"]),
            mlp_layers=int(fam["mlp_layers"]) if cfg.mlp_layers < 0 else cfg.mlp_layers,
            edge_layers=int(fam["edge_layers"]) if cfg.edge_layers < 0 else cfg.edge_layers,
            edge_hidden=cfg.edge_hidden or int(fam["edge_hidden"]) or cfg.hidden)
        self.edge_features = encoder == "mpnn"
        self.n_edges = int(self.edge_index.shape[1])

    def observe(self, env: Any | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x (N, Fx), edge_attr (E, Fe or 0))`` tensors of the current state of ``env``."""
        base = self.base if env is None else getattr(env, "unwrapped", env)
        gs = self.formulation.observe(base)
        x = torch.as_tensor(np.asarray(gs.x, dtype=np.float32))
        ea = torch.as_tensor(np.asarray(gs.edge_attr, dtype=np.float32)) if self.edge_features \
            else torch.zeros((self.n_edges, 0))
        return x, ea

    def env_action(self, a: torch.Tensor) -> np.ndarray:
        return self.spec.to_env(a).detach().numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------------


class OHIOLearner(abc.ABC):
    """Trainer-facing learner shared by the OHIO algorithms (module docstring)."""

    algo_name: ClassVar[str] = "ohio"
    #: trains from a dataset before (or without) interacting
    offline: ClassVar[bool] = False
    #: which networks the algorithm trains
    uses_q: ClassVar[bool] = True
    uses_v: ClassVar[bool] = False

    def __init__(self, env: Any, cfg: OHIOConfig, seed: int) -> None:
        from hieralloc.algos.marl import seeded_torch

        self.env = env
        self.cfg = cfg
        self.seed = int(seed)
        self.view = GraphView(env, cfg, self.algo_name)
        self.spec = self.view.spec
        net = self.view.net
        with seeded_torch(self.seed):
            self.actor = GraphActor(net, self.spec)
            self.q1 = GraphCritic(net, self.spec) if self.uses_q else None
            self.q2 = GraphCritic(net, self.spec) if self.uses_q else None
            self.value = GraphValue(net) if self.uses_v else None
        self.q1_target = copy.deepcopy(self.q1) if self.q1 is not None else None
        self.q2_target = copy.deepcopy(self.q2) if self.q2 is not None else None
        for t in (self.q1_target, self.q2_target):
            if t is not None:
                t.requires_grad_(False)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_params: list[nn.Parameter] = []
        if self.q1 is not None and self.q2 is not None:
            self.critic_params = list(self.q1.parameters()) + list(self.q2.parameters())
        self.opt_critic = torch.optim.Adam(self.critic_params, lr=cfg.critic_lr) if self.critic_params else None
        self.opt_value = torch.optim.Adam(self.value.parameters(), lr=cfg.critic_lr) if self.value else None
        self.rng = np.random.default_rng(self.seed)
        # counters (module docstring): progress, gradient steps, online steps and episodes
        self.env_steps = 0
        self.updates = 0
        self.offline_updates = 0
        self.online_steps = 0
        self.episodes = 0
        self.data: Transitions | None = None
        if cfg.dataset:
            self.data = self.load_dataset(Path(cfg.dataset))
        elif self.offline:
            raise ConfigError("dataset", f"{self.algo_name} trains offline from a dataset: set "
                              "algo.dataset=DIR (write one with 'hieralloc collect ENV BEHAVIOUR --episodes N')")
        self.buffer: Transitions | None = None
        self.finetuning = False
        self.policy = OHIOPolicy(self)

    # ------------------------------------------------------------------ data
    def load_dataset(self, path: Path) -> Transitions:
        """Load, check against this environment's graph (before training) and convert a dataset."""
        from hieralloc.ohio.dataset import OfflineDataset

        ds = OfflineDataset.load(path)
        ds.check_layout(self.view.layout, env_name=f"this {self.view.family} environment")
        cfg = self.cfg
        if self.view.form == "e2e":
            actions = ds.flow_actions(self.view.formulation)
        elif cfg.goals == "observed":
            actions = observed_goals(self.view.family, ds.next_aux, self.spec.n_nodes, self.spec.dim)
        else:
            actions = ds.goals(self.view.formulation)
        if actions.shape[1] != self.spec.dim:
            raise DataError(f"dataset '{path}' gives actions of {actions.shape[1]} entries, this learner's "
                            f"{self.view.form} actions have {self.spec.dim}")
        return dataset_transitions(ds, actions, reward_scale=cfg.reward_scale, gamma=cfg.gamma,
                                   bootstrap_on_truncation=cfg.bootstrap_on_truncation,
                                   edge_features=self.view.edge_features)

    def _ensure_buffer(self, shapes: dict[str, tuple[int, ...]]) -> Transitions:
        if self.buffer is None:
            self.buffer = Transitions(self.cfg.buffer_size, shapes)
        return self.buffer

    def sample(self, frac_offline: float) -> dict[str, torch.Tensor] | None:
        """A batch with ``frac_offline`` of it from the dataset and the rest from the replay store
        (uniform, with replacement); None while there are too few transitions for one batch."""
        bs = self.cfg.batch_size
        n_data = len(self.data) if self.data is not None else 0
        n_buf = len(self.buffer) if self.buffer is not None else 0
        if n_buf == 0 or n_data == 0:
            frac_offline = 1.0 if n_buf == 0 else 0.0
        available = (n_data if frac_offline > 0 else 0) + (n_buf if frac_offline < 1 else 0)
        if available < bs:
            return None
        n_off = int(round(frac_offline * bs))
        parts = []
        if n_off:
            assert self.data is not None
            parts.append(self.data.get(self.rng.integers(0, n_data, n_off)))
        if bs - n_off:
            assert self.buffer is not None
            parts.append(self.buffer.get(self.rng.integers(0, n_buf, bs - n_off)))
        return concat(parts)

    # ------------------------------------------------------------------ randomness
    @contextlib.contextmanager
    def torch_rng(self) -> Iterator[None]:
        """Torch sampling seeded from the learner's generator, the global torch RNG untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(0, 2**63 - 1)))
            yield

    # ------------------------------------------------------------------ networks
    def actor_dist(self, x: torch.Tensor, ea: torch.Tensor) -> torch.distributions.Distribution:
        return make_dist(self.spec, self.actor(x, self.view.edge_index, self._ea(ea)))

    def _ea(self, ea: torch.Tensor) -> torch.Tensor | None:
        return ea if self.view.edge_features else None

    def step_optimiser(self, opt: torch.optim.Optimizer, params: list[nn.Parameter], loss: torch.Tensor) -> float:
        """Zero, back-propagate, clip (``grad_clip``) and step; returns the gradient norm."""
        opt.zero_grad()
        loss.backward()
        gn = nn.utils.clip_grad_norm_(params, self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf"))
        opt.step()
        return float(gn)

    def update_targets(self) -> None:
        if self.q1 is not None and self.q1_target is not None and self.q2 is not None and self.q2_target is not None:
            polyak_update(self.q1_target, self.q1, self.cfg.tau)
            polyak_update(self.q2_target, self.q2, self.cfg.tau)

    @abc.abstractmethod
    def update(self, batch: dict[str, torch.Tensor], update_actor: bool) -> dict[str, float]:
        """One gradient step of the algorithm on ``batch`` (the policy's only when ``update_actor``)."""

    # ------------------------------------------------------------------ training
    def in_offline_phase(self) -> bool:
        return self.offline and (self.cfg_offline_steps() == 0 or self.offline_updates < self.cfg_offline_steps())

    def cfg_offline_steps(self) -> int:
        return int(getattr(self.cfg, "offline_steps", 0))

    def train_iteration(self) -> dict[str, float]:
        if self.in_offline_phase():
            return self.offline_iteration()
        return self.online_iteration()

    def offline_iteration(self) -> dict[str, float]:
        n = self.cfg.updates_per_iteration
        if self.cfg_offline_steps():
            n = min(n, self.cfg_offline_steps() - self.offline_updates)
        acc: dict[str, float] = {}
        done = 0
        for _ in range(n):
            batch = self.sample(1.0)
            if batch is None:  # a dataset smaller than one batch: sample with replacement anyway
                assert self.data is not None
                batch = self.data.get(self.rng.integers(0, len(self.data), self.cfg.batch_size))
            with self.torch_rng():
                terms = self.update(batch, update_actor=True)
            _accumulate(acc, terms)
            done += 1
        self.updates += done
        self.offline_updates += done
        self.env_steps += done
        out = {k: v / max(done, 1) for k, v in acc.items()}
        out["gradient_steps"] = float(self.updates)
        return out

    def collect_episode(self) -> dict[str, Any]:
        """One exploratory episode (reset with ``episode_seed(seed, episodes)``) as transitions."""
        from hieralloc.eval import episode_seed

        env, view = self.env, self.view
        env.reset(seed=episode_seed(self.seed, self.episodes))
        x, ea = view.observe()
        rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("x", "edge_attr", "action", "next_x",
                                                                "next_edge_attr")}
        rewards, dones = [], []
        violation, violated = 0.0, 0
        while env.agents:
            with torch.no_grad(), self.torch_rng():
                a = self.spec.to_env(self.actor_dist(x[None], ea[None]).sample()[0])
            _obs, rew, term, trunc, infos = env.step({view.agent: a.numpy().astype(np.float32)})
            info = infos.get(view.agent, {})
            v = float(info.get("violation", 0.0))
            violation += v
            violated += int(v > 1e-9)
            nx, nea = view.observe()
            for k, t in (("x", x), ("edge_attr", ea), ("action", a), ("next_x", nx), ("next_edge_attr", nea)):
                rows[k].append(t)
            rewards.append(float(rew.get(view.agent, 0.0)))
            terminated = bool(term.get(view.agent, False))
            ended = terminated or bool(trunc.get(view.agent, False))
            dones.append(terminated if self.cfg.bootstrap_on_truncation else ended)
            x, ea = nx, nea
        T = len(rewards)
        r = torch.as_tensor(rewards, dtype=torch.float64) * self.cfg.reward_scale
        out: dict[str, Any] = {k: torch.stack(v) for k, v in rows.items()}
        out["reward"] = r.float()
        out["done"] = torch.as_tensor(dones, dtype=torch.float32)
        out["mc_return"] = discounted_returns(r, torch.zeros(T, dtype=torch.long), self.cfg.gamma).float()
        return {"rows": out, "return": float(sum(rewards)), "length": T, "violation": violation,
                "violation_steps": violated}

    def online_iteration(self) -> dict[str, float]:
        cfg = self.cfg
        online_episode = self.episodes  # online episodes before this one
        ep = self.collect_episode()
        rows = ep["rows"]
        self._ensure_buffer({k: tuple(v.shape[1:]) for k, v in rows.items()}).add(rows)
        self.episodes += 1
        self.online_steps += ep["length"]
        self.env_steps += ep["length"]
        frac = offline_fraction(online_episode, cfg.mix_start, cfg.mix_episodes) if self.data is not None else 0.0
        frozen = self.finetune_protocol() and online_episode < cfg.freeze_episodes
        acc: dict[str, float] = {}
        n_updates = int(round(cfg.updates_per_step * ep["length"]))
        done = 0
        for _ in range(n_updates):
            batch = self.sample(frac)
            if batch is None:
                break
            with self.torch_rng():
                terms = self.update(batch, update_actor=not frozen)
            _accumulate(acc, terms)
            done += 1
        self.updates += done
        out = {k: v / max(done, 1) for k, v in acc.items()}
        out.update({"episode_return": ep["return"], "episode_length": float(ep["length"]),
                    "violation": ep["violation"], "violation_steps": float(ep["violation_steps"]),
                    "offline_fraction": frac, "policy_frozen": float(frozen), "gradient_steps": float(self.updates),
                    "online_steps": float(self.online_steps)})
        return out

    def finetune_protocol(self) -> bool:
        """Whether the online phase follows OHIO App. B.5.2 (fine-tuning a pre-trained policy)."""
        return self.offline or self.finetuning

    # ------------------------------------------------------------------ checkpointing
    def networks(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"actor": self.actor}
        for name in ("q1", "q2", "q1_target", "q2_target", "value"):
            m = getattr(self, name)
            if m is not None:
                nets[name] = m
        return nets

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        opts: dict[str, torch.optim.Optimizer] = {"opt_actor": self.opt_actor}
        for name in ("opt_critic", "opt_value"):
            o = getattr(self, name)
            if o is not None:
                opts[name] = o
        return opts

    def extra_state(self) -> dict[str, Any]:
        """Algorithm-specific checkpoint entries beyond networks and optimisers (CQL's alpha')."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook; nothing by default
        """Inverse of :meth:`extra_state`."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors and plain python: weights_only)."""
        return {
            **{k: m.state_dict() for k, m in self.networks().items()},
            **{k: o.state_dict() for k, o in self.optimisers().items()},
            **self.extra_state(),
            "buffer": self.buffer.state_dict() if self.buffer is not None else None,
            **progress_state(self, _OHIO_COUNTERS),
            "family": self.view.family, "formulation": self.view.form,
            "dataset_transitions": len(self.data) if self.data is not None else 0,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with checkpoint_for(self.algo_name):
            if state["family"] != self.view.family or state["formulation"] != self.view.form:
                raise ValueError(f"it was written for {state['formulation']} on {state['family']}")
            n_data = len(self.data) if self.data is not None else 0
            if int(state["dataset_transitions"]) != n_data:
                raise ValueError(f"it was trained with a dataset of {state['dataset_transitions']} transitions, "
                                 f"this learner has {n_data}")
            for k, m in self.networks().items():
                m.load_state_dict(state[k])
            for k, o in self.optimisers().items():
                o.load_state_dict(state[k])
            self.load_extra_state(state)
            if state["buffer"] is not None:
                buf = state["buffer"]
                self._ensure_buffer({k: tuple(buf[k].shape[1:]) for k in buf if isinstance(buf[k], torch.Tensor)})
                assert self.buffer is not None
                self.buffer.load_state_dict(buf)
            else:
                self.buffer = None
            load_progress(self, state, _OHIO_COUNTERS)


def _accumulate(acc: dict[str, float], terms: dict[str, float]) -> None:
    for k, v in terms.items():
        acc[k] = acc.get(k, 0.0) + float(v)


class OHIOPolicy:
    """The deployable policy of an OHIO learner: the distribution's mean (Dirichlet / Beta / Gaussian
    mean; Gaussian flows clipped into [0, 1]), or a sample with ``explore=True``."""

    def __init__(self, learner: OHIOLearner) -> None:
        self.learner = learner
        self.env: Any = None
        self.rng = np.random.default_rng(0)

    def reset(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, observations: dict[str, Any], state: np.ndarray | None = None,
            explore: bool = False) -> dict[str, Any]:
        lr = self.learner
        agent = lr.view.agent
        if agent not in observations:
            return {}
        if self.env is None:
            raise RuntimeError("call reset(env) before act()")
        x, ea = lr.view.observe(self.env)
        dist = lr.actor_dist(x[None], ea[None])
        if explore:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.rng.integers(0, 2**63 - 1)))
                a = dist.sample()[0]
        else:
            a = dist.mean[0]
        return {agent: lr.view.env_action(a)}


__all__ = ["GraphView", "OHIOLearner", "OHIOPolicy", "env_family"]
