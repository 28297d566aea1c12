"""Typed errors of the solver layer.

Every error names the constraint or field at fault and why, so that a user can fix the input
without reading solver logs, e.g.::

    InfeasibleError: capacity sum 7 < 9 agents: every agent needs a task; raise capacities

All of them are :class:`~hieralloc.errors.HierallocError`, so the CLI prints them on one line.
"""

from __future__ import annotations

from hieralloc.errors import HierallocError


class SolverError(HierallocError):
    """Base class of every solver failure (including a solver that stops without an answer).

    ``constraint`` names the constraint or input field at fault when one is known (``None``
    otherwise); ``reason`` is the explanation without the name.
    """

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)


class InfeasibleError(SolverError):
    """No point satisfies every constraint (the message names the conflicting constraints)."""


class UnboundedError(SolverError):
    """The objective can be improved without limit (the message names the free direction)."""


class MalformedProblemError(SolverError, ValueError):
    """The problem data itself is invalid: shape mismatch, NaN/inf where a number is needed,
    lower bound above upper bound, unknown option. Also a :class:`ValueError`."""


__all__ = ["SolverError", "InfeasibleError", "UnboundedError", "MalformedProblemError"]
