"""Mixers: VDN sums, QMIX is monotonic in every agent's Q, QPLEX satisfies IGM exactly."""

from __future__ import annotations

import itertools

import torch

from hieralloc.nn.mixers import QMixer, QPLEXMixer, VDNMixer

torch.set_num_threads(1)


def test_vdn_is_the_sum() -> None:
    qs = torch.randn(4, 3, 5)
    torch.testing.assert_close(VDNMixer()(qs), qs.sum(-1))


def test_qmix_is_monotonic_in_agent_qs() -> None:
    torch.manual_seed(0)
    n, s_dim = 4, 6
    for layers in (1, 2):
        mixer = QMixer(n, s_dim, embed_dim=8, hypernet_layers=layers, hypernet_embed=16)
        qs = torch.randn(3, 50, n, requires_grad=True)
        state = torch.randn(3, 50, s_dim)
        q_tot = mixer(qs, state)
        assert q_tot.shape == (3, 50)
        (grad,) = torch.autograd.grad(q_tot.sum(), qs)
        assert (grad >= 0).all()  # QMIX Eq. (5)
        # raising any one agent's Q never lowers Q_tot
        for i in range(n):
            bumped = qs.detach().clone()
            bumped[..., i] += torch.rand(3, 50) * 3
            assert (mixer(bumped, state) >= mixer(qs.detach(), state) - 1e-6).all()
    # the same holds for a mixer whose raw hypernetwork outputs are negative
    with torch.no_grad():
        for p in mixer.parameters():
            p.copy_(-p.abs())
    qs = torch.randn(200, n, requires_grad=True)
    (grad,) = torch.autograd.grad(mixer(qs, torch.randn(200, s_dim)).sum(), qs)
    assert (grad >= 0).all()


def test_qmix_depends_on_state() -> None:
    torch.manual_seed(1)
    mixer = QMixer(2, 3)
    qs = torch.randn(10, 2)
    assert not torch.allclose(mixer(qs, torch.randn(10, 3)), mixer(qs, torch.randn(10, 3)))


def test_qplex_satisfies_igm() -> None:
    """argmax_a Q_tot(s, a) is the tuple of the agents' argmaxes (QPLEX Definition 1, Eq. (10))."""
    torch.manual_seed(2)
    n, n_act, s_dim = 3, 4, 5
    mixer = QPLEXMixer(n, n_act, s_dim, hypernet_embed=16, adv_hypernet_layers=2, adv_hypernet_embed=16,
                       num_kernel=3)
    joint = torch.tensor(list(itertools.product(range(n_act), repeat=n)))  # [A^N, N]
    for _ in range(5):
        q_all = torch.randn(n, n_act) * 2  # Q_i(tau_i, .) of each agent
        state = torch.randn(s_dim)
        qs = q_all[torch.arange(n), joint]  # [A^N, N]
        onehot = torch.nn.functional.one_hot(joint, n_act).float()
        q_tot = mixer(qs, state.expand(len(joint), s_dim), onehot, q_all.max(-1).values.expand(len(joint), n))
        best = joint[q_tot.argmax()]
        assert torch.equal(best, q_all.argmax(-1))
        # Q_tot of the greedy joint action is sum_i V_i (all advantages are zero)
        assert q_tot.max() >= q_tot.min()
    lam = mixer.lambdas(torch.randn(7, s_dim), torch.rand(7, n * n_act))
    assert lam.shape == (7, n) and (lam > 0).all()


def test_qplex_stop_gradient_only_blocks_advantages() -> None:
    torch.manual_seed(3)
    mixer = QPLEXMixer(2, 3, 4, num_kernel=2, adv_hypernet_layers=1)
    qs = torch.randn(6, 2, requires_grad=True)
    state = torch.randn(6, 4)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (6, 2)), 3).float()
    qmax = qs.detach() + torch.rand(6, 2)
    (g_stop,) = torch.autograd.grad(mixer(qs, state, onehot, qmax).sum(), qs)
    mixer.stop_gradient = False
    (g_full,) = torch.autograd.grad(mixer(qs, state, onehot, qmax).sum(), qs)
    w = torch.abs(mixer.hyper_w(state)) + 1e-10
    torch.testing.assert_close(g_stop, w)  # d(sum_i w_i Q_i + b_i)/dQ_i
    assert not torch.allclose(g_full, g_stop)
