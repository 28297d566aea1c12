"""Inventory LP (OHIO Eq. (33a-g)) and the supply-chain planning LP of the MPC baselines, against
independent scipy.optimize.linprog formulations on random instances; typed errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from hieralloc.solvers import (
    InfeasibleError,
    InventoryModel,
    InventoryPlanModel,
    MalformedProblemError,
)


def linprog_inventory(edges, cs, cw, cp, qh, wh, q, n, p):
    """Eq. (33) with |eps| as two inequalities per row (eps >= +-(value - target)), an independent layout."""
    E, S, W = len(edges), len(cs), len(cw)
    # variables: f (E), w (W), t_f (S), t_w (W); minimise sum t
    nv = E + W + S + W
    c = np.concatenate([np.zeros(E + W), np.ones(S + W)])
    A, b = [], []
    for i in range(S):
        row = np.zeros(nv)
        for k, (_, s) in enumerate(edges):
            if s == i:
                row[k] = 1.0
        up, dn = row.copy(), -row.copy()
        up[E + W + i] = dn[E + W + i] = -1.0
        A += [up, dn]
        b += [qh[i], -qh[i]]
        A.append(row)
        b.append(cs[i] - n[i])                                   # (33c)
    for j in range(W):
        out = np.zeros(nv)
        for k, (wj, _) in enumerate(edges):
            if wj == j:
                out[k] = 1.0
        A.append(out)
        b.append(q[j])                                           # (33d)
        row = -out.copy()
        row[E + j] = 1.0
        A.append(row)
        b.append(cw[j] - q[j] - p[j])                            # (33e)
        up = np.zeros(nv)
        up[E + j], up[E + W + S + j] = 1.0, -1.0
        dn = -up.copy()
        dn[E + W + S + j] = -1.0
        A += [up, dn]
        b += [wh[j], -wh[j]]                                     # (33f)
    bounds = [(0, None)] * E + [(0, cp[j]) for j in range(W)] + [(0, None)] * (S + W)
    return linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")


def random_network(rng):
    W = int(rng.integers(1, 3))
    S = int(rng.integers(1, 6))
    edges = [(int(rng.integers(W)), i) for i in range(S)]  # every store has an incoming edge
    for i in range(S):
        for j in range(W):
            if (j, i) not in edges and rng.random() < 0.4:
                edges.append((j, i))
    cs = rng.integers(5, 20, S)
    cw = rng.integers(10, 60, W)
    cp = rng.integers(0, 30, W)
    return edges, cs, cw, cp


def test_inventory_lp_matches_linprog_on_random_instances():
    rng = np.random.default_rng(0)
    for _ in range(60):
        edges, cs, cw, cp = random_network(rng)
        S, W = len(cs), len(cw)
        model = InventoryModel(edges, cs, cw, cp)
        for _ in range(3):
            q = rng.integers(0, cw + 1)
            p = rng.integers(0, np.maximum(cw - q, 0) + 1)
            n = rng.integers(-10, cs + 1)
            qh = rng.integers(0, 25, S)
            wh = rng.integers(0, 35, W)
            r = model.solve(qh, wh, q, n, p)
            ref = linprog_inventory(edges, cs, cw, cp, qh, wh, q, n, p)
            assert ref.status == 0
            assert r.objective == pytest.approx(ref.fun, abs=1e-7)
            f, w = r.flows, r.production
            assert np.array_equal(f, np.round(f)) and np.array_equal(w, np.round(w))   # TU: integral
            E = np.asarray(edges)
            inflow = np.bincount(E[:, 1], weights=f, minlength=S)
            out = np.bincount(E[:, 0], weights=f, minlength=W)
            assert np.allclose(inflow, r.inflow) and (f >= 0).all() and (w >= 0).all() and (w <= cp).all()
            assert (inflow + n <= cs + 1e-9).all()                                      # (33c)
            assert (out <= q + 1e-9).all()                                               # (33d)
            assert (q + p + w - out <= cw + 1e-9).all()                                  # (33e)
            assert np.allclose(r.inflow_gap, inflow - qh) and np.allclose(r.production_gap, w - wh)


def test_feasible_goal_is_reproduced_exactly_and_uniquely():
    """OHIO App. B.4.5: the observed inflows and production as targets give back exactly those flows."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        S = int(rng.integers(1, 11))
        cs, cw, cp = rng.integers(5, 20, S), rng.integers(20, 90, 1), rng.integers(1, 60, 1)
        model = InventoryModel(np.stack([np.zeros(S, int), np.arange(S)], 1), cs, cw, cp)
        q = rng.integers(0, cw + 1)
        n = rng.integers(-5, cs + 1)
        r = model.solve(rng.integers(0, 30, S), rng.integers(0, 70, 1), q, n)   # some goal
        again = model.solve(r.inflow, r.production, q, n)                     # its inverse
        assert again.objective == 0.0
        assert np.array_equal(again.flows, r.flows) and np.array_equal(again.production, r.production)


def test_result_does_not_depend_on_earlier_solves():
    model = InventoryModel([[0, 0], [0, 1], [0, 2]], [15, 15, 15], [50], [25])
    args = ([9, 9, 9], [20], [12], [3, -4, 10])   # a tie: the stock cannot cover every target
    first = model.solve(*args)
    rng = np.random.default_rng(2)
    for _ in range(20):
        model.solve(rng.integers(0, 20, 3), rng.integers(0, 30, 1), rng.integers(0, 50, 1), rng.integers(-9, 15, 3))
    later = model.solve(*args)
    fresh = InventoryModel([[0, 0], [0, 1], [0, 2]], [15, 15, 15], [50], [25]).solve(*args)
    assert np.array_equal(first.flows, later.flows) and np.array_equal(first.flows, fresh.flows)
    assert first.flows.sum() == 12 and first.objective == pytest.approx(15.0)


def test_non_integral_model_and_rounding_of_targets():
    model = InventoryModel([[0, 0]], [10.5], [20.0], [4.5], integral=False)
    r = model.solve([2.25], [4.5], [3.5], [1.0])
    assert r.flows[0] == pytest.approx(2.25) and r.production[0] == pytest.approx(4.5) and r.objective == 0
    m = InventoryModel([[0, 0]], [10], [20], [5])
    assert m.solve([2.4], [3.6], [3], [0]).flows.tolist() == [2.0]   # targets rounded to whole units


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(store_net=[16]), InfeasibleError, "(33c) store 0"),
    (dict(warehouse_pipeline=[60]), InfeasibleError, "(33e) warehouse 0"),
    (dict(warehouse_stock=[70], store_net=[15]), InfeasibleError, "infeasible"),
    (dict(target_inflow=[np.nan]), MalformedProblemError, "NaN"),
    (dict(target_inflow=[-1]), MalformedProblemError, "must be non-negative"),
    (dict(target_inflow=[1, 2]), MalformedProblemError, "expected (1,)"),
    (dict(warehouse_stock=[2.5]), MalformedProblemError, "not an integer"),
    (dict(warehouse_stock=[-1]), MalformedProblemError, "non-negative"),
])
def test_bad_solve_inputs_raise_typed_errors(kwargs, exc, text):
    model = InventoryModel([[0, 0]], [15], [50], [25])
    args = dict(target_inflow=[5], target_production=[5], warehouse_stock=[10], store_net=[0])
    args.update(kwargs)
    with pytest.raises(exc) as e:
        model.solve(**args)
    assert text in str(e.value)


@pytest.mark.parametrize("args, text", [
    (([[0, 2]], [15], [50], [25]), "outside 0..0"),
    (([[1, 0]], [15], [50], [25]), "warehouse 1"),
    (([[0, 0], [0, 0]], [15], [50], [25]), "duplicate"),
    (([[0, 0]], [15, 15], [50], [25]), "store 1 has no incoming edge"),
    (([[0.0, 0.0]], [15], [50], [25]), "integer array"),
    (([[0, 0]], [-1], [50], [25]), "non-negative"),
    (([[0, 0]], [15], [50], [np.inf]), "+inf"),
    (([[0, 0]], [15], [50], [25, 3]), "expected (1,)"),
])
def test_bad_networks_raise_typed_errors(args, text):
    with pytest.raises(MalformedProblemError) as e:
        InventoryModel(*args)
    assert text in str(e.value)


# ---------------------------------------------------------------------------------------------
# planning LP (MPC): independent formulation with explicit on-hand stock, sales and back-orders


def linprog_plan(H, tau, tP, cs, cw, cp, price, hold, m_o, m_t, m_b, qw, qs, b0, D, aw, as_):
    """Variables per step k: w, f_i, W (warehouse), h_i (on hand), s_i (sales), b_i (back-orders)."""
    S = len(cs)
    per = 1 + S + 1 + 3 * S
    nv = H * per

    def w(k): return k * per
    def f(k, i): return k * per + 1 + i
    def Wv(k): return k * per + 1 + S
    def h(k, i): return k * per + 2 + S + i
    def s(k, i): return k * per + 2 + 2 * S + i
    def b(k, i): return k * per + 2 + 3 * S + i

    c = np.zeros(nv)
    for k in range(H):
        c[w(k)] = m_o
        c[Wv(k)] = hold[0]
        for i in range(S):
            c[f(k, i)] = m_t
            c[h(k, i)] = hold[1 + i]
            c[s(k, i)] = -price
            c[b(k, i)] = m_b
    Aeq, beq, Aub, bub = [], [], [], []
    for k in range(H):
        row = np.zeros(nv)
        row[Wv(k)] = 1
        if k > 0:
            row[Wv(k - 1)] = -1
        if k - tP >= 0:
            row[w(k - tP)] = -1
        for i in range(S):
            row[f(k, i)] = 1
        Aeq.append(row)
        beq.append(qw if k == 0 else aw[k])
        for i in range(S):
            hr = np.zeros(nv)          # on hand: h_k = h_{k-1} + arrivals - sales
            hr[h(k, i)], hr[s(k, i)] = 1, 1
            if k > 0:
                hr[h(k - 1, i)] = -1
            if k - tau[i] >= 0:
                hr[f(k - tau[i], i)] = -1
            Aeq.append(hr)
            beq.append(qs[i] if k == 0 else as_[k, i])
            br = np.zeros(nv)          # back-orders: b_k = b_{k-1} + d_k - s_k
            br[b(k, i)], br[s(k, i)] = 1, 1
            if k > 0:
                br[b(k - 1, i)] = -1
            Aeq.append(br)
            beq.append(D[k, i] + (b0[i] if k == 0 else 0))
            cap = np.zeros(nv)         # (33c): on hand - back-orders + arrivals in (k, k + tau] <= C
            cap[h(k, i)], cap[b(k, i)] = 1, -1
            known = 0.0
            for m in range(k + 1, k + tau[i] + 1):
                if m - tau[i] >= 0:
                    cap[f(m - tau[i], i)] = 1
                else:
                    known += as_[m, i]
            Aub.append(cap)
            bub.append(cs[i] - known)
        row = np.zeros(nv)             # (33e)
        row[Wv(k)] = 1
        known = 0.0
        for m in range(k + 1, k + tP + 1):
            if m - tP >= 0:
                row[w(m - tP)] = 1
            else:
                known += aw[m]
        Aub.append(row)
        bub.append(cw - known)
    bounds = []
    for _k in range(H):
        bounds += [(0, cp)] + [(0, None)] * (1 + S + 1 + 3 * S - 1)
    return linprog(c, A_ub=np.array(Aub), b_ub=np.array(bub), A_eq=np.array(Aeq), b_eq=np.array(beq),
                   bounds=bounds, method="highs")


def test_plan_lp_matches_independent_formulation():
    rng = np.random.default_rng(3)
    for _ in range(25):
        S = int(rng.integers(1, 4))
        H = int(rng.integers(1, 7))
        tau = rng.integers(1, 3, S)
        tP = int(rng.integers(1, 3))
        cs, cw, cp = rng.integers(8, 20, S), int(rng.integers(30, 60)), int(rng.integers(5, 30))
        price, m_o, m_t, m_b = 15.0, 5.0, 0.5, 1.5
        hold = rng.uniform(0.01, 2.0, S + 1)
        qs = rng.integers(0, 6, S)
        b0 = rng.integers(0, 4, S)
        qw = int(rng.integers(0, 20))
        D = rng.integers(0, 12, (H, S)).astype(float)
        L = H + 4
        aw = np.zeros(L)
        as_ = np.zeros((L, S))
        aw[1:tP] = rng.integers(0, 5, tP - 1)
        for i in range(S):
            as_[1:tau[i], i] = rng.integers(0, 3, tau[i] - 1)
        model = InventoryPlanModel(H, travel_time=tau, production_time=tP, store_capacity=cs, warehouse_capacity=cw,
                                   production_capacity=cp, price=price, storage_cost=hold, production_cost=m_o,
                                   transport_cost=np.full(S, m_t), backorder_cost=np.full(S, m_b))
        plan = model.solve(warehouse_stock=qw, store_stock=qs, backorders=b0, demand=D,
                           production_arrivals=aw[1:], shipment_arrivals=as_[1:])
        ref = linprog_plan(H, tau, tP, cs, cw, cp, price, hold, m_o, m_t, m_b, qw, qs, b0, D, aw, as_)
        assert ref.status == 0
        assert plan.profit == pytest.approx(-ref.fun, rel=1e-9, abs=1e-6)
        assert plan.shipments.shape == (H, S) and plan.production.shape == (H,)
        assert (plan.production <= cp + 1e-9).all() and (plan.shipments >= 0).all()
        assert plan.shipments[0].sum() <= qw + 1e-9


def test_plan_lp_bad_input():
    model = InventoryPlanModel(3, travel_time=np.array([1, 1]), production_time=1, store_capacity=[10, 10],
                               warehouse_capacity=30, production_capacity=10, price=15, storage_cost=[1, 1, 1],
                               production_cost=5, transport_cost=[0.5, 0.5], backorder_cost=[1.5, 1.5])
    ok = dict(warehouse_stock=5, store_stock=[1, 1], backorders=[0, 0], demand=np.ones((3, 2)))
    with pytest.raises(MalformedProblemError, match=r"expected \(3, 2\)"):
        model.solve(**{**ok, "demand": np.ones((2, 2))})
    with pytest.raises(MalformedProblemError, match="NaN"):
        model.solve(**{**ok, "demand": np.full((3, 2), np.nan)})
    with pytest.raises(MalformedProblemError, match="non-negative"):
        model.solve(**{**ok, "backorders": [-1, 0]})
    with pytest.raises(InfeasibleError):
        model.solve(**{**ok, "production_arrivals": [0, 40]})   # the warehouse overflows whatever we do
    with pytest.raises(MalformedProblemError, match="integers >= 1"):
        InventoryPlanModel(3, travel_time=np.array([0]), production_time=1, store_capacity=[1],
                           warehouse_capacity=3, production_capacity=1, price=1, storage_cost=[1, 1],
                           production_cost=1, transport_cost=[1], backorder_cost=[1])
    with pytest.raises(MalformedProblemError, match="horizon"):
        InventoryPlanModel(0, travel_time=np.array([1]), production_time=1, store_capacity=[1],
                           warehouse_capacity=3, production_capacity=1, price=1, storage_cost=[1, 1],
                           production_cost=1, transport_cost=[1], backorder_cost=[1])
