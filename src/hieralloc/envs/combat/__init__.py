"""Combat-style dynamic target assignment (a stand-in for SMAC, LPMARL Sec. 5.2 / App. E.3): configuration,
batched core, PettingZoo environment and invariants. Importing registers them.

Ally units (the agents) choose which enemy to attack and how to move; scripted enemies fight back; enemies
die, so the set of tasks of LPMARL's assignment shrinks during an episode. StarCraft II cannot run here;
docs/environments/combat.md says how this environment differs from SMAC.

Registered names (stable):

* environment ``combat`` (family ``combat``): :class:`CombatConfig` defaults (= ``combat-3v3``).
* scenario ``combat-3v3``: SMAC 3m, 3 marines vs 3 marines, 60 steps.
* scenario ``combat-2v1``: SMAC 2m_vs_1z, 2 marines vs 1 zealot, 150 steps.
* scenario ``combat-8v8``: SMAC 8m, 8 marines vs 8 marines, 150 steps.
* scenario ``combat-3v5``: SMAC 3s_vs_5z, 3 stalkers vs 5 zealots, 150 steps (LPMARL's "3s_5z": "3 stalker
  (N=3) versus 5 zealots (M=5)", App. E.3).
* scenario ``combat-8v8-mixed``: SMAC 3s5z, 3 stalkers + 5 zealots on each side, 150 steps (the other reading
  of LPMARL's "3s_5z"; see the docs).

Rewards are sparse (+1 win, -1 defeat; SMAC ``reward_sparse``) as in LPMARL Table 3's "(sparse)" rows.
"""

from __future__ import annotations

from typing import Any

from hieralloc.envs.combat.config import UNIT_TYPES, CombatConfig, UnitType, parse_units
from hieralloc.envs.combat.core import N_NO_ATTACK, N_TASK_ACTIONS, CombatCore, StepResult
from hieralloc.envs.combat.env import CombatEnv, make_env
from hieralloc.registry import EnvSpec, ScenarioSpec, register_env, register_scenario

FAMILY = "combat"

register_env(EnvSpec(
    name="combat",
    family=FAMILY,
    config_cls=CombatConfig,
    make=make_env,
    description="combat-style dynamic target assignment (SMAC stand-in, LPMARL Sec. 5.2): ally units pick "
                "which enemy to attack and move against scripted enemies that die; sparse win reward "
                "(default: 3 marines vs 3)",
    discrete=True,
    continuous=False,
    has_global_state=True,
    has_masks=True,
))

# LPMARL App. E.3: the SMAC maps of Table 3 and their episode limits
SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    "combat-3v3": {"allies": "3marine", "enemies": "3marine", "episode_limit": 60},
    "combat-2v1": {"allies": "2marine", "enemies": "1zealot", "episode_limit": 150},
    "combat-3v5": {"allies": "3stalker", "enemies": "5zealot", "episode_limit": 150},
    "combat-8v8": {"allies": "8marine", "enemies": "8marine", "episode_limit": 150},
    "combat-8v8-mixed": {"allies": "3stalker+5zealot", "enemies": "3stalker+5zealot", "episode_limit": 150},
}
_DESCRIPTIONS = {
    "combat-3v3": "combat, SMAC 3m stand-in: 3 marines vs 3 marines, 60 steps, sparse reward",
    "combat-2v1": "combat, SMAC 2m_vs_1z stand-in: 2 marines vs 1 zealot, 150 steps, sparse reward",
    "combat-3v5": "combat, SMAC 3s_vs_5z stand-in (LPMARL's 3s_5z): 3 stalkers vs 5 zealots, 150 steps, "
                  "sparse reward",
    "combat-8v8": "combat, SMAC 8m stand-in: 8 marines vs 8 marines, 150 steps, sparse reward",
    "combat-8v8-mixed": "combat, SMAC 3s5z stand-in: 3 stalkers + 5 zealots a side, 150 steps, sparse reward",
}
for _name, _values in SCENARIO_VALUES.items():
    register_scenario(ScenarioSpec(name=_name, env="combat", values=_values, description=_DESCRIPTIONS[_name]))

from hieralloc.envs.combat import invariants as _invariants  # noqa: E402,F401  (registers checks)

__all__ = ["FAMILY", "N_NO_ATTACK", "N_TASK_ACTIONS", "SCENARIO_VALUES", "UNIT_TYPES", "CombatConfig", "CombatCore",
           "CombatEnv", "StepResult", "UnitType", "make_env", "parse_units"]
