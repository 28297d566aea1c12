"""Value-decomposition mixers: Q_tot from per-agent utilities Q_i (VDN, QMIX, QPLEX).

Every mixer has the same call: ``mixer(qs, state, actions_onehot, max_qs) -> q_tot`` with
``qs [..., N]`` the agents' Q-values of the chosen actions, ``state [..., S]`` the global state,
``actions_onehot [..., N, A]`` the joint action and ``max_qs [..., N]`` the agents' greedy values
max_a Q_i (QPLEX's advantages need them). Leading dimensions are free (time-major ``[T, B]`` in the
learners). Mixers that do not use an input ignore it.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from hieralloc.nn.sharing import GroupLinear


class Mixer(nn.Module, abc.ABC):
    """Interface of a mixer (see the module docstring)."""

    #: whether the mixer reads the global state (the learner then stores it in the replay buffer)
    needs_state = False

    @abc.abstractmethod
    def forward(self, qs: torch.Tensor, state: torch.Tensor | None = None,
                actions_onehot: torch.Tensor | None = None, max_qs: torch.Tensor | None = None) -> torch.Tensor:
        """Q_tot from the agents' utilities (see the module docstring for the inputs)."""


class VDNMixer(Mixer):
    """VDN (Sunehag et al. 2018, Eq. (1)): Q_tot(tau, a) = sum_i Q_i(tau_i, a_i)."""

    def forward(self, qs: torch.Tensor, state: torch.Tensor | None = None,
                actions_onehot: torch.Tensor | None = None, max_qs: torch.Tensor | None = None) -> torch.Tensor:
        return qs.sum(-1)


def _hypernet(in_dim: int, out_dim: int, layers: int, embed: int) -> nn.Module:
    if layers == 1:
        return nn.Linear(in_dim, out_dim)
    if layers == 2:
        return nn.Sequential(nn.Linear(in_dim, embed), nn.ReLU(), nn.Linear(embed, out_dim))
    raise ValueError(f"hypernet_layers must be 1 or 2, got {layers}")


class QMixer(Mixer):
    """QMIX mixing network (Rashid et al. 2018, Sec. 4 and Fig. 2).

    A two-layer network mixes the agents' Q-values; its weights and biases are produced by
    hypernetworks of the global state s::

        W1 = |hyper_w1(s)|  [N x E],   b1 = hyper_b1(s)  [E]
        W2 = |hyper_w2(s)|  [E x 1],   b2 = V(s) = Linear-ReLU-Linear(s)
        Q_tot = W2^T elu(W1^T Q + b1) + b2

    The absolute values make every weight non-negative, so dQ_tot / dQ_i >= 0 (Eq. (5), the
    monotonicity constraint that makes argmax_a Q_tot the tuple of the agents' argmaxes).
    ``hypernet_layers`` 1 or 2 and the widths follow PyMARL/EPyMARL (embed 32, hypernet 64).
    """

    needs_state = True

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_layers: int = 2,
                 hypernet_embed: int = 64) -> None:
        super().__init__()
        self.n_agents, self.state_dim, self.embed_dim = n_agents, state_dim, embed_dim
        self.hyper_w1 = _hypernet(state_dim, embed_dim * n_agents, hypernet_layers, hypernet_embed)
        self.hyper_w2 = _hypernet(state_dim, embed_dim, hypernet_layers, hypernet_embed)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.V = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, qs: torch.Tensor, state: torch.Tensor | None = None,
                actions_onehot: torch.Tensor | None = None, max_qs: torch.Tensor | None = None) -> torch.Tensor:
        if state is None:
            raise ValueError("QMIX needs the global state")
        lead = qs.shape[:-1]
        s = state.reshape(-1, self.state_dim)
        q = qs.reshape(-1, 1, self.n_agents)
        w1 = torch.abs(self.hyper_w1(s)).view(-1, self.n_agents, self.embed_dim)  # QMIX Eq. (5): W >= 0
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)
        hidden = nn.functional.elu(torch.bmm(q, w1) + b1)
        w2 = torch.abs(self.hyper_w2(s)).view(-1, self.embed_dim, 1)
        b2 = self.V(s).view(-1, 1, 1)
        return (torch.bmm(hidden, w2) + b2).reshape(lead)


class _Heads(nn.Module):
    """K independent MLPs (``layers`` linear layers, ReLU between): ``[M, in] -> [M, K, out]``.

    QPLEX's attention heads are separate networks. Their first layers read the same input, so they
    are one ``nn.Linear`` with K blocks of outputs (the same maps as K separate layers, one product);
    deeper layers are batched per head (:class:`~hieralloc.nn.sharing.GroupLinear`).
    """

    def __init__(self, in_dim: int, out_dim: int, layers: int, embed: int, heads: int) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"adv_hypernet_layers must be >= 1, got {layers}")
        dims = [embed] * (layers - 1) + [out_dim]
        self.heads = heads
        self.d1 = dims[0]
        self.first = nn.Linear(in_dim, heads * dims[0])
        self.rest = nn.ModuleList(GroupLinear(heads, a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.first(x).view(x.shape[0], self.heads, self.d1)
        if not len(self.rest):
            return z
        z = z.transpose(0, 1)  # [K, M, d1]
        for layer in self.rest:
            z = layer(torch.relu(z))
        return z.transpose(0, 1)


class QPLEXMixer(Mixer):
    """QPLEX duplex dueling mixer (Wang et al. 2021, Sec. 4, Eqs. (9)-(11); reference code ``DMAQer``).

    Transformation (Eq. (9)), with positive weights w_i(s) > 0 and biases b_i(s)::

        Q_i(s, a_i) = w_i(s) Q_i(tau_i, a_i) + b_i(s),   V_i(s) = w_i(s) max_a Q_i(tau_i, a) + b_i(s)
        A_i(s, a_i) = Q_i(s, a_i) - V_i(s) <= 0

    Dueling mixing (Eqs. (10)-(11)): V_tot = sum_i V_i, A_tot = sum_i lambda_i(s, a) A_i with
    lambda_i > 0 from multi-head attention over the state and the joint action,
    lambda_i(s, a) = sum_k |key_k(s)| sigmoid(agent_k(s))_i sigmoid(action_k(s, a))_i. Hence::

        Q_tot = V_tot + A_tot = sum_i Q_i(s, a_i) + sum_i (lambda_i - 1) A_i(s, a_i)

    and because A_i <= 0 with equality exactly at each agent's greedy action, argmax Q_tot is the
    tuple of the agents' argmaxes (the IGM principle, Definition 1). As in the reference code
    (``is_minus_one``, ``is_stop_gradient``) the advantages inside A_tot are not differentiated
    (``stop_gradient``): only lambda learns through that term.
    """

    needs_state = True

    def __init__(self, n_agents: int, n_actions: int, state_dim: int, hypernet_embed: int = 64,
                 adv_hypernet_layers: int = 1, adv_hypernet_embed: int = 64, num_kernel: int = 4,
                 stop_gradient: bool = True) -> None:
        super().__init__()
        self.n_agents, self.n_actions, self.state_dim = n_agents, n_actions, state_dim
        self.num_kernel = num_kernel
        self.stop_gradient = stop_gradient
        self.hyper_w = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                     nn.Linear(hypernet_embed, n_agents))
        self.hyper_b = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                     nn.Linear(hypernet_embed, n_agents))
        sa_dim = state_dim + n_agents * n_actions
        # K attention heads, each with its own key / agent / action extractor (reference DMAQ_SI_Weight)
        self.key = _Heads(state_dim, 1, adv_hypernet_layers, adv_hypernet_embed, num_kernel)
        self.agents = _Heads(state_dim, n_agents, adv_hypernet_layers, adv_hypernet_embed, num_kernel)
        self.action = _Heads(sa_dim, n_agents, adv_hypernet_layers, adv_hypernet_embed, num_kernel)

    def lambdas(self, state: torch.Tensor, actions_onehot: torch.Tensor) -> torch.Tensor:
        """lambda_i(s, a) > 0, QPLEX Eq. (11): ``[M, S], [M, N * A] -> [M, N]``."""
        key = torch.abs(self.key(state)) + 1e-10  # [M, K, 1]
        ag = torch.sigmoid(self.agents(state))  # [M, K, N]
        ac = torch.sigmoid(self.action(torch.cat([state, actions_onehot], dim=-1)))  # [M, K, N]
        return (key * ag * ac).sum(1)

    def forward(self, qs: torch.Tensor, state: torch.Tensor | None = None,
                actions_onehot: torch.Tensor | None = None, max_qs: torch.Tensor | None = None) -> torch.Tensor:
        if state is None or actions_onehot is None or max_qs is None:
            raise ValueError("QPLEX needs the global state, the joint action and the greedy values")
        lead = qs.shape[:-1]
        N = self.n_agents
        s = state.reshape(-1, self.state_dim)
        q = qs.reshape(-1, N)
        qmax = max_qs.reshape(-1, N)
        w = torch.abs(self.hyper_w(s)) + 1e-10  # Eq. (9): w_i(s) > 0
        b = self.hyper_b(s)
        q_t = w * q + b
        v_t = w * qmax + b
        adv = q_t - v_t  # A_i(s, a_i) <= 0
        if self.stop_gradient:
            adv = adv.detach()
        lam = self.lambdas(s, actions_onehot.reshape(-1, N * self.n_actions))
        q_tot = q_t.sum(-1) + ((lam - 1.0) * adv).sum(-1)  # Eq. (10) with V_tot + A_tot
        return q_tot.reshape(lead)


__all__ = ["Mixer", "QMixer", "QPLEXMixer", "VDNMixer"]
