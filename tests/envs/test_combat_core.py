"""Combat environment mechanics on hand-built states: damage, cooldown, range, death, masks, the scripted
enemies, outcomes and rewards, LPMARL's task accessors, seeding and the batched core."""

from __future__ import annotations

import numpy as np
import pytest

from hieralloc.config import from_dict
from hieralloc.envs.combat import UNIT_TYPES, CombatConfig, CombatCore, CombatEnv
from hieralloc.envs.combat.core import EAST, N_NO_ATTACK, NOOP, NORTH, STOP, TASK_ATTACK, WEST
from hieralloc.envs.combat.scripted import focus_fire_actions, kite_actions
from hieralloc.errors import ConfigError

MARINE = UNIT_TYPES["marine"]
ZEALOT = UNIT_TYPES["zealot"]
ATTACK0, ATTACK1 = N_NO_ATTACK, N_NO_ATTACK + 1


def core_for(allies: str = "1marine", enemies: str = "1marine", **kw: object) -> CombatCore:
    return CombatCore(CombatConfig(allies=allies, enemies=enemies, **kw), 1)  # type: ignore[arg-type]


def test_fire_damage_cooldown_and_mutual_hits() -> None:
    c = core_for()
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]])  # distance 4 <= range 5
    r = c.step([[ATTACK0]])
    # both fire in the same step (simultaneous damage): 45 - 6 each
    assert c.e_hp[0, 0] == MARINE.health - MARINE.damage and c.a_hp[0, 0] == MARINE.health - MARINE.damage
    assert r.enemy_damage[0, 0] == MARINE.damage and r.ally_damage[0, 0] == MARINE.damage
    # cooldown 2: one step waiting (the unit holds, no damage), then fires again
    assert c.a_cdl[0, 0] == MARINE.cooldown - 1
    c.step([[ATTACK0]])
    assert c.e_hp[0, 0] == MARINE.health - MARINE.damage
    assert np.allclose(c.a_pos[0, 0], [10.0, 16.0])  # holding in range: no movement
    c.step([[ATTACK0]])
    assert c.e_hp[0, 0] == MARINE.health - 2 * MARINE.damage
    assert c.t[0] == 3


def test_approach_to_weapon_range_then_fire() -> None:
    c = core_for()
    # 5.5 apart: attack order available (attack range 6) but beyond the weapon range 5
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[15.5, 16.0]])
    assert c.action_masks()[0, 0, ATTACK0]
    c.step([[ATTACK0]])
    # both units close in to just inside their weapon range (each by 0.5), nobody fires this step
    assert c.distances()[0, 0, 0] == pytest.approx(4.5, abs=1e-5)
    assert np.allclose(c.a_pos[0, 0], [10.5, 16.0], atol=1e-5)
    assert c.e_hp[0, 0] == MARINE.health and c.a_hp[0, 0] == MARINE.health
    c.step([[ATTACK0]])
    assert c.e_hp[0, 0] == MARINE.health - MARINE.damage


def test_out_of_range_attack_is_masked_and_executed_as_stop() -> None:
    c = core_for(enemy_behaviour="defend")
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[17.5, 16.0]])  # 7.5 > attack range 6
    assert not c.action_masks()[0, 0, ATTACK0]
    r = c.step([[ATTACK0]])
    assert r.actions[0, 0] == STOP
    assert np.allclose(c.a_pos[0, 0], [10.0, 16.0]) and c.e_hp[0, 0] == MARINE.health
    assert c.last_action[0, 0] == STOP


def test_moves_and_border_masks() -> None:
    c = core_for(enemy_behaviour="defend")
    c.reset(seed=0, ally_positions=[[0.5, 16.0]], enemy_positions=[[30.0, 16.0]])
    m = c.action_masks()[0, 0]
    assert not m[WEST] and m[EAST] and m[NORTH] and not m[NOOP] and m[STOP]
    c.step([[NORTH]])
    assert np.allclose(c.a_pos[0, 0], [0.5, 16.0 + MARINE.speed])
    c.step([[WEST]])  # illegal: executed as stop (SMAC would assert)
    assert np.allclose(c.a_pos[0, 0], [0.5, 16.0 + MARINE.speed])


def test_death_masks_and_dead_units_stop_acting() -> None:
    c = core_for("2marine", "2marine")
    # enemy 0 at 6 hp within range of ally 0; enemy 1 far away; ally 1 at 6 hp next to enemy 0
    c.reset(seed=0, ally_positions=[[10.0, 16.0], [13.0, 17.0]], enemy_positions=[[14.0, 16.0], [31.0, 2.0]],
            ally_health=[45.0, 6.0], enemy_health=[6.0, 45.0])
    r = c.step([[ATTACK0, ATTACK0]])
    assert c.e_hp[0, 0] == 0.0 and r.enemy_killed[0].tolist() == [True, False]
    assert r.enemy_damage[0, 0] == 6.0  # effective damage is capped at the health left
    # enemy 0 fired at its nearest ally (ally 1) in the same step and killed it
    assert c.a_hp[0, 1] == 0.0 and r.ally_killed[0].tolist() == [False, True]
    m = c.action_masks()[0]
    assert m[1].tolist() == [True] + [False] * (m.shape[1] - 1)   # dead ally: only no-op
    assert not m[0, ATTACK0]                                        # dead enemy: never attackable
    pos = c.a_pos[0, 1].copy()
    r = c.step([[STOP, EAST]])  # the dead ally's move is ignored (executed as no-op)
    assert r.actions[0, 1] == NOOP and np.array_equal(c.a_pos[0, 1], pos)
    obs = c.observations()[0]
    assert not obs[1].any()  # SMAC: a dead agent observes zeros
    assert obs[0, 4] == 0.0  # the dead enemy's attackable flag


def test_enemy_script_nearest_sticky_and_behaviours() -> None:
    c = core_for("2marine", "1marine")
    c.reset(seed=0, ally_positions=[[10.0, 16.0], [10.0, 10.0]], enemy_positions=[[15.5, 16.0]])
    assert c.enemy_targets()[0].tolist() == [0]  # nearest living ally
    c.step([[STOP, STOP]])  # attack-move: approach ally 0 to weapon range
    assert c.e_target[0, 0] == 0 and abs(c.distances()[0, 0, 0] - MARINE.weapon_range) < 1e-3
    # ally 1 walks right next to the enemy: the enemy keeps its target (alive, in sight)
    c.a_pos[0, 1] = c.e_pos[0, 0] + [0.0, 0.5]
    assert c.enemy_targets()[0].tolist() == [0]
    c.a_hp[0, 0] = 0.0  # the target dies: the nearest living ally is taken
    assert c.enemy_targets()[0].tolist() == [1]
    # 'defend': no ally in sight -> no target, the enemy stands still
    d = core_for(enemy_behaviour="defend")
    d.reset(seed=0, ally_positions=[[2.0, 16.0]], enemy_positions=[[20.0, 16.0]])
    d.step([[STOP]])
    assert d.enemy_targets()[0].tolist() == [-1] and np.allclose(d.e_pos[0, 0], [20.0, 16.0])
    # 'attack': the same enemy walks towards the ally
    a = core_for()
    a.reset(seed=0, ally_positions=[[2.0, 16.0]], enemy_positions=[[20.0, 16.0]])
    a.step([[STOP]])
    assert np.allclose(a.e_pos[0, 0], [20.0 - MARINE.speed, 16.0])


def test_melee_zealot_closes_in_and_hits() -> None:
    c = core_for("1marine", "1zealot", enemy_damage_scale=0.5)
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[11.9, 16.0]])
    c.step([[STOP]])
    assert c.distances()[0, 0, 0] <= ZEALOT.weapon_range and c.a_hp[0, 0] == MARINE.health
    c.step([[STOP]])
    assert c.a_hp[0, 0] == MARINE.health - 0.5 * ZEALOT.damage


@pytest.mark.parametrize(("sparse_loss", "want"), [(-1.0, -1.0), (0.0, 0.0)])
def test_win_loss_and_sparse_reward(sparse_loss: float, want: float) -> None:
    c = core_for(sparse_loss=sparse_loss)
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]], enemy_health=[6.0])
    r = c.step([[ATTACK0]])
    assert r.won[0] and r.terminated[0] and r.done[0] and not r.truncated[0] and r.reward[0] == 1.0
    m = c.episode_metrics()
    assert m["win"][0] == 1 and m["return"][0] == 1.0 and m["enemies_killed"][0] == 1 and m["allies_alive"][0] == 1
    with pytest.raises(RuntimeError, match="reset"):
        c.step([[STOP]])
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]], ally_health=[6.0])
    r = c.step([[STOP]])
    assert r.lost[0] and r.terminated[0] and r.reward[0] == want
    assert c.episode_metrics()["loss"][0] == 1 and c.episode_metrics()["win"][0] == 0


def test_draw_and_timeout() -> None:
    c = core_for()
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]], ally_health=[6.0],
            enemy_health=[6.0])
    r = c.step([[ATTACK0]])
    assert r.terminated[0] and not r.won[0] and not r.lost[0] and r.reward[0] == 0.0
    assert c.episode_metrics()["draw"][0] == 1
    t = core_for(episode_limit=3, enemy_behaviour="defend")
    t.reset(seed=0, ally_positions=[[2.0, 16.0]], enemy_positions=[[30.0, 16.0]])
    for k in range(3):
        r = t.step([[STOP]])
        assert r.truncated[0] == (k == 2) and not r.terminated[0]
    m = t.episode_metrics()
    assert m["timeout"][0] == 1 and m["episode_length"][0] == 3 and m["return"][0] == 0.0


def test_dense_reward_is_smac_scaled() -> None:
    c = core_for(reward="dense")
    max_reward = 10.0 + 200.0 + MARINE.health  # SMAC: M * death value + win + enemy health
    assert c.max_reward == max_reward
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]])
    r = c.step([[ATTACK0]])
    assert r.reward[0] == pytest.approx(MARINE.damage * 20.0 / max_reward)
    # a won episode from full health returns exactly dense_scale_rate (SMAC reward_scale_rate)
    c.reset(seed=0, ally_positions=[[10.0, 16.0]], enemy_positions=[[14.0, 16.0]], ally_health=[45.0])
    c.e_dmg = np.zeros(1)  # a harmless enemy, so the ally surely wins
    while not c.done.all():
        c.step(focus_fire_actions(c))
    assert c.won[0] and c.episode_metrics()["return"][0] == pytest.approx(20.0)
    assert c.episode_metrics()["dense_return"][0] == pytest.approx(20.0)


def test_observation_state_layout_and_bounds() -> None:
    cfg = CombatConfig(allies="3stalker+5zealot", enemies="3stalker+5zealot", episode_limit=150)
    c = CombatCore(cfg, 2)
    obs = c.reset(seed=[1, 2])
    assert c.type_bits == 2
    assert c.obs_dim == 4 + 8 * 7 + 7 * 7 + 4 and obs.shape == (2, 8, c.obs_dim) and obs.dtype == np.float32
    assert c.state_dim == 8 * 6 + 8 * 5 + 8 * 14 and c.state().shape == (2, c.state_dim)
    assert c.n_actions == 6 + 8
    while not c.done.all():
        o = c.step(focus_fire_actions(c)).obs
        s = c.state()
        assert np.abs(o).max() <= 1.0 and np.abs(s).max() <= 1.0
    # own features: health fraction and cooldown; unit type bits of ally 0 (a stalker)
    c.reset(seed=[1, 2])
    own = c.observations()[0, 0, -4:]
    assert own.tolist() == [1.0, 0.0, 1.0, 0.0]
    homogeneous = core_for("3marine", "3marine")
    assert homogeneous.type_bits == 0 and homogeneous.obs_dim == 4 + 3 * 5 + 2 * 5 + 2
    assert core_for("2marine", "1zealot").type_bits == 0  # each team homogeneous: no type bits (SMAC 2m_vs_1z)
    assert CombatCore(CombatConfig(state_last_action=False)).state_dim == 3 * 4 + 3 * 3


def test_task_structure_for_lpmarl() -> None:
    c = core_for("2marine", "2marine", enemy_behaviour="defend")
    c.reset(seed=0, ally_positions=[[10.0, 16.0], [10.0, 10.0]], enemy_positions=[[14.0, 16.0], [28.0, 10.0]],
            enemy_health=[6.0, 45.0])
    assert c.distances()[0].round(3).tolist() == [[4.0, np.hypot(18, 6).round(3)], [np.hypot(4, 6).round(3), 18.0]]
    z = np.array([0, 1])
    to = c.task_observation(z)[0]
    assert to.shape == (2, c.task_obs_dim) and c.task_obs_dim == 9 + 5 * 2 + 6 * 2
    # target block: alive, attackable, dx, dy, distance (over sight 9), health fraction
    assert to[0, :6] == pytest.approx([1, 1, 4 / 9, 0, 4 / 9, 6 / 45])
    assert to[1, :6] == pytest.approx([1, 0, 18 / 9, 0, 2.0, 1.0])  # beyond sight: still located
    assert to[0, 6:9] == pytest.approx([1, 1, 0])                  # own: alive, health, cooldown
    assert to[0, 9:14] == pytest.approx([1, 0, -6 / 9, 6 / 9, 1.0])  # nearest ally within sight
    assert not to[0, 14:19].any()                                   # only one other ally
    assert not to[0, 19:].any()                                     # the other enemy is out of sight
    assert to[1, 19:25] == pytest.approx([1, 0, 4 / 9, 6 / 9, np.hypot(4, 6) / 9, 6 / 45])
    assert not c.task_observation(np.array([-1, 1]))[0, 0, :6].any()  # no task: zero target block
    tm = c.task_action_masks(z)[0]
    assert tm.shape == (2, 7) and tm[0, TASK_ATTACK] and not tm[1, TASK_ATTACK]
    env_a = c.task_actions_to_env(z, np.array([TASK_ATTACK, TASK_ATTACK]))[0]
    assert env_a.tolist() == [ATTACK0, ATTACK1]
    assert c.task_actions_to_env(np.array([-1, 0]), np.array([TASK_ATTACK, NORTH]))[0].tolist() == [STOP, NORTH]
    c.step(c.task_actions_to_env(z, np.array([TASK_ATTACK, STOP])))
    assert c.task_rewards(z)[0].tolist() == [1.0, 0.0]  # ally 0's task died this step
    assert c.task_rewards(z, dense=True)[0] == pytest.approx([1.0 + 6 / 45, 0.0])
    assert not c.task_observation(z)[0, 0, :6].any()  # dead task: zero target block
    with pytest.raises(ConfigError, match="assignment"):
        c.task_observation(np.array([0, 2]))


def test_seeding_reproducible_and_batch_equals_wrapper() -> None:
    cfg = CombatConfig(allies="3marine", enemies="3marine")
    a, b = CombatCore(cfg), CombatCore(cfg)
    assert np.array_equal(a.reset(seed=5), b.reset(seed=5))
    assert np.array_equal(a.a_pos, b.a_pos) and np.array_equal(a.e_pos, b.e_pos)
    a.reset(seed=6)
    assert not np.array_equal(a.a_pos, b.a_pos)
    seeds = [3, 4, 5]
    core = CombatCore(cfg, 3)
    obs = core.reset(seed=seeds)
    envs = [CombatEnv(cfg) for _ in seeds]
    for k, (env, s) in enumerate(zip(envs, seeds, strict=True)):
        o, _ = env.reset(seed=s)
        assert np.array_equal(obs[k], np.stack([o[x] for x in env.possible_agents]))
    while not core.done.all():
        acts = focus_fire_actions(core)
        res = core.step(acts)
        for k, env in enumerate(envs):
            if not res.active[k]:
                continue
            o, rew, term, trunc, _ = env.step({x: int(acts[k, i]) for i, x in enumerate(env.possible_agents)})
            assert np.array_equal(res.obs[k], np.stack([o[x] for x in env.possible_agents]))
            assert rew["agent_0"] == res.reward[k] and term["agent_0"] == res.terminated[k]
            assert trunc["agent_0"] == res.truncated[k]
            assert np.array_equal(core.state()[k], env.state())
    for k, env in enumerate(envs):
        assert env.episode_metrics() == {key: float(v[k]) for key, v in core.episode_metrics().items()}


@pytest.mark.parametrize(("allies", "enemies", "kite_wins"), [("2marine", "1zealot", 1.0),
                                                              ("3stalker", "5zealot", 0.9)])
def test_kiting_wins_the_kiting_maps(allies: str, enemies: str, kite_wins: float) -> None:
    """2m_vs_1z and 3s_vs_5z need kiting: focus fire alone always loses, the kiting script wins (docs table)."""
    cfg = CombatConfig(allies=allies, enemies=enemies, episode_limit=150)
    for script, lo, hi in ((focus_fire_actions, 0.0, 0.0), (kite_actions, kite_wins, 1.0)):
        c = CombatCore(cfg, 10)
        c.reset(seed=0)
        while not c.done.all():
            c.step(script(c))
        assert lo <= c.episode_metrics()["win"].mean() <= hi


@pytest.mark.parametrize(("values", "key"), [
    ({"allies": "3marines"}, "allies"),
    ({"allies": "three marine"}, "allies"),
    ({"enemies": "0marine"}, "enemies"),
    ({"enemies": ""}, "enemies"),
    ({"allies": "40marine"}, "allies"),
    ({"spawn_gap": 40.0}, "spawn_gap"),
    ({"reward": "shaped"}, "reward"),
    ({"episode_limit": 0}, "episode_limit"),
    ({"sparse_loss": 1.0}, "sparse_loss"),
])
def test_bad_config_names_the_field(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(CombatConfig, values, "command line")
    assert e.value.key == key
    assert "'" + key + "'" in str(e.value)


def test_bad_reset_options() -> None:
    c = core_for()
    with pytest.raises(ConfigError, match="ally_positions"):
        c.reset(seed=0, ally_positions=[[40.0, 1.0]])
    with pytest.raises(ConfigError, match="enemy_health"):
        c.reset(seed=0, enemy_health=[100.0])
    with pytest.raises(ConfigError, match="living"):
        c.reset(seed=0, enemy_health=[0.0])
    c.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        c.step([[99]])
