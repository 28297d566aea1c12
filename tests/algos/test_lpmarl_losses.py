"""LPMARL objectives against hand computations: the tau-step high-level target (Eq. (13)-(14)), the
per-group VDN sum (Eq. (17)-(18)), the w schedule (Sec. 4), the gradient through the LP (Eq. (15)-(16)),
the low-level policy gradient (Eq. (19)), behaviour cloning (Eq. (20)); graph packing and the replay ring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hieralloc.algos.lpmarl.buffer import EpisodeRing
from hieralloc.algos.lpmarl.graph import TaskGraph, graph_width, pack_graph, unpack_graph
from hieralloc.algos.lpmarl.losses import (
    agent_targets,
    bc_loss,
    group_vdn_loss,
    high_actor_loss,
    high_critic_loss,
    high_critic_target,
    independent_max,
    interval_returns,
    joint_loss,
    lambda_returns,
    level_weight,
    low_actor_loss,
)
from hieralloc.algos.value.targets import lambda_targets
from hieralloc.lpmarl.assign import assigned_tasks, lp_assign

torch.set_num_threads(1)


def test_interval_returns_and_tau_step_target_by_hand() -> None:
    # decisions at t = 0 (tau = 2), t = 2 and t = 3 (an event cut the interval short), episode of 6 steps
    r = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    g = 0.9
    R, disc = interval_returns(r, [0, 2, 3], g)
    assert np.allclose(R, [0.0 + g * 0.0, 1.0, 0.0 + g * 1.0 + g**2 * 1.0])
    assert np.allclose(disc, [g**2, g**1, g**3])
    # Eq. (14): y_k = R_k + gamma^tau (1 - done) V(s_{k+1}); the last decision is terminal
    v_next = torch.tensor([2.0, -1.0, 5.0], dtype=torch.float64)
    done = torch.tensor([False, False, True])
    y = high_critic_target(torch.from_numpy(R), torch.from_numpy(disc), done, v_next)
    assert torch.allclose(y, torch.tensor([0.81 * 2.0, 1.0 - 0.9, 1.71], dtype=torch.float64))
    # TD(lambda) over the decisions with lambda = 0 is exactly Eq. (14)
    tm = lambda_returns(torch.from_numpy(R)[:, None], torch.from_numpy(disc)[:, None], done[:, None],
                        torch.ones(3, 1, dtype=torch.bool), v_next[:, None], 0.0)[:, 0]
    assert torch.allclose(tm, y)
    # and lambda = 1 bootstraps through the next decision's return
    t1 = lambda_returns(torch.from_numpy(R)[:, None], torch.from_numpy(disc)[:, None], done[:, None],
                        torch.ones(3, 1, dtype=torch.bool), v_next[:, None], 1.0)[:, 0]
    assert t1[1].item() == pytest.approx(1.0 + 0.9 * 1.71)
    assert torch.allclose(t1[0], 0.81 * t1[1])


def test_lambda_returns_generalise_the_value_family_targets() -> None:
    gen = torch.Generator().manual_seed(0)
    r, v = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen)
    done = torch.zeros(7, 3, dtype=torch.bool)
    done[6] = True
    valid = torch.ones(7, 3, dtype=torch.bool)
    valid[5:, 1] = False
    ours = lambda_returns(r, torch.full((7, 3), 0.95), done, valid, v, 0.7)
    assert torch.allclose(ours, lambda_targets(r, done, valid, v, 0.95, 0.7))


def test_high_critic_sums_over_living_agents_and_independent_max() -> None:
    q = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    tasks = torch.tensor([[1, 0, -1]])
    alive = torch.tensor([[True, True, False]])
    loss, q_tot = high_critic_loss(q, tasks, alive, torch.tensor([4.0]))
    assert q_tot.item() == 2.0 + 3.0 and loss.item() == pytest.approx(1.0)
    allowed = torch.tensor([[[True, False], [True, True], [False, False]]])
    assert independent_max(q, allowed).item() == 1.0 + 4.0


def test_group_vdn_sum_by_hand() -> None:
    # agents 0, 1 in group 0, agent 2 in group 1, agent 3 dead
    q_taken = torch.tensor([[1.0, 2.0, 3.0, 7.0]])
    reward = torch.tensor([[0.5, 0.5, 1.0, 9.0]])
    next_max = torch.tensor([[1.0, 2.0, 10.0, 9.0]])
    next_alive = torch.tensor([[True, True, False, False]])  # agent 2 died in the step: no bootstrap
    done = torch.tensor([False])
    tasks = torch.tensor([[0, 0, 1, -1]])
    alive = torch.tensor([[True, True, True, False]])
    g = 0.9
    y_i = agent_targets(reward[None], next_max[None], next_alive[None], done[None], alive[None], g, 0.0)[0]
    assert torch.allclose(y_i[0, :3], torch.tensor([0.5 + g * 1.0, 0.5 + g * 2.0, 1.0]))
    out = group_vdn_loss(q_taken, y_i, tasks, alive, 2)
    # Eq. (18): y_0 = r_0 + r_1 + gamma (1 + 2) = 1 + 2.7; y_1 = 1; Eq. (17): (3 - 3.7)^2, (3 - 1)^2
    assert out["loss"].item() == pytest.approx(((3.0 - 3.7) ** 2 + (3.0 - 1.0) ** 2) / 2)
    assert out["q_group"].item() == pytest.approx(3.0)
    # an empty group contributes nothing
    out3 = group_vdn_loss(q_taken, y_i, tasks, alive, 3)
    assert out3["loss"].item() == pytest.approx(out["loss"].item())


def test_w_schedule_and_joint_objective() -> None:
    assert level_weight(0, 0.9, 0.1, 1000) == pytest.approx(0.9)
    assert level_weight(500, 0.9, 0.1, 1000) == pytest.approx(0.5)
    assert level_weight(1000, 0.9, 0.1, 1000) == pytest.approx(0.1)
    assert level_weight(10**9, 0.9, 0.1, 1000) == pytest.approx(0.1)
    low, high = torch.tensor(2.0), torch.tensor(-4.0)
    assert joint_loss(0.25, low, high).item() == pytest.approx(0.25 * 2.0 + 0.75 * -4.0)
    assert joint_loss(0.25, low, None).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        joint_loss(0.5, None, None)


def test_high_policy_gradient_through_the_lp_moves_the_costs_to_the_critics_assignment() -> None:
    # Eq. (15)-(16): C starts preferring the identity assignment; the critic prefers the swap
    C = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], requires_grad=True)
    Q = torch.tensor([[[0.0, 3.0], [3.0, 0.0]]])
    alive = torch.ones(1, 2, dtype=torch.bool)
    cap = np.ones((1, 2), dtype=np.int64)
    z = lp_assign(C, cap, lam=1.0)
    assert assigned_tasks(z).tolist() == [[0, 1]]
    high_actor_loss(z, Q, alive).backward()
    assert C.grad is not None
    # Z_lam = Z*(C + lam Q) is the swap: dL/dC = (Z* - Z_lam) / lam
    assert torch.allclose(C.grad, torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]]))
    with torch.no_grad():
        z2 = lp_assign(C - 1.0 * C.grad, cap)
    assert assigned_tasks(z2).tolist() == [[1, 0]]


def test_low_policy_gradient_raises_the_probability_of_the_best_action() -> None:
    logits = torch.zeros(4, 1, 3, requires_grad=True)
    q = torch.tensor([1.0, 5.0, 2.0]).expand(4, 1, 3)
    avail = torch.tensor([True, True, False]).expand(4, 1, 3)
    alive = torch.ones(4, 1, dtype=torch.bool)
    out = low_actor_loss(logits, avail, q, alive, 0.0)
    out["loss"].backward()
    assert logits.grad is not None
    assert (logits.grad[..., 1] < 0).all() and (logits.grad[..., 0] > 0).all()
    assert (logits.grad[..., 2] == 0).all()  # an unavailable action takes no gradient
    assert out["entropy"].item() == pytest.approx(np.log(2.0))


def test_bc_loss_and_accuracy_count_unreachable_expert_tasks_as_misses() -> None:
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]])
    allowed = torch.tensor([[[True, True, False], [True, True, True], [True, True, False]]])
    teacher = torch.tensor([[0, 1, 2]])  # agent 2's expert task lies outside its choice set
    alive = torch.ones(1, 3, dtype=torch.bool)
    out = bc_loss(logits, allowed, teacher, alive)
    assert out["accuracy"].item() == pytest.approx(2 / 3)
    lp0 = torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    lp1 = torch.log_softmax(torch.tensor([0.0, 3.0, 0.0]), 0)[1]
    assert out["loss"].item() == pytest.approx(-(lp0 + lp1).item() / 2, rel=1e-6)


def _graph(n: int, m: int, rng: np.random.Generator) -> TaskGraph:
    return TaskGraph(rng.normal(size=(n, 5)), rng.normal(size=(m, 4)), rng.random(n) > 0.3, rng.random(m) > 0.3,
                     rng.integers(0, 4, m), rng.random((n, m)) > 0.5,
                     (rng.random((n, n)) > 0.5) & ~np.eye(n, dtype=bool))


@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 3), (8, 6), (20, 20)])
def test_pack_unpack_round_trip(n: int, m: int) -> None:
    g = _graph(n, m, np.random.default_rng(n * 31 + m))
    x = pack_graph(g)
    assert x.shape == (n, graph_width(n, m, 5, 4)) and x.dtype == np.float32
    b = unpack_graph(torch.from_numpy(np.stack([x, x])), m, 5, 4)
    assert torch.allclose(b.agent_x[1], torch.from_numpy(g.agent_x).float())
    assert torch.allclose(b.task_x[0], torch.from_numpy(g.task_x).float())
    assert b.agent_alive[0].numpy().tolist() == g.agent_alive.tolist()
    assert b.task_alive[1].numpy().tolist() == g.task_alive.tolist()
    assert b.capacity[0].numpy().tolist() == g.capacity.tolist()
    assert (b.visible[0].numpy() == g.visible).all() and (b.agent_visible[1].numpy() == g.agent_visible).all()
    with pytest.raises(ValueError, match="width"):
        unpack_graph(torch.from_numpy(x), m + 1, 5, 4)


def test_episode_ring_wraps_grows_and_round_trips(tmp_path: object) -> None:
    ring = EpisodeRing(3, plus_one=("x",))
    for e, L in enumerate([2, 4, 3, 5]):
        ring.insert(L, {"x": np.full((L + 1, 2), e, dtype=np.float32), "r": np.arange(L, dtype=np.float32) + e})
    assert ring.size == 3 and ring.pos == 1  # episode 3 overwrote episode 0
    out = ring.gather(torch.tensor([0, 1]))
    assert out["length"].tolist() == [5, 4] and out["x"].shape == (2, 6, 2)
    assert out["mask"].sum().item() == 9 and out["x"][0, 5, 0].item() == 3.0
    state = ring.state_dict()
    again = EpisodeRing(3, plus_one=("x",))
    again.load_state_dict(state)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    a, b = ring.gather(ring.sample_indices(2, rng_a)), again.gather(again.sample_indices(2, rng_b))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="rows"):
        ring.insert(2, {"x": np.zeros((2, 2), dtype=np.float32), "r": np.zeros(2, dtype=np.float32)})
