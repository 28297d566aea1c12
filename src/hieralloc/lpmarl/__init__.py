"""LPMARL (LP-based agent-task assignment with GNN costs and blackbox gradients; paper 002).

Building blocks so far: the assignment layer (:mod:`hieralloc.lpmarl.assign`, LPMARL Eq. (4)-(7),
(10)-(12), (16)); the bipartite GNN cost model lives in :mod:`hieralloc.nn.bipartite`
(Eq. (1)-(3)). See docs/methods/lpmarl.md.
"""

from hieralloc.lpmarl.assign import (
    METHODS,
    MODES,
    AssignmentProblem,
    LPAssignment,
    assigned_tasks,
    assignment_probs,
    lp_assign,
    sample_assignment,
)

__all__ = ["METHODS", "MODES", "AssignmentProblem", "LPAssignment", "assigned_tasks", "assignment_probs",
           "lp_assign", "sample_assignment"]
