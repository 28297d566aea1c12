"""Configuration and unit table of the combat (dynamic target assignment) environment.

The environment stands in for the StarCraft Multi-Agent Challenge (SMAC; Samvelyan et al. 2019) maps
of LPMARL Sec. 5.2 / App. E.3, which cannot run here (StarCraft II is not available). Unit statistics
come from StarCraft II (health + shields, damage, weapon range, weapon cooldown, speed) with time
converted to environment steps of SMAC's default ``step_mul = 8`` game loops (8 / 22.4 s at the
"faster" game speed), and SMAC's fixed shoot range 6 and sight range 9. See docs/environments/combat.md.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError

#: seconds of game time per environment step: SMAC step_mul = 8 game loops at 22.4 loops/s
STEP_SECONDS = 8 / 22.4


@dataclass(frozen=True)
class UnitType:
    """Statistics of one kind of unit (no abilities, armour or shield regeneration).

    ``health`` is SC2 hit points + shields; ``cooldown`` the steps from one attack to the next
    (1 = every step); ``weapon_range`` the distance within which the unit fires; ``attack_range``
    the distance within which an attack order on an enemy is available (SMAC's shoot range 6, its
    ``get_avail_agent_actions``); a unit ordered to attack a target beyond its weapon range first
    closes in (SC2's attack order). ``speed`` is the distance moved per step.
    """

    name: str
    health: float
    damage: float
    cooldown: int
    weapon_range: float
    attack_range: float
    sight_range: float
    speed: float


#: SC2 statistics (Liquipedia, patch 4.x as in SMAC); cooldowns are SMAC's ``unit_max_cooldown`` (game
#: loops) / 8 rounded, speed = SC2 speed (per second, "faster") * STEP_SECONDS.
UNIT_TYPES: dict[str, UnitType] = {
    # marine: 45 hp, 6 damage, range 5, cooldown 15 loops, speed 3.15
    "marine": UnitType("marine", 45.0, 6.0, 2, 5.0, 6.0, 9.0, round(3.15 * STEP_SECONDS, 4)),
    # zealot: 100 hp + 50 shields, 2 x 8 damage, melee (0.1 + unit radii ~ 1), cooldown 22 loops, speed 3.15
    "zealot": UnitType("zealot", 150.0, 16.0, 3, 1.0, 6.0, 9.0, round(3.15 * STEP_SECONDS, 4)),
    # stalker: 80 hp + 80 shields, 13 damage (vs light), range 6, cooldown 35 loops, speed 4.13
    "stalker": UnitType("stalker", 160.0, 13.0, 4, 6.0, 6.0, 9.0, round(4.13 * STEP_SECONDS, 4)),
}

_TERM = re.compile(r"^\s*(\d+)\s*([a-z_]+)\s*$")
MAX_UNITS = 64


def parse_units(spec: str, key: str) -> tuple[str, ...]:
    """``'3stalker+5zealot'`` -> ('stalker', 'stalker', 'stalker', 'zealot', ...); ConfigError on bad input."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(key, "must name the team's units as COUNTtype terms joined by '+', e.g. '3marine' "
                          f"or '3stalker+5zealot' (types: {', '.join(UNIT_TYPES)})")
    units: list[str] = []
    for term in spec.lower().split("+"):
        m = _TERM.match(term)
        if m is None:
            raise ConfigError(key, f"term {term.strip()!r} of {spec!r} is not COUNTtype (e.g. '3marine'); "
                              f"types: {', '.join(UNIT_TYPES)}")
        count, name = int(m.group(1)), m.group(2)
        if name not in UNIT_TYPES:
            raise ConfigError(key, f"unknown unit type {name!r} in {spec!r}; types: {', '.join(UNIT_TYPES)}")
        if count < 1:
            raise ConfigError(key, f"term {term.strip()!r} of {spec!r} needs a count of at least 1")
        units.extend([name] * count)
    if len(units) > MAX_UNITS:
        raise ConfigError(key, f"has {len(units)} units; at most {MAX_UNITS} per team")
    return tuple(units)


@dataclass
class CombatConfig(Config):
    """Every parameter of the combat environment. Defaults: the ``combat-3v3`` scenario (SMAC 3m)."""

    allies: str = param("3marine", "the learning team: COUNTtype terms joined by '+' (types marine, zealot, "
                        "stalker), e.g. '3marine', '3stalker+5zealot'; one agent per unit")
    enemies: str = param("3marine", "the scripted team, same format; one task (attack target) per unit")
    episode_limit: int = param(60, "steps before the episode is truncated (LPMARL App. E.3: 60 on 3m, "
                               "150 on 2m_vs_1z, 3s_5z, 8m)", low=1, high=100_000)
    width: float = param(32.0, "arena width (x in [0, width]; SMAC's maps are 32 x 32)", low=0.0, low_open=True)
    height: float = param(32.0, "arena height (y in [0, height])", low=0.0, low_open=True)
    spawn_gap: float = param(12.0, "horizontal distance between the two teams' spawn lines (allies left of "
                             "the centre, enemies right)", low=0.0)
    spawn_spacing: float = param(1.5, "vertical distance between neighbouring units of a spawn line", low=0.0)
    spawn_jitter: float = param(1.0, "each unit's spawn point is moved by U(-jitter, jitter) in x and y "
                                "(the episode's randomness)", low=0.0)
    enemy_behaviour: str = param("attack", "scripted enemies: 'attack' (SMAC's attack-moving built-in AI: "
                                 "target the nearest living ally anywhere) or 'defend' (only allies within "
                                 "sight); a target is kept while alive and in sight", choices=("attack", "defend"))
    enemy_damage_scale: float = param(1.0, "multiplies the enemies' damage (difficulty knob; SMAC's built-in AI "
                                      "difficulty has no counterpart here)", low=0.0)
    reward: str = param("sparse", "'sparse': +1 on a win, sparse_loss on a defeat, 0 otherwise (SMAC "
                        "reward_sparse, the setting of LPMARL Table 3); 'dense': SMAC's shaped reward "
                        "(damage + kills + win bonus, scaled)", choices=("sparse", "dense"))
    sparse_loss: float = param(-1.0, "reward of a defeat with reward='sparse' (SMAC: -1; 0 gives a +1-only "
                               "win reward like LPMARL Table 5's sparse high level)", low=-1e6, high=0.0)
    dense_death_value: float = param(10.0, "dense reward per enemy killed (SMAC reward_death_value)", low=0.0)
    dense_win_value: float = param(200.0, "dense reward of a win (SMAC reward_win)", low=0.0)
    dense_scale_rate: float = param(20.0, "dense rewards are scaled so that the best episode return is this "
                                    "(SMAC reward_scale_rate)", low=0.0, low_open=True)
    state_last_action: bool = param(True, "append every agent's one-hot last action to state() (SMAC default)")
    task_obs_allies: int = param(2, "nearest visible allies described in task_observation()", low=0, high=MAX_UNITS)
    task_obs_enemies: int = param(2, "nearest visible non-target enemies described in task_observation()",
                                  low=0, high=MAX_UNITS)

    def validate(self) -> None:
        super().validate()
        allies = parse_units(self.allies, "allies")
        enemies = parse_units(self.enemies, "enemies")
        for key, units in (("allies", allies), ("enemies", enemies)):
            span = (len(units) - 1) * self.spawn_spacing + 2 * self.spawn_jitter
            if span > self.height:
                raise ConfigError(key, f"{len(units)} units spaced {self.spawn_spacing} with jitter "
                                  f"{self.spawn_jitter} need a spawn line of {span:g} > height {self.height:g}; "
                                  "raise height or lower spawn_spacing / spawn_jitter")
        if self.spawn_gap + 2 * self.spawn_jitter > self.width:
            raise ConfigError("spawn_gap", f"spawn_gap + 2 * spawn_jitter = {self.spawn_gap + 2 * self.spawn_jitter:g} "
                              f"must fit in the arena width {self.width:g}; lower spawn_gap or raise width")

    @property
    def ally_units(self) -> tuple[str, ...]:
        return parse_units(self.allies, "allies")

    @property
    def enemy_units(self) -> tuple[str, ...]:
        return parse_units(self.enemies, "enemies")

    def replace(self, **changes: Any) -> CombatConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


__all__ = ["MAX_UNITS", "STEP_SECONDS", "UNIT_TYPES", "CombatConfig", "UnitType", "parse_units"]
