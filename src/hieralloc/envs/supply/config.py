"""Configuration of the supply-chain inventory environment (OHIO App. B.4; Tables 10-11).

Defaults are the 1W3S scenario of OHIO Table 10 (one warehouse, three stores). The per-store
lists (``demand_*``, ``travel_time``) have one entry per store; the per-node lists
(``storage_capacity``, ``storage_cost``, ``initial_inventory``) have the warehouse first, then the
stores. How Tables 10-11 were read is documented in docs/environments/supply-chain.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError

ACTION_MODES = ("goal", "flow")


@dataclass
class SupplyConfig(Config):
    """Every parameter of the supply-chain environment (one warehouse, S stores)."""

    demand_max: tuple[float, ...] = param((5.0, 15.0, 20.0), "d_max per store: peak of the seasonal demand, "
                                          "OHIO Eq. (31) (Table 10: [5, 15, 20]); its length sets the number "
                                          "of stores S")
    demand_var: tuple[float, ...] = param((2.0, 2.0, 2.0), "d_var per store: the noise U(0, d_var) added before "
                                          "flooring, Eq. (31) (Tables 10-11: 2)")
    demand_freq: tuple[float, ...] = param((2.0, 4.0, 6.0), "f per store: frequency of the seasonal cosine, "
                                           "Eq. (31) (Table 10: [2, 4, 6])")
    demand_shift: tuple[float, ...] = param((1.0, 3.0, 6.0), "r per store: shift of the seasonal cosine, "
                                            "Eq. (31) (Table 10: [1, 3, 6])")
    travel_time: tuple[int, ...] = param((1, 1, 1), "t_ij per store: steps a shipment from the warehouse "
                                         "travels (Tables 10-11: 1)")
    production_time: int = param(1, "t^P: steps between ordering production and its arrival at the "
                                 "warehouse (Tables 10-11: 1)", low=1, high=100)
    storage_capacity: tuple[int, ...] = param((50, 15, 15, 15), "c per node, warehouse first: storage "
                                              "capacity (Table 10: [50, 15, 15, 15])")
    storage_cost: tuple[float, ...] = param((0.1, 0.5, 0.5, 0.5), "m^S per node, warehouse first: cost per "
                                            "unit held at the end of a step (Table 10: [0.1, 0.5, 0.5, 0.5])")
    production_capacity: int = param(25, "c_p: most units the warehouse can order per step (Table 10: 25, "
                                     "Table 11: 60)", low=0)
    production_cost: float = param(5.0, "m^O: cost per unit produced (Tables 10-11: 5)", low=0.0)
    transport_cost: float = param(0.5, "m^T: cost per unit shipped on an edge (Tables 10-11: 0.5)", low=0.0)
    price: float = param(15.0, "p: revenue per unit sold (Tables 10-11: 15)", low=0.0)
    backorder_cost: float = param(1.5, "m^B: cost per back-ordered unit per step, Eq. (32) (Tables 10-11: 1.5)",
                                  low=0.0)
    overflow_penalty: float = param(1.5, "cost per unit above a storage capacity, as a multiple of the price "
                                    "(Eq. (32): 1.5 p); the excess is discarded", low=0.0)
    episode_length: int = param(30, "steps T per episode (Tables 10-11: 30); also the period of Eq. (31)",
                                low=1, high=10_000)
    initial_inventory: tuple[int, ...] = param((), "units on hand per node at reset, warehouse first "
                                               "(empty: zeros, as the published simulator)")
    action_mode: str = param("goal", "'goal': the action is the OHIO goal (Dirichlet weights over warehouse + "
                             "stores, then the production fraction of c_p), executed by the inventory LP "
                             "Eq. (33); 'flow': end-to-end shipments and production as fractions of their "
                             "individual upper bounds, projected onto the feasible set", choices=ACTION_MODES)
    horizon: int = param(3, "look-ahead K of the node features: arrivals and expected demand for the next "
                         "K steps (OHIO App. B.4.2 (iv))", low=1, high=100)
    obs_scale: float = param(0.05, "scale applied to goods and money in observations", low=0.0, low_open=True)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        super().validate()
        src = getattr(self, "_source", None)
        S = len(self.demand_max) if isinstance(self.demand_max, (list, tuple)) else -1
        if S < 1:
            raise ConfigError("demand_max", f"must be a non-empty list with one peak demand per store, got "
                              f"{self.demand_max!r}; e.g. [5, 15, 20] for three stores", src)
        per_store = {"demand_max": "peak demand", "demand_var": "demand noise width", "demand_freq": "frequency",
                     "demand_shift": "shift", "travel_time": "travel time"}
        per_node = {"storage_capacity": "storage capacity", "storage_cost": "storage cost"}
        for name, what in per_store.items():
            self._list(name, S, f"one {what} per store (demand_max has {S} stores)", src)
        for name, what in per_node.items():
            self._list(name, S + 1, f"one {what} per node, the warehouse first, then the {S} stores", src)
        if len(self.initial_inventory):
            self._list("initial_inventory", S + 1,
                       f"one value per node, the warehouse first, then the {S} stores (or [] for zeros)", src)
        integer = {"travel_time": 1, "storage_capacity": 0, "initial_inventory": 0}
        for name, values in self._lists().items():
            for k, v in enumerate(values):
                if not math.isfinite(v):
                    raise ConfigError(f"{name}[{k}]", f"must be a finite number, got {v!r}; give a number", src)
                low = integer.get(name, 0)
                if name in ("demand_freq", "demand_shift"):
                    continue
                if v < low:
                    raise ConfigError(f"{name}[{k}]", f"must be >= {low}, got {v!r}; quantities, costs and times "
                                      "cannot be negative" + (" (a shipment takes at least one step)"
                                                              if name == "travel_time" else ""), src)
                if name in integer and float(v) != int(v):
                    raise ConfigError(f"{name}[{k}]", f"must be a whole number, got {v!r}; goods and steps are "
                                      "counted in integers", src)
        for name in integer:
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("demand_max", "demand_var", "demand_freq", "demand_shift", "storage_cost"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))
        for k, (q, c) in enumerate(zip(self.initial_inventory, self.storage_capacity, strict=False)):
            if q > c:
                raise ConfigError(f"initial_inventory[{k}]", f"is {q}, above the node's storage capacity {c}; "
                                  "start at or below the capacity", src)

    def _lists(self) -> dict[str, tuple[Any, ...]]:
        return {n: tuple(getattr(self, n)) for n in ("demand_max", "demand_var", "demand_freq", "demand_shift",
                                                      "travel_time", "storage_capacity", "storage_cost",
                                                      "initial_inventory")}

    def _list(self, name: str, n: int, what: str, src: str | None) -> None:
        v = getattr(self, name)
        if not isinstance(v, (list, tuple)):
            raise ConfigError(name, f"must be a list ({what}), got {v!r}", src)
        for k, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ConfigError(f"{name}[{k}]", f"must be a number, got {x!r}", src)
        if len(v) != n:
            raise ConfigError(name, f"has {len(v)} entries, expected {n}: {what}", src)

    # ------------------------------------------------------------------ helpers
    @property
    def n_stores(self) -> int:
        return len(self.demand_max)

    def replace(self, **changes: Any) -> SupplyConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def dynamics(self) -> dict[str, Any]:
        """The fields that determine the dynamics and rewards (not the action or observation format)."""
        skip = {"action_mode", "horizon", "obs_scale"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


__all__ = ["ACTION_MODES", "SupplyConfig"]
