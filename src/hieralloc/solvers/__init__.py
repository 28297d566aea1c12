"""Solver layer: every LP / MILP / assignment / matching used by hieralloc lives here.

* :func:`solve_milp` - one-shot LP/MILP with HiGHS (``highspy``), typed errors.
* :class:`LPModel` - reusable HiGHS model: change costs/bounds/rhs, re-solve warm.
* :func:`assign_capacitated`, :class:`AssignmentModel` - capacitated agent-task assignment
  (LPMARL Eq. (4)-(7)).
* :class:`RebalancingModel`, :func:`solve_rebalancing` - OHIO App. B.3.4 Eq. (30) with slack;
  :class:`PassengerMatchingModel`, :func:`match_passengers` - passenger-matching LP.
* :func:`max_weight_matching` - Pairing Sec. 3.2 matching with optional sit-outs.
* :func:`blackbox`, :func:`perturbed`, :func:`perturbed_fenchel_young_loss` and the modules
  :class:`BlackboxSolver`, :class:`PerturbedSolver` - differentiable wrappers (torch; imported
  on first use so that the solvers alone do not load torch).

See ``docs/solvers.md`` for formulations, error behaviour and benchmark numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hieralloc.solvers.assignment import AssignmentModel, AssignmentResult, assign_capacitated
from hieralloc.solvers.errors import InfeasibleError, MalformedProblemError, SolverError, UnboundedError
from hieralloc.solvers.flow import (
    PassengerMatchingModel,
    PassengerMatchingResult,
    RebalancingModel,
    RebalancingResult,
    match_passengers,
    solve_rebalancing,
)
from hieralloc.solvers.inventory import InventoryModel, InventoryPlan, InventoryPlanModel, InventoryResult
from hieralloc.solvers.inverse import RebalancingInverse, RhsInverseModel, inverse_rhs, project_outflows
from hieralloc.solvers.lp import LPModel, LPSolution
from hieralloc.solvers.matching import MatchingResult, max_weight_matching
from hieralloc.solvers.milp import MilpResult, solve_milp

if TYPE_CHECKING:
    from hieralloc.solvers.differentiable import (
        BlackboxSolver,
        PerturbedSolver,
        blackbox,
        perturbed,
        perturbed_fenchel_young_loss,
    )

_LAZY = {"BlackboxSolver", "PerturbedSolver", "blackbox", "perturbed", "perturbed_fenchel_young_loss"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hieralloc.solvers import differentiable

        return getattr(differentiable, name)
    raise AttributeError(f"module 'hieralloc.solvers' has no attribute {name!r}")


__all__ = [
    "RebalancingInverse", "RhsInverseModel", "inverse_rhs", "project_outflows",  # OHIO App. B.3.5 inverse
    "AssignmentModel",
    "AssignmentResult",
    "BlackboxSolver",
    "InfeasibleError",
    "InventoryModel",
    "InventoryPlan",
    "InventoryPlanModel",
    "InventoryResult",
    "LPModel",
    "LPSolution",
    "MalformedProblemError",
    "MatchingResult",
    "MilpResult",
    "PassengerMatchingModel",
    "PassengerMatchingResult",
    "PerturbedSolver",
    "RebalancingModel",
    "RebalancingResult",
    "SolverError",
    "UnboundedError",
    "assign_capacitated",
    "blackbox",
    "match_passengers",
    "max_weight_matching",
    "perturbed",
    "perturbed_fenchel_young_loss",
    "solve_milp",
    "solve_rebalancing",
]
