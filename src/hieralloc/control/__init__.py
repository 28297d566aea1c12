"""The control half of OHIO on a linear system: finite-horizon LQR goal tracking and its inverse
(analytical, gradient descent, CEM). See docs/methods/ohio-lqr.md."""

from hieralloc.control.lqr import (
    METHODS,
    OBSERVED,
    CEMInverseConfig,
    GDInverseConfig,
    GoalLQR,
    InverseResult,
    double_integrator,
    invert_analytical,
    invert_cem,
    invert_gd,
    recover_goals,
)

__all__ = ["CEMInverseConfig", "GDInverseConfig", "GoalLQR", "InverseResult", "METHODS", "OBSERVED",
           "double_integrator", "invert_analytical", "invert_cem", "invert_gd", "recover_goals"]
