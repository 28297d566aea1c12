"""Episode metrics of the coverage grid: AC, ATD and Score (HGRL App. C, Eqs. (26)-(28)).

Per episode of T steps, with ``served_t`` the demand served at step t under the coverage rule
(:mod:`hieralloc.envs.coverage.core`), ``demand_t = sum_{x,y} D(t, x, y)`` and ``coverable_t``
the per-step upper bound on what N windows can serve (:func:`~hieralloc.envs.coverage.core.
coverable_demand`: the N w^2 largest cell demands, capped by U N w^2):

* ``AC``       = (1/T) sum_t served_t                     -- covered demand per step, the scale of
  HGRL Table 1.
* ``AC_ratio`` = (1/T) sum_t served_t / demand_t          -- HGRL Eq. (26) (0/0 := 1), in [0, 1].
  Eq. (26) writes the numerator as the demand inside each window summed over agents; with
  non-overlapping windows and D <= U this equals served_t, otherwise it would count stacked or
  uncapped demand, so the served demand is used.
* ``AC_norm``  = (1/T) sum_t served_t / coverable_t       -- the scaled AC~ of the Score, in [0, 1].
* ``ATD``      = (1/(N T)) sum_t sum_i |dx_i,t| + |dy_i,t| -- HGRL Eq. (27), in [0, w - 1].
* ``Score_d1`` / ``Score_d2`` -- HGRL Eq. (28) with absolute scalings (see :func:`score`)
  and the two trade-off coefficients of HGRL App. C, delta = 0.2 (Toy) and 0.75 (TaxiBJ).

:func:`relative_score` reproduces the Score column of HGRL Table 1 exactly: there AC and ATD are
min-max normalised across the methods of the table (so the number depends on which methods are
compared and cannot be computed from one episode).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: metric key -> trade-off coefficient delta of the Score (HGRL App. C: Toy 0.2, TaxiBJ 0.75)
SCORE_DELTAS: dict[str, float] = {"Score_d1": 0.2, "Score_d2": 0.75}

METRIC_KEYS = ("AC", "AC_ratio", "AC_norm", "ATD", *SCORE_DELTAS, "served", "demand", "distance",
               "team_return", "steps")


def score(ac_norm: np.ndarray | float, atd: np.ndarray | float, window: int,
          delta: float) -> np.ndarray | float:
    """HGRL Eq. (28) with absolute scalings: Score = 0.5 * AC~ - 0.5 * delta * ATD~.

    * AC~ = ``AC_norm``: served demand as a fraction of the demand N windows could serve at most
      in each step (1 is the per-step physical limit). Eq. (26)'s ratio to the whole map's
      demand is not used: with 10 windows of 9 cells on 2,500 cells it stays below ~0.1, the
      distance term would dominate and standing still would score best.
    * ATD~ = ATD / (w - 1): the fraction of the largest Manhattan move a w x w action allows per
      step (0 when w = 1).
    * delta weighs distance against coverage as in Eq. (1); App. C gives 0.2 (Toy) and 0.75
      (TaxiBJ), reported for every environment as ``Score_d1`` and ``Score_d2``.

    So Score lies in [-0.5 delta, 0.5], is computable from one episode and does not depend on
    which other methods are evaluated.
    """
    atd_scaled = np.asarray(atd, dtype=float) / (window - 1) if window > 1 else 0.0 * np.asarray(atd)
    out = 0.5 * np.asarray(ac_norm, dtype=float) - 0.5 * delta * atd_scaled
    return float(out) if np.ndim(out) == 0 else out


def relative_score(ac: Sequence[float], atd: Sequence[float]) -> np.ndarray:
    """Score as HGRL Table 1 computes it: 0.5 * minmax(AC) - 0.5 * minmax(ATD) across methods.

    Reproduces the published column (e.g. Toy: EADS 0.354, HGRL 0.440, MAPPO -0.154). Only
    meaningful for a fixed set of methods; use ``Score_d1``/``Score_d2`` otherwise.
    """
    a = np.asarray(ac, dtype=float)
    d = np.asarray(atd, dtype=float)

    def mm(v: np.ndarray) -> np.ndarray:
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else np.zeros_like(v)

    return np.asarray(0.5 * mm(a) - 0.5 * mm(d))


def metrics_from_sums(served: np.ndarray, ratio: np.ndarray, norm: np.ndarray, manhattan: np.ndarray,
                      demand: np.ndarray, ret: np.ndarray, steps: int, n_agents: int,
                      window: int) -> dict[str, np.ndarray]:
    """Episode metrics from per-episode sums (arrays of shape (B,)); see the module docstring."""
    t = max(steps, 1)
    ac_ratio = ratio / t if steps else np.ones_like(ratio)
    ac_norm = norm / t if steps else np.ones_like(norm)
    atd = manhattan / (n_agents * t)
    out: dict[str, np.ndarray] = {
        "AC": served / t,
        "AC_ratio": ac_ratio,
        "AC_norm": ac_norm,
        "ATD": atd,
    }
    for key, d in SCORE_DELTAS.items():
        out[key] = np.asarray(score(ac_norm, atd, window, d), dtype=float)
    out["served"] = served.copy()
    out["demand"] = demand.copy()
    out["distance"] = manhattan.copy()
    out["team_return"] = ret.copy()
    out["steps"] = np.full_like(served, float(steps))
    return out


__all__ = ["METRIC_KEYS", "SCORE_DELTAS", "metrics_from_sums", "relative_score", "score"]
