"""Hyper-parameters of the LPMARL learner and its registered variants (one learner class, these configs).

Defaults follow LPMARL Table 4 (network units, LeakyReLU(0.01), Adam, learning rate 1e-3,
gamma 0.99) and App. E (replay buffer of 5,000 episodes, batches of 32 episodes, 50,000 training
episodes of 50 steps); values the paper does not give are marked as our choices and explained in
docs/methods/lpmarl.md ("Choices").

The registered names differ only in the defaults of :attr:`LPMARLConfig.high_level` and
:attr:`LPMARLConfig.decentralised`:

* ``lpmarl``: ``high_level=lp`` (GNN costs -> assignment LP, Sec. 3-4);
* ``dec-lpmarl``: the same, plus the decentralised imitation policy of App. D (``decentralised=true``);
* ``lpmarl-nolp``: ``high_level=nolp`` (per-agent softmax over the costs, no LP; Sec. 5 / Table 1 "No-LP");
* ``lpmarl-lpdist``: ``high_level=lpdist`` (LP on the negative distance matrix; App. F.1.3 "LP-distance");
* ``lpmarl-greedy``: ``high_level=greedy`` (nearest task; App. F.1.3 "Greedy").
"""

from __future__ import annotations

from dataclasses import dataclass

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError
from hieralloc.lpmarl.assign import METHODS, MODES

#: high-level decision rules (App. F.1.3 ablations next to the LP)
HIGH_LEVELS = ("lp", "nolp", "lpdist", "greedy")
#: the high levels that learn (have a cost network trained through the high-level critic)
LEARNED_HIGH_LEVELS = ("lp", "nolp")


@dataclass
class LPMARLConfig(Config):
    """LPMARL (paper 002): LP assignment over GNN costs + task-conditioned group policies."""

    high_level: str = param("lp", "high-level decision: lp (GNN costs -> LP, Sec. 3.2), nolp (softmax over the "
                            "costs without the LP, Table 1 'No-LP'), lpdist (LP on -distance, App. F.1.3), greedy "
                            "(nearest task, App. F.1.3)", choices=HIGH_LEVELS)
    decentralised: bool = param(False, "also train Dec-LPMARL's local-observation GNN policy by behaviour cloning "
                                "on the LP's assignments (App. D, Eq. (20)) and evaluate with it")
    # --- networks (Table 4) -------------------------------------------------------------------
    gnn_units: tuple[int, ...] = param((32, 32), "MLP units of the GNN's message/update networks theta^NM, "
                                       "theta^NN, theta^MM, theta^V (Table 4: [32, 32]); also the embedding width")
    gnn_rounds: int = param(2, "message-passing rounds of Eq. (1)-(3) (not given in the paper; ours: 2)", low=1,
                            high=8)
    gnn_aggr: str = param("sum", "neighbour aggregation of Eq. (3): sum (the paper's) or mean (scale-free for "
                          "transfer to larger graphs)", choices=("sum", "mean"))
    cost_units: tuple[int, ...] = param((64, 64), "MLP units of the cost head f(.; theta_c) (Table 4: [64, 64])")
    policy_units: tuple[int, ...] = param((64, 64), "MLP units of the low-level policy f(.; theta_l) "
                                          "(Table 4: [64, 64])")
    critic_units: tuple[int, ...] = param((64, 64), "MLP units of the critics f(.; phi_h), f(.; phi_l) "
                                          "(Table 4: [64, 64])")
    # --- hierarchy ------------------------------------------------------------------------------
    tau: int = param(1, "steps between high-level decisions (Eq. (14)'s tau); combat also re-decides at "
                     "events (a unit died, App. F.2). Sec. 3: 'at each step' -> 1", low=1)
    # --- LP layer (Sec. 4.1, App. B) --------------------------------------------------------------
    lam: float = param(10.0, "blackbox perturbation scale lambda of Eq. (10)-(12), (16) (not in Table 4; the "
                       "assignment layer's default 10)", low=0.0, low_open=True)
    lp_gradient: str = param("blackbox", "gradient through the LP: blackbox (Vlastelica et al., the paper's) or "
                             "perturbed (Berthet et al., for comparison)", choices=MODES)
    lp_sigma: float = param(1.0, "noise scale of lp_gradient=perturbed", low=0.0, low_open=True)
    lp_samples: int = param(8, "Monte-Carlo samples of lp_gradient=perturbed", low=1)
    lp_method: str = param("fast", "assignment solver: fast (Jonker-Volgenant on capacity slots) or lp (HiGHS)",
                           choices=METHODS)
    target_max: str = param("lp", "max over next high-level actions in Eq. (14): lp (the best joint assignment "
                            "within the capacities, solved by the LP) or independent (each agent's own max, Eq. (14) "
                            "literally)", choices=("lp", "independent"))
    # --- optimisation (Table 4, App. E) ---------------------------------------------------------
    lr: float = param(1e-3, "Adam learning rate of every network (Table 4: 1e-3)", low=0.0, low_open=True)
    gamma: float = param(0.99, "discount factor gamma (Table 4: 0.99)", low=0.0, high=1.0)
    grad_clip: float = param(10.0, "max global gradient norm per optimiser (not in the paper; EPyMARL's 10)",
                             low=0.0, low_open=True)
    w_start: float = param(0.9, "initial weight w of the low-level objective in J = w J_l + (1 - w) J_h "
                           "(Sec. 4: 0.9)", low=0.0, high=1.0)
    w_end: float = param(0.1, "final weight w (Sec. 4: 0.1)", low=0.0, high=1.0)
    w_decay_steps: int = param(2_500_000, "environment steps of the linear decay of w (App. E.2: 50,000 episodes "
                               "x 50 steps)", low=1)
    batch_size: int = param(32, "episodes per gradient step (App. E.1-E.2: 32)", low=1)
    buffer_size: int = param(5000, "replay capacity in episodes (App. E.1-E.2: 5,000)", low=1)
    updates_per_episode: int = param(1, "gradient steps after each collected episode (not in the paper; "
                                     "EPyMARL's 1)", low=0)
    td_lambda: float = param(0.0, "lambda of the critics' TD(lambda) targets over an episode (0: the one-step "
                             "targets of Eq. (14) and Eq. (18), the paper's)", low=0.0, high=1.0)
    target_update: str = param("soft", "target critics phi_h-bar, phi_l-bar (not in the paper): 'soft' Polyak-"
                               "averages with target_tau after every step, 'hard' copies every target_interval steps",
                               choices=("soft", "hard"))
    target_tau: float = param(0.01, "Polyak rate of soft target updates (EPyMARL's soft rate 0.01)", low=0.0,
                              high=1.0, low_open=True)
    target_interval: int = param(200, "gradient steps between hard target copies (EPyMARL's 200)", low=1)
    entropy_coef: float = param(0.1, "entropy bonus of the stochastic policies (low level; No-LP's high level), "
                                "relative to their batch-normalised advantages (not in the paper; ours: 0.1)",
                                low=0.0)
    eps_start: float = param(1.0, "initial exploration rate of training episodes (not in the paper): the "
                             "probability that a learned high level's decision is a uniformly random feasible "
                             "assignment, and the uniform share mixed into the low-level policy's action "
                             "distribution (COMA's exploration)", low=0.0, high=1.0)
    eps_end: float = param(0.05, "final exploration rate", low=0.0, high=1.0)
    eps_anneal_steps: int = param(50_000, "environment steps of the linear exploration decay (EPyMARL's 50,000)",
                                  low=1)
    bootstrap_on_truncation: bool = param(False, "bootstrap through time-limit ends instead of treating them as "
                                          "terminal (the value family's default: terminal)")
    # --- problem sizes (Sec. 5.1.2) -------------------------------------------------------------
    size_range: tuple[int, ...] = param((), "[lo, hi]: train on mixed problem sizes (Sec. 5.1.2 / Table 2: 'the "
                                        "policy learned from 3 <= N, M <= 10'): every training episode draws N "
                                        "uniformly from [lo, hi], then M from [lo, min(N, hi)] (M <= N), and is "
                                        "played on a navigation env of that size (the env's other settings kept); "
                                        "replay pads episodes to (hi, hi) with dead agents and tasks. Empty: the "
                                        "env's own size. Navigation only")
    # --- starting point and evaluation ----------------------------------------------------------
    finetune_from: str = param("", "run directory (or checkpoints/ckpt_*.pt file) of a trained run of the same "
                               "variant to start from: every network is loaded (the GNNs and the task-conditioned "
                               "policy fit any (N, M)); replay, optimisers and counters start afresh. With "
                               "train.steps=0 this is zero-shot evaluation on another size (Sec. 5.1.2, Table 2)")
    evaluate_central: bool = param(False, "Dec-LPMARL: evaluate the centralised LP hierarchy of the run "
                                   "(learner.central_policy) instead of the local policy; the networks LPMARL "
                                   "would train are trained identically either way")
    eval_high_level: str = param("", "evaluate the trained low level under another high-level rule without "
                                 "learned parts: lpdist (the LP on -distance, App. F.1.3) or greedy (nearest task); "
                                 "'': the run's own high level. A diagnostic that separates the two levels' errors "
                                 "(docs/methods/lpmarl.md); training is unchanged",
                                 choices=("", "lpdist", "greedy"))
    # --- environment-specific rewards (App. E) ---------------------------------------------------
    task_reward_dense: bool = param(True, "combat: add the damage dealt to the assigned enemy (fraction of its "
                                    "health) to the +1-per-kill sub-task reward of the low level")

    def validate(self) -> None:
        super().validate()
        for name in ("gnn_units", "cost_units", "policy_units", "critic_units"):
            units = getattr(self, name)
            if not units or any(int(u) < 1 for u in units):
                raise ConfigError(name, f"must be a non-empty list of positive widths, e.g. [64, 64]; got "
                                        f"{list(units)}")
        if self.evaluate_central and not self.decentralised:
            raise ConfigError("evaluate_central", "only Dec-LPMARL (decentralised=true) has a second, centralised "
                                                  "policy to evaluate; drop evaluate_central")
        if self.eval_high_level and self.decentralised and not self.evaluate_central:
            raise ConfigError("eval_high_level", "Dec-LPMARL evaluates its local policy; set "
                                                 "algo.evaluate_central=true to evaluate the low level under "
                                                 f"{self.eval_high_level}, or drop eval_high_level")
        if self.size_range:
            r = [int(v) for v in self.size_range]
            fix = ""
            if len(r) == 2 and r[0] > r[1] >= 1:
                fix = f"; write [{r[1]}, {r[0]}]"
            elif len(r) == 2 and min(r) < 1:
                fix = "; sizes start at 1"
            if len(r) != 2 or not (1 <= r[0] <= r[1]):
                raise ConfigError("size_range", f"must be two integers [lo, hi] with 1 <= lo <= hi (the range of N "
                                                f"and M drawn per episode, e.g. [3, 10]), or empty for the env's own "
                                                f"size; got {r}{fix}")
        if self.decentralised and self.high_level != "lp":
            raise ConfigError("decentralised", f"Dec-LPMARL imitates the LP's assignments (App. D); it needs "
                                               f"high_level=lp, got high_level={self.high_level}")


@dataclass
class DecLPMARLConfig(LPMARLConfig):
    """Dec-LPMARL (App. D): LPMARL plus a local-observation GNN policy trained by behaviour cloning."""

    decentralised: bool = param(True, "train and evaluate Dec-LPMARL's local-observation policy (App. D, "
                                "Eq. (20)); false gives plain lpmarl")


@dataclass
class NoLPConfig(LPMARLConfig):
    """No-LP ablation (Sec. 5, Table 1): the high level maps the state to per-agent task choices directly."""

    high_level: str = param("nolp", "high-level decision (see lpmarl); this variant: nolp", choices=HIGH_LEVELS)


@dataclass
class LPDistConfig(LPMARLConfig):
    """LP-distance ablation (App. F.1.3): the LP on the negative distance matrix, no learned cost."""

    high_level: str = param("lpdist", "high-level decision (see lpmarl); this variant: lpdist", choices=HIGH_LEVELS)


@dataclass
class GreedyConfig(LPMARLConfig):
    """Greedy ablation (App. F.1.3): each agent takes its nearest task."""

    high_level: str = param("greedy", "high-level decision (see lpmarl); this variant: greedy", choices=HIGH_LEVELS)


__all__ = ["HIGH_LEVELS", "LEARNED_HIGH_LEVELS", "DecLPMARLConfig", "GreedyConfig", "LPDistConfig", "LPMARLConfig",
           "NoLPConfig"]
