"""The LPMARL assignment layer (Eq. (4)-(7) solved per batch element; blackbox gradients of
Eq. (10)-(12), (16); perturbed option), checked against brute force, the HiGHS LP path and the
solver layer's tested differentiation rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hieralloc.errors import HierallocError
from hieralloc.lpmarl import (
    AssignmentProblem,
    LPAssignment,
    assigned_tasks,
    assignment_probs,
    lp_assign,
    sample_assignment,
)
from hieralloc.solvers import InfeasibleError, MalformedProblemError, assign_capacitated, blackbox, perturbed

torch.set_num_threads(1)


def brute_force(S, cap, forbidden=None, alive=None):
    """Best objective and every optimal Z over all M^n assignments of the alive agents."""
    N, M = S.shape
    rows = list(range(N)) if alive is None else [i for i in range(N) if alive[i]]
    best, sols = -np.inf, []
    for tasks in itertools.product(range(M), repeat=len(rows)):
        if np.any(np.bincount(tasks, minlength=M) > cap):
            continue
        if forbidden is not None and any(forbidden[i, j] for i, j in zip(rows, tasks, strict=True)):
            continue
        Z = np.zeros((N, M))
        Z[rows, list(tasks)] = 1.0
        v = float((S * Z).sum())
        if v > best + 1e-9:
            best, sols = v, [Z]
        elif abs(v - best) <= 1e-9:
            sols.append(Z)
    return best, sols


def random_case(rng, N, M):
    S = rng.normal(size=(N, M))
    cap = rng.multinomial(N, np.ones(M) / M) + rng.integers(0, 2, M)  # sum >= N, often binding
    return S, cap


@pytest.mark.parametrize("method", ["fast", "lp"])
@pytest.mark.parametrize("seed", range(6))
def test_optimal_and_feasible_against_brute_force(method, seed):
    rng = np.random.default_rng(seed)
    B, N, M = 4, int(rng.integers(2, 7)), int(rng.integers(1, 4))
    cases = [random_case(rng, N, M) for _ in range(B)]
    S = np.stack([c[0] for c in cases])
    cap = np.stack([c[1] for c in cases])
    Z = lp_assign(torch.tensor(S), cap, method=method).numpy()
    for b in range(B):
        best, sols = brute_force(S[b], cap[b])
        assert set(np.unique(Z[b])) <= {0.0, 1.0}
        assert (Z[b].sum(axis=1) == 1).all() and (Z[b].sum(axis=0) <= cap[b]).all()  # Eq. (5)-(6)
        assert (S[b] * Z[b]).sum() == pytest.approx(best, abs=1e-9)                  # Eq. (4)
        assert any(np.array_equal(Z[b], s) for s in sols)


@pytest.mark.parametrize("method", ["fast", "lp"])
def test_masks_and_forbidden_against_brute_force(method):
    rng = np.random.default_rng(11)
    B, N, M = 5, 5, 3
    S = rng.normal(size=(B, N, M))
    cap = np.tile([2, 2, 2], (B, 1))
    forbidden = rng.random((B, N, M)) < 0.3
    forbidden[:, :, 0] = False  # every agent keeps a task
    agent_mask = rng.random((B, N)) < 0.8
    task_mask = np.ones((B, M), dtype=bool)
    task_mask[1, 2] = False  # a dead task: capacity 0
    cap[1] = [3, 3, 2]
    Z = lp_assign(torch.tensor(S), cap, forbidden=forbidden, agent_mask=agent_mask, task_mask=task_mask,
                  method=method).numpy()
    for b in range(B):
        eff_cap = np.where(task_mask[b], cap[b], 0)
        best, sols = brute_force(S[b], eff_cap, forbidden[b], agent_mask[b])
        assert any(np.array_equal(Z[b], s) for s in sols), b
        assert (Z[b][~agent_mask[b]] == 0).all() and (Z[b][forbidden[b]] == 0).all()
    assert (Z[1, :, 2] == 0).all()
    tasks = assigned_tasks(torch.tensor(Z))
    assert (tasks[torch.tensor(~agent_mask)] == -1).all() and (tasks[torch.tensor(agent_mask)] >= 0).all()


def test_fast_path_matches_highs_lp_and_solver_layer():
    rng = np.random.default_rng(3)
    B, N, M = 8, 20, 10
    S = rng.normal(size=(B, N, M))
    cap = rng.integers(1, 5, size=(B, M))
    cap[:, 0] += N  # feasible
    fast = lp_assign(torch.tensor(S), cap).numpy()
    lp = lp_assign(torch.tensor(S), cap, method="lp").numpy()
    for b in range(B):
        ref = assign_capacitated(S[b], cap[b], method="lp")
        assert (S[b] * fast[b]).sum() == pytest.approx(ref.objective, abs=1e-9)
        assert (S[b] * lp[b]).sum() == pytest.approx(ref.objective, abs=1e-9)
        assert np.array_equal(fast[b], lp[b])  # continuous random scores: the optimum is unique


def test_dtype_unbatched_and_module():
    rng = np.random.default_rng(4)
    S32 = torch.tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    Z = lp_assign(S32, [2, 2, 2])
    assert Z.shape == (6, 3) and Z.dtype == torch.float32
    layer = LPAssignment(lam=3.0)
    assert torch.equal(layer(S32, np.array([2, 2, 2])), Z)
    assert "lam=3" in repr(layer)
    Z64 = lp_assign(S32.double().unsqueeze(0), 2)
    assert Z64.dtype == torch.float64 and torch.equal(Z64[0].float(), Z)


def test_cached_problem_is_not_stale_after_in_place_edit():
    S = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    cap = np.array([3, 3])
    assert lp_assign(S, cap)[:, 0].sum() == 3
    cap[0] = 1  # the caller edits its array in place: the next call must see it
    assert lp_assign(S, cap)[:, 0].sum() == 1
    assert AssignmentProblem.cached(1, 3, 2, cap) is AssignmentProblem.cached(1, 3, 2, np.array([1, 3]))


# --------------------------------------------------------------------------------------------
# gradients


def interpolated_max_loss(value, C, g, lam):
    """Vlastelica's f_lambda for L = <g, Z> with a maximising solver: (phi(C) - phi(C - lam g)) / lam,
    phi(C) = max_Z <C, Z> (per problem, summed over the batch)."""
    return (value(C) - value(C - lam * g)) / lam


@pytest.mark.parametrize("method", ["fast", "lp"])
@pytest.mark.parametrize("lam", [0.5, 5.0])
def test_blackbox_gradient_is_finite_difference_of_interpolation(method, lam):
    rng = np.random.default_rng(7)
    B, N, M = 3, 5, 3
    cap = np.array([2, 2, 2])
    C = rng.normal(size=(B, N, M))
    g = rng.normal(size=(B, N, M))

    def value(X):
        return sum(assign_capacitated(X[b], cap).objective for b in range(B))

    w = torch.tensor(C, requires_grad=True)
    (torch.tensor(g) * lp_assign(w, cap, lam=lam, method=method)).sum().backward()
    h = 1e-6
    fd = np.zeros_like(C)
    for k in np.ndindex(C.shape):
        e = np.zeros_like(C)
        e[k] = h
        fd[k] = (interpolated_max_loss(value, C + e, g, lam) - interpolated_max_loss(value, C - e, g, lam)) / (2 * h)
    assert np.allclose(w.grad.numpy(), fd, atol=1e-5)


@pytest.mark.parametrize("method", ["fast", "lp"])
def test_blackbox_equals_solver_layer_rule_and_lpmarl_sign(method):
    """Same gradients as solvers.differentiable.blackbox (sense='max') per element, and LPMARL's
    Eq. (12)/(16): J = <a, Z>, C' = C + lam a, dJ/dC = (Z_lam - Z) / lam."""
    rng = np.random.default_rng(8)
    B, N, M, lam = 4, 8, 4, 2.0
    cap = rng.integers(1, 4, size=(B, M))
    cap[:, 0] += N
    C = torch.tensor(rng.normal(size=(B, N, M)), dtype=torch.float32, requires_grad=True)
    a = torch.tensor(rng.normal(size=(B, N, M)), dtype=torch.float32)
    a[2] = 0.0  # zero upstream gradient: zero gradient
    (-(a * lp_assign(C, cap, lam=lam, method=method)).sum()).backward()  # L = -J_h
    for b in range(B):
        def solve(x, b=b):
            return assign_capacitated(x, cap[b]).x
        wb = C.detach()[b].clone().requires_grad_(True)
        (-(a[b] * blackbox(wb, solve, lam=lam, sense="max")).sum()).backward()
        assert torch.allclose(C.grad[b], wb.grad, atol=1e-6)
        c = C.detach()[b].double().numpy()
        dJ_dC = (solve(c + lam * a[b].double().numpy()) - solve(c)) / lam  # LPMARL Eq. (12), (16)
        assert np.allclose(-C.grad[b].double().numpy(), dJ_dC, atol=1e-6)
    assert (C.grad[2] == 0).all()


def test_gradient_steps_make_target_assignment_optimal():
    """Learning: Hamming loss through the layer moves the costs until the target is the LP optimum
    (capacities binding, so the target is not the row-wise argmax)."""
    rng = np.random.default_rng(5)
    N, M = 8, 4
    cap = np.array([2, 2, 2, 2])
    target = torch.tensor(assign_capacitated(rng.normal(size=(N, M)), cap).x)
    theta = torch.tensor(rng.normal(size=(1, N, M)), requires_grad=True)
    assert not torch.equal(lp_assign(theta.detach(), cap)[0], target)
    opt = torch.optim.Adam([theta], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        Z = lp_assign(theta, cap, lam=2.0)
        if torch.equal(Z[0], target):
            break
        ((Z[0] - target) ** 2).sum().backward()
        opt.step()
    assert torch.equal(lp_assign(theta.detach(), cap)[0], target)


def test_gnn_costs_learn_lp_distance_assignments():
    """End to end: the bipartite GNN's costs, trained through the blackbox layer, reproduce the
    LP-distance assignment (C = -D, App. F.1.3) on a fixed set of instances."""
    from hieralloc.nn.bipartite import BipartiteCostModel, pairwise_features

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    B, N, M = 8, 4, 3
    ap = torch.tensor(rng.uniform(-1, 1, (B, N, 2)), dtype=torch.float32)
    tp = torch.tensor(rng.uniform(-0.8, 0.8, (B, M, 2)), dtype=torch.float32)
    cap = np.array([2, 1, 1])
    e = pairwise_features(ap, tp)
    target = lp_assign(-e[..., -1], cap)  # LP-distance: maximise -distance
    model = BipartiteCostModel(2, 2, 3, hidden=16, mlp_units=(16,), cost_units=(32,), rounds=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for _ in range(300):
        Z = lp_assign(model(ap, tp, e).costs, cap, lam=2.0)
        wrong = int((Z != target).any(dim=-1).sum())  # agents on a different task than LP-distance
        history.append(wrong)
        if wrong == 0:
            break
        opt.zero_grad()
        ((Z - target) ** 2).sum().backward()
        opt.step()
    assert history[0] > 0 and wrong == 0


# --------------------------------------------------------------------------------------------
# perturbed option and sampling


def test_perturbed_is_a_proper_expectation():
    rng = np.random.default_rng(9)
    B, N, M = 2, 6, 3
    cap = np.array([[2, 2, 2], [4, 1, 1]])
    C = torch.tensor(rng.normal(size=(B, N, M)), requires_grad=True)
    P = assignment_probs(C, cap, sigma=0.5, n_samples=64, generator=0)
    assert torch.allclose(P.sum(-1), torch.ones(B, N, dtype=P.dtype))  # each row a distribution over tasks
    assert ((P >= 0) & (P <= 1)).all()
    assert (P.sum(1) <= torch.tensor(cap) + 1e-9).all()  # expected loads within capacity
    # B = 1: exactly solvers.differentiable.perturbed with the same noise
    P0 = lp_assign(C[:1], cap[0], mode="perturbed", sigma=0.5, n_samples=16, generator=3)
    ref = perturbed(C[:1].detach(), lambda x: np.stack([assign_capacitated(x[0], cap[0]).x]), sigma=0.5,
                    n_samples=16, generator=3)
    assert torch.allclose(P0.detach(), ref)
    (P * torch.tensor(rng.normal(size=(B, N, M)))).sum().backward()
    assert torch.isfinite(C.grad).all() and C.grad.abs().sum() > 0
    # sigma -> 0: the perturbed expectation collapses to Z*
    assert torch.equal(assignment_probs(C.detach(), cap, sigma=1e-6, n_samples=4, generator=1),
                       lp_assign(C.detach(), cap))


def test_samples_are_feasible_and_match_probabilities():
    rng = np.random.default_rng(10)
    N, M = 5, 3
    cap = np.array([2, 2, 1])
    C = torch.tensor(rng.normal(size=(N, M)) * 0.3)
    gen = np.random.default_rng(0)
    draws = torch.stack([sample_assignment(C, cap, sigma=0.5, generator=gen) for _ in range(600)])
    assert (draws.sum(-1) == 1).all() and (draws.sum(-2) <= torch.tensor(cap)).all()
    P = assignment_probs(C, cap, sigma=0.5, n_samples=600, generator=1)
    assert (draws.mean(0) - P).abs().max() < 0.08
    assert torch.equal(sample_assignment(C, cap, sigma=0.0), lp_assign(C, cap))


# --------------------------------------------------------------------------------------------
# errors


def test_bad_input_raises_named_errors():
    C = torch.zeros(1, 4, 2)
    cases = [
        (dict(costs=torch.tensor([[[0.0, float("nan")]] * 4])), MalformedProblemError, "costs\\[0, 0, 1\\] = nan"),
        (dict(capacity=[2, -1]), MalformedProblemError, "capacity\\[0, 1\\] = -1"),
        (dict(capacity=np.array([2, -1])), MalformedProblemError, "capacity\\[1\\] = -1"),
        (dict(capacity=[1.5, 3]), MalformedProblemError, "non-negative integers"),
        (dict(capacity=[1, 2]), InfeasibleError, "capacity of batch element 0 sums to 3 < 4 agents"),
        (dict(capacity=[2, 2, 2]), MalformedProblemError, "capacity has shape \\(3,\\)"),
        (dict(costs=torch.zeros(2, 1, 4, 2)), MalformedProblemError, "costs must have shape"),
        (dict(costs=np.zeros((4, 2))), MalformedProblemError, "costs must be a torch.Tensor"),
        (dict(forbidden=np.zeros((3, 2), bool)), MalformedProblemError, "forbidden has shape"),
        (dict(forbidden=np.eye(4, 2, dtype=bool) | np.eye(4, 2, -2, dtype=bool) | np.array([[0, 1]] * 4, bool)),
         InfeasibleError, "batch element 0: agent 0 has every task forbidden"),
        (dict(task_mask=[True, False]), InfeasibleError, "dead tasks count as capacity 0"),
        (dict(agent_mask=np.ones(3, bool)), MalformedProblemError, "agent_mask has shape"),
        (dict(lam=0.0), MalformedProblemError, "lam must be a positive"),
        (dict(mode="softmax"), MalformedProblemError, "mode must be one of"),
        (dict(method="cvxpy"), MalformedProblemError, "method must be one of"),
        (dict(mode="perturbed", n_samples=0), MalformedProblemError, "n_samples"),
    ]
    for kwargs, err, pattern in cases:
        args = {"costs": C, "capacity": [2, 2], **kwargs}
        with pytest.raises(err, match=pattern) as info:
            lp_assign(args.pop("costs"), args.pop("capacity"), **args)
        assert isinstance(info.value, HierallocError)
    with pytest.raises(MalformedProblemError, match="sigma"):
        sample_assignment(C, [2, 2], sigma=-1.0)
    with pytest.raises(MalformedProblemError, match="lam"):
        LPAssignment(lam=-1.0)
