"""SAC, BC, IQL, CQL and Cal-QL as :class:`~hieralloc.algos.ohio.learner.OHIOLearner` s.

Each class is one ``update``: a gradient step on a batch of transitions ``(s, a, r, d, s')`` (``a``
the inverted goal, the observed-state goal or the flow action; ``r`` scaled; ``d`` the bootstrap
mask), read top to bottom next to its paper (see docs/algorithms/sac.md and offline.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hieralloc.algos.ohio.config import BCConfig, CalQLConfig, CQLConfig, IQLConfig, SACConfig
from hieralloc.algos.ohio.learner import OHIOLearner
from hieralloc.algos.ohio.losses import (
    awr_policy_loss,
    bc_loss,
    cql_penalty,
    cql_sampled_values,
    expectile_loss,
    lagrange_terms,
    mse,
    sac_actor_loss,
    soft_td_target,
    td_target,
)
from hieralloc.errors import CheckpointError, ConfigError

Batch = dict[str, torch.Tensor]


class _ActorCritic(OHIOLearner):
    """Shared pieces: critic inputs, SAC's soft target and SAC's actor step."""

    def _q(self, batch: Batch, a: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        assert q1 is not None and q2 is not None
        ei, ea = self.view.edge_index, self._ea(batch["edge_attr"])
        return q1(batch["x"], ei, ea, a), q2(batch["x"], ei, ea, a)

    def soft_target(self, batch: Batch) -> torch.Tensor:
        """SAC's clipped double-Q soft target at s' with a' ~ pi(.|s') (losses.soft_td_target)."""
        cfg = self.cfg
        with torch.no_grad():
            dist = self.actor_dist(batch["next_x"], batch["next_edge_attr"])
            a_next = dist.sample()
            logp_next = dist.log_prob(a_next)
            nb = {"x": batch["next_x"], "edge_attr": batch["next_edge_attr"]}
            q1n, q2n = self._q(nb, self.spec.to_env(a_next), target=True)
            return soft_td_target(batch["reward"], batch["done"], q1n, q2n, logp_next, cfg.gamma, cfg.entropy)

    def sac_actor_step(self, batch: Batch) -> dict[str, float]:
        """SAC Eq. (12) with a reparameterised sample (Dirichlet / Beta / Gaussian rsample)."""
        dist = self.actor_dist(batch["x"], batch["edge_attr"])
        a = dist.rsample()
        logp = dist.log_prob(a)
        q1, q2 = self._q(batch, self.spec.to_env(a))
        loss = sac_actor_loss(torch.min(q1, q2), logp, self.cfg.entropy)
        gn = self.step_optimiser(self.opt_actor, list(self.actor.parameters()), loss)
        return {"actor_loss": float(loss.detach()), "logp": float(logp.detach().mean()), "actor_grad_norm": gn}


# ---------------------------------------------------------------------------------------------


class SACLearner(_ActorCritic):
    """Online SAC (Haarnoja et al. 2018) with double Q and target networks (OHIO B.5.3, Table 12)::

        y        = r + gamma (1 - d) (min_k Q'_k(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')
        L_Q      = sum_k (Q_k(s, a) - y)^2
        L_pi     = alpha log pi(a~|s) - min_k Q_k(s, a~),                          a~ ~ pi(.|s) (rsample)

    With ``finetune_from`` it starts from a trained OHIO run and follows OHIO App. B.5.2.
    """

    algo_name = "sac"
    cfg: SACConfig

    def __init__(self, env: Any, cfg: SACConfig, seed: int) -> None:
        super().__init__(env, cfg, seed)
        if cfg.finetune_from:
            self.load_pretrained(Path(cfg.finetune_from))
            self.finetuning = True

    def load_pretrained(self, path: Path) -> None:
        """Policy and (where present) Q-functions of a trained OHIO learner's latest checkpoint."""
        from hieralloc.runs import RunDir, load_checkpoint

        if path.is_dir():
            ckpts = RunDir(path).checkpoints()
            if not ckpts:
                raise ConfigError("finetune_from", f"'{path}' holds no checkpoint; pass the run directory of a "
                                  "finished OHIO training run (or one of its checkpoints/ckpt_*.pt files)")
            path = ckpts[-1][1]
        elif not path.is_file():
            raise ConfigError("finetune_from", f"'{path}' does not exist; pass the run directory of a trained OHIO "
                              "learner (e.g. runs/<experiment>/ohio-iql-seed0-...)")
        state = load_checkpoint(path)["payload"]["learner"]
        if not isinstance(state, dict) or "actor" not in state or "formulation" not in state:
            raise ConfigError("finetune_from", f"'{path}' is not a checkpoint of an OHIO learner (sac, ohio-bc, "
                              "ohio-iql, ohio-cql, ohio-calql)")
        if state["formulation"] != self.view.form:
            raise ConfigError("finetune_from", f"'{path}' holds a {state['formulation']} policy, this run trains "
                              f"{self.view.form}; match algo.formulation and env.action_mode to the pre-trained run")
        try:
            self.actor.load_state_dict(state["actor"])
            for name in ("q1", "q2"):
                if name in state:
                    getattr(self, name).load_state_dict(state[name])
                    getattr(self, f"{name}_target").load_state_dict(state.get(f"{name}_target", state[name]))
        except RuntimeError as e:
            raise CheckpointError(f"'{path}' was trained with another architecture ({str(e).splitlines()[0]}); "
                                  "use the same algo.hidden / encoder / layer settings as the pre-trained run"
                                  ) from None
        self.pretrained = str(path)

    def update(self, batch: Batch, update_actor: bool) -> dict[str, float]:
        y = self.soft_target(batch)
        q1, q2 = self._q(batch, batch["action"])
        loss = mse(q1, y) + mse(q2, y)
        gn = self.step_optimiser(self.opt_critic, self.critic_params, loss)  # type: ignore[arg-type]
        out = {"critic_loss": float(loss.detach()), "q": float(q1.detach().mean()), "critic_grad_norm": gn}
        if update_actor:
            out.update(self.sac_actor_step(batch))
        self.update_targets()
        return out


# ---------------------------------------------------------------------------------------------


class BCLearner(OHIOLearner):
    """Behaviour cloning on the (inverted) actions: ``L = -E_D log pi(a|s)``."""

    algo_name = "ohio-bc"
    offline = True
    uses_q = False
    cfg: BCConfig

    def __init__(self, env: Any, cfg: BCConfig, seed: int) -> None:
        if cfg.offline_steps:
            raise ConfigError("offline_steps", "behaviour cloning learns no value function to fine-tune online; "
                              "fine-tune a BC run with 'sac algo.finetune_from=RUN_DIR' (OHIO App. B.5.2)")
        super().__init__(env, cfg, seed)

    def update(self, batch: Batch, update_actor: bool) -> dict[str, float]:
        logp = self.actor_dist(batch["x"], batch["edge_attr"]).log_prob(batch["action"])
        loss = bc_loss(logp)
        gn = self.step_optimiser(self.opt_actor, list(self.actor.parameters()), loss)
        return {"bc_loss": float(loss.detach()), "actor_grad_norm": gn}


# ---------------------------------------------------------------------------------------------


class IQLLearner(OHIOLearner):
    """Implicit Q-learning (Kostrikov et al. 2021) with OHIO B.5.3's tau = 0.9, beta = 3::

        L_V  = E_D L_2^tau(min_k Q'_k(s, a) - V(s))                       (Eq. 5)
        L_Q  = sum_k E_D (r + gamma (1 - d) V(s') - Q_k(s, a))^2            (Eq. 6)
        L_pi = -E_D exp(beta (min_k Q'_k(s, a) - V(s))) log pi(a|s)        (Eq. 7, weights clipped at 100)
    """

    algo_name = "ohio-iql"
    offline = True
    uses_v = True
    cfg: IQLConfig

    def update(self, batch: Batch, update_actor: bool) -> dict[str, float]:
        cfg = self.cfg
        assert self.value is not None and self.opt_value is not None and self.opt_critic is not None
        ei = self.view.edge_index
        ea, nea = self._ea(batch["edge_attr"]), self._ea(batch["next_edge_attr"])
        x, a = batch["x"], batch["action"]
        assert self.q1_target is not None and self.q2_target is not None and self.q1 is not None
        assert self.q2 is not None
        with torch.no_grad():
            q_t = torch.min(self.q1_target(x, ei, ea, a), self.q2_target(x, ei, ea, a))
            y = td_target(batch["reward"], batch["done"], self.value(batch["next_x"], ei, nea), cfg.gamma)
        v = self.value(x, ei, ea)
        v_loss = expectile_loss(q_t - v, cfg.expectile)
        gn_v = self.step_optimiser(self.opt_value, list(self.value.parameters()), v_loss)
        out = {"value_loss": float(v_loss.detach()), "v": float(v.detach().mean()), "value_grad_norm": gn_v}
        if update_actor:
            adv = q_t - v.detach()
            logp = self.actor_dist(x, batch["edge_attr"]).log_prob(a)
            pi_loss = awr_policy_loss(logp, adv, cfg.temperature, cfg.max_weight)
            gn_pi = self.step_optimiser(self.opt_actor, list(self.actor.parameters()), pi_loss)
            out.update({"actor_loss": float(pi_loss.detach()), "advantage": float(adv.mean()),
                        "actor_grad_norm": gn_pi})
        q1, q2 = self.q1(x, ei, ea, a), self.q2(x, ei, ea, a)
        q_loss = mse(q1, y) + mse(q2, y)
        gn_q = self.step_optimiser(self.opt_critic, self.critic_params, q_loss)
        out.update({"critic_loss": float(q_loss.detach()), "q": float(q1.detach().mean()), "critic_grad_norm": gn_q})
        self.update_targets()
        return out


# ---------------------------------------------------------------------------------------------


class CQLLearner(_ActorCritic):
    """CQL(H) (Kumar et al. 2020, Eq. (4)) on SAC, alpha = 1 (OHIO B.5.3)::

        L_Q = sum_k [ (Q_k(s, a) - y)^2 + alpha ( log sum_a~ exp Q_k(s, a~) - Q_k(s, a) ) ]

    with SAC's soft target y and actor loss; the log-sum-exp is estimated by importance sampling over
    ``cql_n_actions`` uniform actions and policy actions at s and s' (CQL App. F). With
    ``lagrange`` the factor becomes a dual variable alpha' >= 0 that keeps the penalty near
    ``target_action_gap``. Cal-QL (:class:`CalQLLearner`) bounds the policy-action values below by the
    Monte-Carlo return.
    """

    algo_name = "ohio-cql"
    offline = True
    cfg: CQLConfig
    calibrated: ClassVar[bool] = False

    def __init__(self, env: Any, cfg: CQLConfig, seed: int) -> None:
        super().__init__(env, cfg, seed)
        self.log_alpha_prime = torch.tensor(float(np.log(cfg.alpha_prime_init)), requires_grad=True)
        self.opt_alpha = torch.optim.Adam([self.log_alpha_prime], lr=cfg.critic_lr)

    def sampled_actions(self, x: torch.Tensor, ea: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, M, dim)`` executed actions drawn from the policy at the states ``x``, their log-probs ``(B, M)``."""
        M = self.cfg.cql_n_actions
        with torch.no_grad():
            dist = self.actor_dist(x, ea)
            a = dist.sample((M,))          # (M, B, dim)
            logp = dist.log_prob(a)        # (M, B)
        return self.spec.to_env(a).transpose(0, 1), logp.transpose(0, 1)

    def update(self, batch: Batch, update_actor: bool) -> dict[str, float]:
        cfg = self.cfg
        assert self.q1 is not None and self.q2 is not None and self.opt_critic is not None
        y = self.soft_target(batch)
        B, M = batch["reward"].shape[0], cfg.cql_n_actions
        a_rand = self.spec.sample_uniform((B, M), self.rng)
        a_pi, logp_pi = self.sampled_actions(batch["x"], batch["edge_attr"])
        a_pin, logp_pin = self.sampled_actions(batch["next_x"], batch["next_edge_attr"])
        lower = batch["mc_return"] if self.calibrated else None
        ei, ea = self.view.edge_index, self._ea(batch["edge_attr"])
        td, penalties, q_data_mean = [], [], 0.0
        for q in (self.q1, self.q2):
            emb = q.embed(batch["x"], ei, ea)
            q_data = q.head(emb, batch["action"])
            sampled = cql_sampled_values(q.head(emb, a_rand), self.spec.uniform_log_density(), q.head(emb, a_pi),
                                         logp_pi, q.head(emb, a_pin), logp_pin, lower_bound=lower)
            td.append(mse(q_data, y))
            penalties.append(cfg.cql_alpha * cql_penalty(q_data, sampled, cfg.cql_temperature))
            q_data_mean += float(q_data.detach().mean()) / 2
        out: dict[str, float] = {"td_loss": float(sum(td).detach()), "q": q_data_mean,  # type: ignore[union-attr]
                                 "cql_penalty": float(sum(penalties).detach()) / 2}  # type: ignore[union-attr]
        if cfg.lagrange:
            terms = [lagrange_terms(p, self.log_alpha_prime, cfg.target_action_gap) for p in penalties]
            reg = terms[0][0] + terms[1][0]
            dual = 0.5 * (terms[0][1] + terms[1][1])
            self.opt_alpha.zero_grad()
            dual.backward()
            self.opt_alpha.step()
            out["alpha_prime"] = float(terms[0][2])
        else:
            reg = penalties[0] + penalties[1]
        loss = td[0] + td[1] + reg
        out["critic_grad_norm"] = self.step_optimiser(self.opt_critic, self.critic_params, loss)
        out["critic_loss"] = float(loss.detach())
        if update_actor:
            out.update(self.sac_actor_step(batch))
        self.update_targets()
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"log_alpha_prime": self.log_alpha_prime.detach().clone(), "opt_alpha": self.opt_alpha.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_alpha_prime.copy_(state["log_alpha_prime"])
        self.opt_alpha.load_state_dict(state["opt_alpha"])


class CalQLLearner(CQLLearner):
    """Cal-QL (Nakamoto et al. 2023): CQL whose pushed-down policy-action values are
    ``max(Q(s, a~), V^mu(s))``, ``V^mu`` the discounted Monte-Carlo return of the data (Eq. (5)), so
    the learned Q stays calibrated to the behaviour policy's scale for online fine-tuning (OHIO B.5.2)."""

    algo_name = "ohio-calql"
    cfg: CalQLConfig
    calibrated = True


#: algo config keys that define the networks (what a transferred policy must share with its run)
ARCHITECTURE_KEYS = ("formulation", "encoder", "hidden", "conv_layers", "mlp_layers", "edge_layers", "edge_hidden",
                     "edge_dist")


def policy_from_run(run_dir: Path | str, env: Any, seed: int = 0) -> Any:
    """The greedy policy of a trained OHIO run, rebuilt for ``env``: another scenario of the same
    family and formulation, e.g. a policy trained on 1W10S evaluated on 1W10S-CAP (OHIO Table 5's
    transfer row) or one trained on NYC run on Shenzhen (Fig. 8b). The networks are shared over
    nodes and edges, so graph sizes may differ; the run's architecture keys are reused."""
    from hieralloc.config import from_dict
    from hieralloc.runs import RunDir

    run = RunDir(Path(run_dir))
    if not run.exists():
        raise ConfigError("run_dir", f"'{run_dir}' is not a run directory (no config.yaml); pass the directory "
                          "of a trained OHIO learner")
    algo_cfg = run.read_config().get("algo_config", {})
    arch = {k: algo_cfg[k] for k in ARCHITECTURE_KEYS if k in algo_cfg}
    learner = SACLearner(env, from_dict(SACConfig, arch, str(run.config_path), prefix="algo_config."), seed)
    learner.load_pretrained(Path(run_dir))
    return learner.policy


__all__ = ["ARCHITECTURE_KEYS", "BCLearner", "CQLLearner", "CalQLLearner", "IQLLearner", "SACLearner",
           "policy_from_run"]
