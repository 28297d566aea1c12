"""Batched dynamics of the combat (dynamic target assignment) environment: B episodes stepped at once.

This is the one implementation of the dynamics; :class:`~hieralloc.envs.combat.env.CombatEnv` wraps it
with ``B = 1``. It stands in for SMAC (LPMARL Sec. 5.2, App. E.3); docs/environments/combat.md lists how
it differs from StarCraft II.

Arena ``[0, width] x [0, height]``, continuous positions. N ally units (the agents) and M enemy units
(scripted; each enemy is a *task* of LPMARL's assignment, and tasks die during the episode). Each unit
has health, damage, weapon range, attack range, cooldown, sight range and speed
(:data:`~hieralloc.envs.combat.config.UNIT_TYPES`).

Actions of ally i (SMAC's action set, ``6 + M`` of them): 0 no-op (the only legal action of a dead unit),
1 stop, 2-5 move north / south / east / west by the unit's speed, ``6 + j`` attack enemy j (legal while j
is alive and within the attack range). An attack order fires when the target is within the weapon range
and the weapon is ready (cooldown 0); a target beyond the weapon range is approached first (SC2's attack
order). An illegal action is executed as *stop* by a living unit and *no-op* by a dead one (SMAC asserts
instead); a move out of the arena is clipped to its border.

Scripted enemies (``enemy_behaviour``): keep the current target while it is alive and within sight,
otherwise take the nearest living ally (``attack``: anywhere, like SMAC's attack-moving built-in AI;
``defend``: within sight only, else stand still); then the same attack order as the allies.

One step, every unit deciding on the state at the start of the step:
1. orders: the allies' actions and the enemies' script;
2. fire: every unit whose order fires deals its damage to its target; damage is applied simultaneously
   (two units can kill each other); health is clipped at 0 and a unit with health 0 is dead for good;
3. cooldowns: a unit that fired waits ``cooldown`` steps (every unit's counter then drops by one);
4. move: surviving units that move or approach change position (no collisions), clipped to the arena;
5. outcome: all enemies dead and an ally alive = win, all allies dead and an enemy alive = defeat,
   both dead = draw (each terminates the episode, SMAC ``update_units``); otherwise the episode is
   truncated after ``episode_limit`` steps.

Rewards (one team reward per step): ``sparse`` (SMAC ``reward_sparse``, LPMARL Table 3): +1 on the win
step, ``sparse_loss`` on the defeat step, 0 otherwise; ``dense`` (SMAC ``reward_battle`` with
``reward_only_positive``): damage dealt to enemies + ``dense_death_value`` per enemy killed +
``dense_win_value`` on a win, times ``dense_scale_rate / max_reward`` with
``max_reward = M * dense_death_value + dense_win_value + total enemy health`` (so a perfect episode
returns ``dense_scale_rate``).

Episodes of a batch end independently; a finished episode is frozen (its actions are ignored) until
:meth:`CombatCore.reset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hieralloc.envs.combat.config import UNIT_TYPES, CombatConfig
from hieralloc.envs.seeding import batch_rngs
from hieralloc.errors import ConfigError

NOOP, STOP, NORTH, SOUTH, EAST, WEST = 0, 1, 2, 3, 4, 5
#: actions before the attack actions (SMAC ``n_actions_no_attack``)
N_NO_ATTACK = 6
#: SMAC directions: north = +y, south = -y, east = +x, west = -x
DIRECTIONS = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
#: actions of the task-relative action space (task_action_masks / task_actions_to_env)
TASK_ATTACK = 6
N_TASK_ACTIONS = 7
#: an approaching unit stops this far inside its weapon range (so it fires on the next step)
_APPROACH_EPS = 1e-6


@dataclass
class StepResult:
    """Arrays returned by :meth:`CombatCore.step` (B episodes, N allies, M enemies)."""

    obs: np.ndarray            #: (B, N, obs_dim) float32 observations after the step
    reward: np.ndarray         #: (B,) team reward of the configured kind (0 for frozen episodes)
    dense_reward: np.ndarray   #: (B,) SMAC's shaped reward, whatever ``reward`` is (diagnostic)
    terminated: np.ndarray     #: (B,) bool: the battle ended this step (win, defeat or draw)
    truncated: np.ndarray      #: (B,) bool: the episode limit ended the episode this step
    done: np.ndarray           #: (B,) bool: the episode is over (now or earlier)
    active: np.ndarray         #: (B,) bool: the episode was stepped (not frozen before this step)
    won: np.ndarray            #: (B,) bool: won this step
    lost: np.ndarray           #: (B,) bool: lost this step
    enemy_damage: np.ndarray   #: (B, M) health removed from each enemy this step
    enemy_killed: np.ndarray   #: (B, M) bool: the enemy died this step
    ally_damage: np.ndarray    #: (B, N) health removed from each ally this step
    ally_killed: np.ndarray    #: (B, N) bool: the ally died this step
    actions: np.ndarray        #: (B, N) the actions executed (illegal ones replaced, see module doc)
    t: np.ndarray              #: (B,) steps taken in each episode


def _stats(units: tuple[str, ...], attr: str) -> np.ndarray:
    return np.array([getattr(UNIT_TYPES[u], attr) for u in units], dtype=float)


class CombatCore:
    """B episodes of the combat environment (see the module docstring).

    Args:
        config: the environment configuration.
        batch_size: number of episodes B stepped together.
    """

    def __init__(self, config: CombatConfig, batch_size: int = 1) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
        self.config = config
        self.B = int(batch_size)
        allies, enemies = config.ally_units, config.enemy_units
        self.ally_types, self.enemy_types = allies, enemies
        self.N, self.M = len(allies), len(enemies)
        self.T = config.episode_limit
        self.W, self.H = float(config.width), float(config.height)
        # per-unit statistics
        self.a_hp_max, self.e_hp_max = _stats(allies, "health"), _stats(enemies, "health")
        self.a_dmg = _stats(allies, "damage")
        self.e_dmg = _stats(enemies, "damage") * config.enemy_damage_scale
        self.a_cd, self.e_cd = _stats(allies, "cooldown").astype(np.int64), _stats(enemies, "cooldown").astype(np.int64)
        self.a_wr, self.e_wr = _stats(allies, "weapon_range"), _stats(enemies, "weapon_range")
        self.a_ar = _stats(allies, "attack_range")
        self.a_sight, self.e_sight = _stats(allies, "sight_range"), _stats(enemies, "sight_range")
        self.a_speed, self.e_speed = _stats(allies, "speed"), _stats(enemies, "speed")
        # unit-type one-hot features (SMAC unit_type_bits): only when a team mixes types (3s5z: 2 bits);
        # otherwise an enemy slot's type is fixed by the scenario and the bits would carry nothing
        kinds = sorted(set(allies) | set(enemies))
        self.type_bits = len(kinds) if max(len(set(allies)), len(set(enemies))) > 1 else 0
        eye = np.eye(max(self.type_bits, 1))[:, : self.type_bits]
        self.a_type = eye[[kinds.index(u) for u in allies]] if self.type_bits else np.zeros((self.N, 0))
        self.e_type = eye[[kinds.index(u) for u in enemies]] if self.type_bits else np.zeros((self.M, 0))
        self.n_actions = N_NO_ATTACK + self.M
        # SMAC reward scaling (max_reward of StarCraft2Env.init_units)
        self.max_reward = self.M * config.dense_death_value + config.dense_win_value + float(self.e_hp_max.sum())
        # spawn lines (before jitter)
        cx, cy = self.W / 2, self.H / 2
        self.a_spawn = np.stack([np.full(self.N, cx - config.spawn_gap / 2),
                                 cy + (np.arange(self.N) - (self.N - 1) / 2) * config.spawn_spacing], -1)
        self.e_spawn = np.stack([np.full(self.M, cx + config.spawn_gap / 2),
                                 cy + (np.arange(self.M) - (self.M - 1) / 2) * config.spawn_spacing], -1)
        self._others = np.array([[j for j in range(self.N) if j != i] for i in range(self.N)],
                                dtype=np.int64).reshape(self.N, self.N - 1)
        self._rngs = batch_rngs(np.random.SeedSequence().generate_state(1)[0], self.B)
        self._alloc()
        self._ready = False

    def _alloc(self) -> None:
        B, N, M = self.B, self.N, self.M
        self.a_pos = np.zeros((B, N, 2))
        self.e_pos = np.zeros((B, M, 2))
        self.a_hp = np.tile(self.a_hp_max, (B, 1))
        self.e_hp = np.tile(self.e_hp_max, (B, 1))
        self.a_cdl = np.zeros((B, N), dtype=np.int64)
        self.e_cdl = np.zeros((B, M), dtype=np.int64)
        self.e_target = np.full((B, M), -1, dtype=np.int64)
        self.last_action = np.zeros((B, N), dtype=np.int64)
        self.t = np.zeros(B, dtype=np.int64)
        self.done = np.zeros(B, dtype=bool)
        self.won = np.zeros(B, dtype=bool)
        self.lost = np.zeros(B, dtype=bool)
        self.draw = np.zeros(B, dtype=bool)
        self.timeout = np.zeros(B, dtype=bool)
        self.last_enemy_damage = np.zeros((B, M))
        self.last_enemy_killed = np.zeros((B, M), dtype=bool)
        self._sums = {k: np.zeros(B) for k in ("return", "dense_return", "damage_dealt", "damage_taken")}

    # ------------------------------------------------------------------ sizes
    @property
    def obs_dim(self) -> int:
        """4 move flags + M x (5 + type bits) enemy + (N-1) x (5 + type bits) ally + (2 + type bits) own."""
        tb = self.type_bits
        return 4 + self.M * (5 + tb) + (self.N - 1) * (5 + tb) + 2 + tb

    @property
    def state_dim(self) -> int:
        tb = self.type_bits
        last = self.N * self.n_actions if self.config.state_last_action else 0
        return self.N * (4 + tb) + self.M * (3 + tb) + last

    @property
    def task_obs_dim(self) -> int:
        """6 target + 3 own + 5 per nearest ally + 6 per nearest other enemy (see task_observation)."""
        return 9 + 5 * self.config.task_obs_allies + 6 * self.config.task_obs_enemies

    # ------------------------------------------------------------------ episode
    def reset(self, seed: Any = None, ally_positions: Any = None, enemy_positions: Any = None,
              ally_health: Any = None, enemy_health: Any = None) -> np.ndarray:
        """Start B episodes; returns the observations (B, N, obs_dim).

        ``seed``: an int (B = 1: ``default_rng(seed)``; B > 1: ``default_rng([seed, b])``), a list of B
        ints, or None (continue the generators). Spawn points are the two teams' spawn lines moved by
        U(-spawn_jitter, spawn_jitter) per coordinate (always drawn, so the stream does not depend on
        the options). ``ally_positions`` (N, 2) / (B, N, 2), ``enemy_positions``, ``ally_health``
        (N,) / (B, N) and ``enemy_health`` fix the start (hand-built states; health 0 = dead).
        """
        if seed is not None:
            self._rngs = batch_rngs(seed, self.B)
        self._alloc()
        j = self.config.spawn_jitter
        noise = np.stack([rng.uniform(-j, j, (self.N + self.M, 2)) for rng in self._rngs])
        self.a_pos = self._clip(self.a_spawn[None] + noise[:, : self.N])
        self.e_pos = self._clip(self.e_spawn[None] + noise[:, self.N:])
        if ally_positions is not None:
            self.a_pos = self._points(ally_positions, self.N, "ally_positions")
        if enemy_positions is not None:
            self.e_pos = self._points(enemy_positions, self.M, "enemy_positions")
        if ally_health is not None:
            self.a_hp = self._health(ally_health, self.a_hp_max, "ally_health")
        if enemy_health is not None:
            self.e_hp = self._health(enemy_health, self.e_hp_max, "enemy_health")
        if not ((self.a_hp > 0).any(1) & (self.e_hp > 0).any(1)).all():
            raise ConfigError("ally_health/enemy_health", "each team needs at least one living unit at the start")
        self._ready = True
        return self.observations()

    def _clip(self, p: np.ndarray) -> np.ndarray:
        return np.clip(p, 0.0, np.array([self.W, self.H]))

    def _points(self, value: Any, n: int, key: str) -> np.ndarray:
        p = np.asarray(value, dtype=float)
        if p.shape == (n, 2):
            p = np.broadcast_to(p, (self.B, n, 2))
        if p.shape != (self.B, n, 2) or not np.isfinite(p).all():
            raise ConfigError(key, f"must be finite (x, y) points of shape ({n}, 2) or ({self.B}, {n}, 2), "
                              f"got shape {np.shape(value)}")
        if (p < 0).any() or (p[..., 0] > self.W).any() or (p[..., 1] > self.H).any():
            raise ConfigError(key, f"must lie in the arena [0, {self.W:g}] x [0, {self.H:g}]")
        return np.array(p)

    def _health(self, value: Any, hp_max: np.ndarray, key: str) -> np.ndarray:
        h = np.asarray(value, dtype=float)
        n = hp_max.shape[0]
        if h.shape == (n,):
            h = np.broadcast_to(h, (self.B, n))
        if h.shape != (self.B, n) or not np.isfinite(h).all():
            raise ConfigError(key, f"must have shape ({n},) or ({self.B}, {n}), got {np.shape(value)}")
        if (h < 0).any() or (h > hp_max).any():
            raise ConfigError(key, f"must lie in [0, max health] per unit (max {hp_max.tolist()})")
        return np.array(h)

    # ------------------------------------------------------------------ orders
    def _orders(self, pos: np.ndarray, target: np.ndarray, target_pos: np.ndarray, alive: np.ndarray,
                wrange: np.ndarray, cdl: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Attack orders of one team: (fire (B, K) bool, displacement (B, K, 2)).

        A unit with a target within its weapon range fires if its weapon is ready (else it holds);
        a target further away is approached by up to ``speed``, stopping just inside the weapon range.
        """
        has = alive & (target >= 0)
        tp = np.take_along_axis(target_pos, np.maximum(target, 0)[..., None], axis=1)
        delta = tp - pos
        d = np.hypot(delta[..., 0], delta[..., 1])
        in_range = has & (d <= wrange)
        fire = in_range & (cdl == 0)
        approach = has & ~in_range
        step = np.minimum(speed, d - wrange + _APPROACH_EPS)
        unit = delta / np.where(d > 0, d, 1.0)[..., None]
        move = np.where(approach[..., None], unit * step[..., None], 0.0)
        return fire, move

    def enemy_targets(self) -> np.ndarray:
        """(B, M) the scripted enemies' targets for the current state (-1: none); see the module doc."""
        a_alive, e_alive = self.a_hp > 0, self.e_hp > 0
        d = np.transpose(self.distances(), (0, 2, 1))  # (B, M, N)
        in_sight = d < self.e_sight[None, :, None]
        cur = np.maximum(self.e_target, 0)[..., None]
        keep = (self.e_target >= 0) & np.take_along_axis(a_alive[:, None, :] & in_sight, cur, axis=2)[..., 0]
        cand = np.broadcast_to(a_alive[:, None, :], d.shape)
        if self.config.enemy_behaviour == "defend":
            cand = cand & in_sight
        dm = np.where(cand, d, np.inf)
        nearest = np.argmin(dm, axis=2)  # ties: the lowest index
        has = np.isfinite(dm.min(axis=2))
        tgt = np.where(keep, self.e_target, np.where(has, nearest, -1))
        return np.where(e_alive, tgt, -1)

    # ------------------------------------------------------------------ step
    def step(self, actions: Any) -> StepResult:
        """Apply (B, N) integer actions (module docstring: order of events, illegal actions, rewards)."""
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        if self.done.all():
            raise RuntimeError("every episode of the batch has ended; call reset()")
        a = np.asarray(actions)
        if a.shape != (self.B, self.N):
            if a.size in (1, self.N):
                a = np.broadcast_to(a, (self.B, self.N))
            else:
                raise ValueError(f"actions must have shape ({self.B}, {self.N}), got {np.shape(actions)}")
        if not np.issubdtype(a.dtype, np.integer):
            if not np.array_equal(a, np.round(a)):
                raise ValueError("actions must be integers")
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.n_actions):
            raise ValueError(f"actions must be integers in [0, {self.n_actions - 1}]")
        cfg = self.config
        active = ~self.done
        a_alive, e_alive = self.a_hp > 0, self.e_hp > 0
        valid = np.take_along_axis(self.action_masks(), a[..., None], axis=2)[..., 0]
        eff = np.where(valid, a, np.where(a_alive, STOP, NOOP))
        # 1. orders (on the state at the start of the step)
        a_tgt = np.where(eff >= N_NO_ATTACK, eff - N_NO_ATTACK, -1)
        fire_a, move_a = self._orders(self.a_pos, a_tgt, self.e_pos, a_alive, self.a_wr, self.a_cdl, self.a_speed)
        is_move = (eff >= NORTH) & (eff <= WEST)
        move_a = move_a + np.where(is_move[..., None], DIRECTIONS[np.clip(eff - NORTH, 0, 3)]
                                   * self.a_speed[None, :, None], 0.0)
        e_tgt = self.enemy_targets()
        fire_e, move_e = self._orders(self.e_pos, e_tgt, self.a_pos, e_alive, self.e_wr, self.e_cdl, self.e_speed)
        # 2. fire: simultaneous damage
        hit_e = fire_a[..., None] & (a_tgt[..., None] == np.arange(self.M))        # (B, N, M)
        hit_a = fire_e[..., None] & (e_tgt[..., None] == np.arange(self.N))        # (B, M, N)
        dmg_e = (hit_e * self.a_dmg[None, :, None]).sum(1)
        dmg_a = (hit_a * self.e_dmg[None, :, None]).sum(1)
        e_hp = np.maximum(self.e_hp - dmg_e, 0.0)
        a_hp = np.maximum(self.a_hp - dmg_a, 0.0)
        # 3. cooldowns
        a_cdl = np.where(a_hp > 0, np.maximum(np.where(fire_a, self.a_cd, self.a_cdl) - 1, 0), 0)
        e_cdl = np.where(e_hp > 0, np.maximum(np.where(fire_e, self.e_cd, self.e_cdl) - 1, 0), 0)
        # 4. move (survivors only)
        a_pos = self._clip(self.a_pos + np.where((a_hp > 0)[..., None], move_a, 0.0))
        e_pos = self._clip(self.e_pos + np.where((e_hp > 0)[..., None], move_e, 0.0))
        # freeze finished episodes
        act1, act2 = active[:, None], active[:, None, None]
        dealt = np.where(act1, self.e_hp - e_hp, 0.0)
        taken = np.where(act1, self.a_hp - a_hp, 0.0)
        e_killed = act1 & e_alive & (e_hp <= 0)
        a_killed = act1 & a_alive & (a_hp <= 0)
        self.e_hp = np.where(act1, e_hp, self.e_hp)
        self.a_hp = np.where(act1, a_hp, self.a_hp)
        self.a_cdl = np.where(act1, a_cdl, self.a_cdl)
        self.e_cdl = np.where(act1, e_cdl, self.e_cdl)
        self.a_pos = np.where(act2, a_pos, self.a_pos)
        self.e_pos = np.where(act2, e_pos, self.e_pos)
        self.e_target = np.where(act1, e_tgt, self.e_target)
        self.last_action = np.where(act1, eff, self.last_action)
        self.t = self.t + active
        # 5. outcome (SMAC update_units: -1 lost, 1 won, 0 both dead)
        n_a, n_e = (self.a_hp > 0).sum(1), (self.e_hp > 0).sum(1)
        won = active & (n_e == 0) & (n_a > 0)
        lost = active & (n_a == 0) & (n_e > 0)
        draw = active & (n_a == 0) & (n_e == 0)
        terminated = won | lost | draw
        truncated = active & ~terminated & (self.t >= self.T)
        # rewards (team): SMAC reward_sparse, or reward_battle + reward_win scaled (reward_only_positive)
        dense = (dealt.sum(1) + cfg.dense_death_value * e_killed.sum(1) + cfg.dense_win_value * won) \
            * (cfg.dense_scale_rate / self.max_reward)
        sparse = np.where(won, 1.0, np.where(lost, cfg.sparse_loss, 0.0))
        reward = np.where(active, sparse if cfg.reward == "sparse" else dense, 0.0)
        dense = np.where(active, dense, 0.0)
        self.won |= won
        self.lost |= lost
        self.draw |= draw
        self.timeout |= truncated
        self.done = self.done | terminated | truncated
        self.last_enemy_damage, self.last_enemy_killed = dealt, e_killed
        self._sums["return"] += reward
        self._sums["dense_return"] += dense
        self._sums["damage_dealt"] += dealt.sum(1)
        self._sums["damage_taken"] += taken.sum(1)
        return StepResult(obs=self.observations(), reward=reward, dense_reward=dense, terminated=terminated,
                          truncated=truncated, done=self.done.copy(), active=active, won=won, lost=lost,
                          enemy_damage=dealt, enemy_killed=e_killed, ally_damage=taken, ally_killed=a_killed,
                          actions=eff, t=self.t.copy())

    # ------------------------------------------------------------------ views
    def distances(self) -> np.ndarray:
        """(B, N, M) Euclidean distances from every ally to every enemy (dead units included)."""
        d = self.e_pos[:, None, :, :] - self.a_pos[:, :, None, :]
        return np.hypot(d[..., 0], d[..., 1])

    def action_masks(self) -> np.ndarray:
        """(B, N, 6 + M) bool legal actions (SMAC ``get_avail_agent_actions``): a dead ally only no-op;
        a living one stop, the moves that stay in the arena, and attacks on living enemies within its
        attack range."""
        alive = self.a_hp > 0
        m = np.zeros((self.B, self.N, self.n_actions), dtype=bool)
        m[..., NOOP] = ~alive
        m[..., STOP] = alive
        nxt = self.a_pos[:, :, None, :] + DIRECTIONS[None, None] * self.a_speed[None, :, None, None]
        inside = (nxt[..., 0] >= 0) & (nxt[..., 0] <= self.W) & (nxt[..., 1] >= 0) & (nxt[..., 1] <= self.H)
        m[..., NORTH:WEST + 1] = alive[..., None] & inside
        m[..., N_NO_ATTACK:] = (alive[..., None] & (self.e_hp > 0)[:, None, :]
                                & (self.distances() <= self.a_ar[None, :, None]))
        return m

    def observations(self) -> np.ndarray:
        """(B, N, obs_dim) float32 in [-1, 1], SMAC ``get_obs_agent`` layout (zeros for a dead ally):

        * 4 move flags (the move actions' legality);
        * per enemy j: attackable, distance / sight, dx / sight, dy / sight, health fraction, unit type
          one-hot (zeros unless the enemy is alive and strictly within sight);
        * per other ally (index order without i): visible, distance / sight, dx / sight, dy / sight,
          health fraction, unit type (zeros unless alive and within sight);
        * own: health fraction, weapon cooldown left / cooldown, unit type.
        """
        B, N, M, tb = self.B, self.N, self.M, self.type_bits
        a_alive, e_alive = self.a_hp > 0, self.e_hp > 0
        masks = self.action_masks()
        s = self.a_sight[None, :, None]
        # enemies
        rel = self.e_pos[:, None, :, :] - self.a_pos[:, :, None, :]                 # (B, N, M, 2)
        d = np.hypot(rel[..., 0], rel[..., 1])
        vis = a_alive[:, :, None] & e_alive[:, None, :] & (d < s)
        ef = np.zeros((B, N, M, 5 + tb))
        ef[..., 0] = masks[..., N_NO_ATTACK:]
        ef[..., 1] = d / s
        ef[..., 2:4] = rel / s[..., None]
        ef[..., 4] = (self.e_hp / self.e_hp_max)[:, None, :]
        ef[..., 5:] = self.e_type[None, None]
        ef *= vis[..., None]
        # other allies
        relaa = self.a_pos[:, None, :, :] - self.a_pos[:, :, None, :]               # (B, N, N, 2)
        ii = np.arange(N)[:, None]
        rel_o = relaa[:, ii, self._others]                                          # (B, N, N-1, 2)
        d_o = np.hypot(rel_o[..., 0], rel_o[..., 1])
        vis_o = a_alive[:, :, None] & a_alive[:, self._others] & (d_o < s)
        af = np.zeros((B, N, N - 1, 5 + tb))
        af[..., 0] = 1.0
        af[..., 1] = d_o / s
        af[..., 2:4] = rel_o / s[..., None]
        af[..., 4] = (self.a_hp / self.a_hp_max)[:, self._others]
        af[..., 5:] = self.a_type[self._others][None]
        af *= vis_o[..., None]
        own = np.zeros((B, N, 2 + tb))
        own[..., 0] = self.a_hp / self.a_hp_max
        own[..., 1] = self.a_cdl / self.a_cd
        own[..., 2:] = self.a_type[None]
        own *= a_alive[..., None]
        move = masks[..., NORTH:WEST + 1].astype(float)
        obs = np.concatenate([move, ef.reshape(B, N, -1), af.reshape(B, N, -1), own], axis=2)
        return obs.astype(np.float32)

    def state(self) -> np.ndarray:
        """(B, state_dim) float32 in [-1, 1], SMAC ``get_state`` layout (zeros for dead units): per ally
        health fraction, cooldown fraction, (x - W/2) / (W/2), (y - H/2) / (H/2), unit type; per enemy
        health fraction, x, y (same scaling), unit type; then (``state_last_action``) every agent's
        one-hot last executed action."""
        B, tb = self.B, self.type_bits
        half = np.array([self.W / 2, self.H / 2])
        a_alive, e_alive = self.a_hp > 0, self.e_hp > 0
        al = np.zeros((B, self.N, 4 + tb))
        al[..., 0] = self.a_hp / self.a_hp_max
        al[..., 1] = self.a_cdl / self.a_cd
        al[..., 2:4] = (self.a_pos - half) / half
        al[..., 4:] = self.a_type[None]
        al *= a_alive[..., None]
        en = np.zeros((B, self.M, 3 + tb))
        en[..., 0] = self.e_hp / self.e_hp_max
        en[..., 1:3] = (self.e_pos - half) / half
        en[..., 3:] = self.e_type[None]
        en *= e_alive[..., None]
        parts = [al.reshape(B, -1), en.reshape(B, -1)]
        if self.config.state_last_action:
            parts.append(np.eye(self.n_actions)[self.last_action].reshape(B, -1))
        return np.concatenate(parts, axis=1).astype(np.float32)

    # ------------------------------------------------------------------ LPMARL structure
    def _assignment(self, assignment: Any) -> np.ndarray:
        z = np.asarray(assignment)
        if z.shape == (self.N,):
            z = np.broadcast_to(z, (self.B, self.N))
        if z.shape != (self.B, self.N) or not np.issubdtype(z.dtype, np.integer):
            raise ConfigError("assignment", f"must be integer enemy indices of shape ({self.N},) or "
                              f"({self.B}, {self.N}), got {z.dtype} {np.shape(assignment)}")
        if z.size and (z.min() < -1 or z.max() >= self.M):
            raise ConfigError("assignment", f"enemy indices must lie in [0, {self.M - 1}] (-1: no task)")
        return z.astype(np.int64)

    def task_observation(self, assignment: Any) -> np.ndarray:
        """(B, N, task_obs_dim) float32: each ally's observation conditioned on its task (LPMARL Eq. (8)).

        ``assignment`` (N,) or (B, N): the enemy each ally is assigned to (-1: none). Per ally, zeros
        when it is dead; positions relative to the ally and divided by its sight range:

        * target (6): alive, attackable (legal attack action), dx, dy, distance, health fraction. The
          assigned target's position is given even beyond sight (the assignment reveals it); all zeros
          when the target is dead or there is none;
        * own (3): alive, health fraction, cooldown fraction;
        * ``task_obs_allies`` nearest other living allies within sight (5 each): present, dx, dy,
          distance, health fraction;
        * ``task_obs_enemies`` nearest living enemies within sight other than the target (6 each):
          present, attackable, dx, dy, distance, health fraction.
        """
        z = self._assignment(assignment)
        B, N, M = self.B, self.N, self.M
        ka, ke = self.config.task_obs_allies, self.config.task_obs_enemies
        a_alive, e_alive = self.a_hp > 0, self.e_hp > 0
        masks = self.action_masks()
        s = self.a_sight[None, :, None]
        rel = self.e_pos[:, None, :, :] - self.a_pos[:, :, None, :]
        d = np.hypot(rel[..., 0], rel[..., 1])
        hp_e = np.broadcast_to((self.e_hp / self.e_hp_max)[:, None, :], (B, N, M))
        att = masks[..., N_NO_ATTACK:]
        # per-enemy features (B, N, M, 6): alive, attackable, dx, dy, dist, health
        ef = np.stack([np.broadcast_to(e_alive[:, None, :], (B, N, M)).astype(float), att.astype(float),
                       rel[..., 0] / s, rel[..., 1] / s, d / s, hp_e], -1)
        zc = np.maximum(z, 0)
        tgt = np.take_along_axis(ef, zc[:, :, None, None], axis=2)[:, :, 0]         # (B, N, 6)
        tgt = tgt * ((z >= 0) & np.take_along_axis(e_alive, zc, axis=1))[..., None]
        own = np.stack([np.ones((B, N)), self.a_hp / self.a_hp_max, self.a_cdl / self.a_cd], -1)
        parts = [tgt, own]
        if ka:
            rel_o = (self.a_pos[:, None, :, :] - self.a_pos[:, :, None, :])[:, np.arange(N)[:, None], self._others]
            d_o = np.hypot(rel_o[..., 0], rel_o[..., 1])
            ok = a_alive[:, self._others] & (d_o < s)
            feats = np.stack([np.ones_like(d_o), rel_o[..., 0] / s, rel_o[..., 1] / s, d_o / s,
                              (self.a_hp / self.a_hp_max)[:, self._others]], -1)
            parts.append(_nearest(feats, d_o, ok, ka))
        if ke:
            ok = e_alive[:, None, :] & (d < s) & (np.arange(M) != z[..., None])
            feats = np.concatenate([np.ones((B, N, M, 1)), ef[..., 1:]], -1)
            parts.append(_nearest(feats, d, ok, ke))
        out = np.concatenate(parts, axis=2) * a_alive[..., None]
        return out.astype(np.float32)

    def task_action_masks(self, assignment: Any) -> np.ndarray:
        """(B, N, 7) bool legal task-relative actions: no-op, stop, north, south, east, west, attack the
        assigned target (legal when attacking it is: alive and within attack range)."""
        z = self._assignment(assignment)
        m = self.action_masks()
        att = np.take_along_axis(m, (N_NO_ATTACK + np.maximum(z, 0))[..., None], axis=2)[..., 0] & (z >= 0)
        return np.concatenate([m[..., :N_NO_ATTACK], att[..., None]], axis=2)

    def task_actions_to_env(self, assignment: Any, task_actions: Any) -> np.ndarray:
        """(B, N) environment actions of task-relative actions (0-5 kept, 6 -> attack the assigned enemy;
        6 without a target -> stop)."""
        z = self._assignment(assignment)
        u = np.broadcast_to(np.asarray(task_actions, dtype=np.int64), (self.B, self.N))
        if u.size and (u.min() < 0 or u.max() >= N_TASK_ACTIONS):
            raise ValueError(f"task actions must be integers in [0, {N_TASK_ACTIONS - 1}]")
        return np.where(u == TASK_ATTACK, np.where(z >= 0, N_NO_ATTACK + np.maximum(z, 0), STOP), u)

    def task_rewards(self, assignment: Any, dense: bool = False) -> np.ndarray:
        """(B, N) sub-task rewards of the last step for the assignment that was in force (LPMARL Sec. 4.2):
        +1 when the ally's assigned enemy died in the step; ``dense``: plus the damage the enemy took in
        the step as a fraction of its maximum health (0 without a task)."""
        z = self._assignment(assignment)
        zc = np.maximum(z, 0)
        r = np.take_along_axis(self.last_enemy_killed, zc, axis=1).astype(float)
        if dense:
            r = r + np.take_along_axis(self.last_enemy_damage / self.e_hp_max, zc, axis=1)
        return np.where(z >= 0, r, 0.0)

    # ------------------------------------------------------------------ metrics
    def episode_metrics(self) -> dict[str, np.ndarray]:
        """(B,) arrays of the current (or just finished) episodes: win, loss, draw, timeout (1/0), return
        (configured reward), dense_return (SMAC shaped), enemies_killed, allies_alive, allies_killed,
        episode_length, damage_dealt, damage_taken, enemy_health_left (fraction of total enemy health)."""
        n_a = (self.a_hp > 0).sum(1)
        out = {"win": self.won.astype(float), "loss": self.lost.astype(float), "draw": self.draw.astype(float),
               "timeout": self.timeout.astype(float),
               **{k: v.copy() for k, v in self._sums.items()},
               "enemies_killed": (self.e_hp <= 0).sum(1).astype(float),
               "allies_alive": n_a.astype(float), "allies_killed": (self.N - n_a).astype(float),
               "episode_length": self.t.astype(float),
               "enemy_health_left": self.e_hp.sum(1) / self.e_hp_max.sum()}
        return out


def _nearest(feats: np.ndarray, dist: np.ndarray, ok: np.ndarray, k: int) -> np.ndarray:
    """(B, N, k * F): the features of the k nearest candidates (``ok``) by ``dist``, zero-padded."""
    B, N, C, F = feats.shape
    dm = np.where(ok, dist, np.inf)
    order = np.argsort(dm, axis=2, kind="stable")[:, :, : min(k, C)]
    sel = np.take_along_axis(feats, order[..., None], axis=2) * np.take_along_axis(ok, order, axis=2)[..., None]
    out = np.zeros((B, N, k, F))
    out[:, :, : sel.shape[2]] = sel
    return out.reshape(B, N, k * F)


__all__ = ["DIRECTIONS", "EAST", "NOOP", "NORTH", "N_NO_ATTACK", "N_TASK_ACTIONS", "SOUTH", "STOP", "TASK_ATTACK",
           "WEST", "CombatCore", "StepResult"]
