"""OHIO (offline hierarchical RL via inverse optimisation): the formulation contract between
network environments and the generic parts (datasets, inverses, learners). See docs/methods/ohio.md."""

from hieralloc.ohio.formulation import (
    FORMULATIONS,
    Formulation,
    GraphLayout,
    GraphState,
    fingerprint,
    get_formulation,
    register_formulation,
)

__all__ = ["FORMULATIONS", "Formulation", "GraphLayout", "GraphState", "fingerprint", "get_formulation",
           "register_formulation"]
