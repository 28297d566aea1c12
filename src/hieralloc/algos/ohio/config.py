"""Hyper-parameters of the OHIO learners (OHIO App. B.5; Table 12) and the family defaults of
the architectures (App. B.3.3, B.4.3, B.5.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError

#: architecture per environment family (OHIO App. B.5.1 with B.3.3 / B.4.3); 'auto' fields take these
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    # B.3.3: "one layer of GCN with 256 hidden units with a sum aggregation function, followed by 2 linear
    # layers of 256 hidden units and a final layer"; E2E: "an edge convolution (consisting of 2 linear layers
    # of 256 units) that outputs the mean and standard deviation of a Gaussian policy for each edge"
    # (edge_hidden 0: the width of the node layers, `hidden`, 256 by default: B.3.3 uses 256 for both)
    "mobility": {"encoder": "gcn", "conv_layers": 1, "mlp_layers": 2, "edge_layers": 2, "edge_hidden": 0,
                 "edge_dist": "gaussian"},
    # B.4.3: "two layers of message-passing neural network of 256 hidden units with a sum aggregation
    # function, followed by a linear layer"; E2E: "an edge convolution (2 linear layers of 32 hidden units)
    # that outputs alpha and beta of a Beta distribution for each edge"
    "supply": {"encoder": "mpnn", "conv_layers": 2, "mlp_layers": 0, "edge_layers": 1, "edge_hidden": 32,
               "edge_dist": "beta"},
}
#: families without an entry get the message-passing architecture (it reads edge features)
FALLBACK_DEFAULTS = FAMILY_DEFAULTS["supply"]


@dataclass
class OHIOConfig(Config):
    """Shared by every OHIO learner. Defaults: OHIO App. B.5.3 / Table 12 (SAC)."""

    formulation: str = param("auto", "'ohio' (the action is the goal, the env in action_mode=goal), 'e2e' (end-to-"
                             "end flows, the env in action_mode=flow) or 'auto' (follow env.action_mode)",
                             choices=("auto", "ohio", "e2e"))
    dataset: str = param("", "offline dataset directory (hieralloc collect); offline learners train on it, "
                         "online fine-tuning mixes it into batches (OHIO App. B.5.2)")
    goals: str = param("inverse", "high-level actions of the data: 'inverse' (OHIO: the analytical inverse of "
                       "the low-level LP) or 'observed' (the 'Observed State' baseline: the next observed "
                       "state as the goal; formulation ohio only)", choices=("inverse", "observed"))
    # --- architecture (OHIO App. B.5.1; 'auto' = the family's values, FAMILY_DEFAULTS) ----------------
    encoder: str = param("auto", "graph encoder: gcn (mobility), mpnn (supply chain) or auto",
                         choices=("auto", "gcn", "mpnn"))
    hidden: int = param(256, "width of the graph layers and node MLPs (OHIO B.3.3 / B.4.3: 256)", low=1)
    conv_layers: int = param(0, "graph layers (0: family default, GCN 1 / MPNN 2)", low=0, high=16)
    mlp_layers: int = param(-1, "hidden layers of the per-node MLP heads (-1: family default, mobility 2 / "
                            "supply 0)", low=-1, high=16)
    edge_layers: int = param(-1, "hidden layers of the end-to-end edge convolution (-1: family default, "
                             "mobility 2 / supply 1)", low=-1, high=16)
    edge_hidden: int = param(0, "width of the end-to-end edge convolution (0: family default, mobility = hidden "
                             "(256) / supply 32)", low=0)
    edge_dist: str = param("auto", "end-to-end flow distribution per edge: gaussian (mobility, B.3.3), beta "
                           "(supply, B.4.3) or auto", choices=("auto", "gaussian", "beta"))
    # --- optimisation (Table 12) -----------------------------------------------------------------------
    actor_lr: float = param(1e-3, "policy learning rate, Adam (Table 12: 1e-3)", low=0.0, low_open=True)
    critic_lr: float = param(1e-3, "Q- and value-function learning rate, Adam (Table 12: 1e-3)", low=0.0,
                             low_open=True)
    gamma: float = param(0.97, "discount (Table 12: 0.97)", low=0.0, high=1.0)
    batch_size: int = param(100, "transitions per gradient step (Table 12: 100)", low=1)
    tau: float = param(0.005, "target smoothing coefficient (Table 12: 0.005)", low=0.0, high=1.0)
    entropy: float = param(0.3, "entropy coefficient alpha, fixed (Table 12: 0.3)", low=0.0)
    grad_clip: float = param(10.0, "gradient-norm clip per network (0: none)", low=0.0)
    reward_scale: float = param(0.01, "rewards are multiplied by this before learning (money in the "
                                "observations is scaled by 0.01 as well)", low=0.0, low_open=True)
    bootstrap_on_truncation: bool = param(True, "bootstrap the value at the time limit (the episode's end is a "
                                          "truncation of a continuing system); false treats it as terminal")
    # --- online interaction and fine-tuning (Table 12, OHIO App. B.5.2) ------------------------------
    updates_per_step: float = param(1.0, "gradient steps per environment step online (Table 12: 1)", low=0.0)
    updates_per_iteration: int = param(100, "gradient steps per train_iteration offline (train.steps is "
                                       "rounded up to a multiple)", low=1)
    buffer_size: int = param(20_000, "online replay capacity in transitions (the filled part is checkpointed)",
                             low=1)
    freeze_episodes: int = param(200, "fine-tuning: the policy is frozen for the first online episodes, only the "
                                 "Q/value functions learn (OHIO App. B.5.2: 200)", low=0)
    mix_start: float = param(0.5, "fine-tuning: fraction of each batch drawn from the offline dataset at the "
                             "first online episode (OHIO App. B.5.2: 0.5)", low=0.0, high=1.0)
    mix_episodes: int = param(3000, "fine-tuning: online episodes over which the offline fraction decays "
                              "linearly to 0 (OHIO App. B.5.2: 3000)", low=1)

    def validate(self) -> None:
        super().validate()
        if self.goals == "observed" and self.formulation == "e2e":
            raise ConfigError("goals", "'observed' (the Observed State baseline) sets goals, which end-to-end "
                              "learners do not have; use formulation=ohio or goals=inverse")


@dataclass
class SACConfig(OHIOConfig):
    """Online SAC (Haarnoja et al. 2018; OHIO B.5.3, Table 12), optionally fine-tuning a pre-trained run."""

    finetune_from: str = param("", "run directory (or checkpoint file) of an OHIO learner to start from: its "
                               "policy and, when it has them, Q-functions are loaded, then OHIO App. B.5.2's "
                               "protocol runs (frozen policy, offline/online batch mixing from 'dataset')")


@dataclass
class OfflineConfig(OHIOConfig):
    """Shared by the offline learners: ``train.steps`` counts gradient steps on the dataset."""

    offline_steps: int = param(0, "gradient steps on the dataset before online fine-tuning (OHIO App. B.5.2) "
                               "starts; 0: offline only (every train.step is an offline gradient step)", low=0)


@dataclass
class BCConfig(OfflineConfig):
    """Behaviour cloning: maximum likelihood of the data's (inverted) actions."""

    actor_lr: float = param(1e-3, "policy learning rate (Table 12's 1e-3; BC is supervised)", low=0.0,
                            low_open=True)


@dataclass
class IQLConfig(OfflineConfig):
    """Implicit Q-learning (Kostrikov et al. 2021) with OHIO B.5.3's values."""

    actor_lr: float = param(1e-4, "policy learning rate (OHIO B.5.3: 1e-4)", low=0.0, low_open=True)
    critic_lr: float = param(3e-4, "Q and V learning rate (OHIO B.5.3: 3e-4)", low=0.0, low_open=True)
    expectile: float = param(0.9, "expectile tau of the value loss (OHIO B.5.3: 0.9)", low=0.0, high=1.0,
                             low_open=True, high_open=True)
    temperature: float = param(3.0, "inverse temperature beta of the advantage weights (OHIO B.5.3: 3)", low=0.0)
    max_weight: float = param(100.0, "clip of the advantage weights exp(beta A) (IQL's code: 100)", low=0.0,
                              low_open=True)


@dataclass
class CQLConfig(OfflineConfig):
    """Conservative Q-learning, CQL(H) (Kumar et al. 2020) on SAC, with OHIO B.5.3's values."""

    actor_lr: float = param(1e-4, "policy learning rate (OHIO B.5.3: 1e-4)", low=0.0, low_open=True)
    critic_lr: float = param(3e-4, "critic learning rate (OHIO B.5.3: 3e-4)", low=0.0, low_open=True)
    cql_alpha: float = param(1.0, "trade-off factor alpha of the CQL(H) penalty (OHIO B.5.3: 1)", low=0.0)
    cql_n_actions: int = param(10, "sampled actions per state and kind (uniform, pi(.|s), pi(.|s')) in the "
                               "log-sum-exp (CQL's code: 10)", low=1)
    cql_temperature: float = param(1.0, "temperature of the log-sum-exp (CQL's code: 1)", low=0.0, low_open=True)
    lagrange: bool = param(False, "tune alpha' by dual gradient descent so that the penalty stays near "
                           "target_action_gap (CQL's Lagrange version)")
    target_action_gap: float = param(5.0, "threshold tau of the Lagrange version (CQL's code: 5 or 10)")
    alpha_prime_init: float = param(1.0, "initial alpha' of the Lagrange version", low=0.0, low_open=True)


@dataclass
class CalQLConfig(CQLConfig):
    """Calibrated Q-learning (Nakamoto et al. 2023): CQL whose penalty is bounded by Monte-Carlo returns."""


__all__ = ["FALLBACK_DEFAULTS", "FAMILY_DEFAULTS", "BCConfig", "CQLConfig", "CalQLConfig", "IQLConfig",
           "OHIOConfig", "OfflineConfig", "SACConfig"]
