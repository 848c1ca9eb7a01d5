"""Environment suites behind the Env protocol (jaxrl.envs.suites): time limits reported as truncation, the final
observation kept at auto-reset, jit / vmap, the spaces the suite declares, a one-line error naming the extra
when a suite is missing, and a PPO run through the train program."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import suites
from jaxrl.programs import get_program
from jaxrl.programs.driver import main

xminigrid = pytest.importorskip("xminigrid")

TURN_LEFT = 2  # xminigrid's actions: 0 forward, 1 turn right, 2 turn left, 3 pick up, 4 put down, 5 toggle


def test_xminigrid_spaces_are_the_suites():
    raw = envs.make_raw("xminigrid/MiniGrid-DoorKey-8x8")
    env, params = xminigrid.make("MiniGrid-DoorKey-8x8")
    assert raw.observation_space(raw.default_params).shape == tuple(env.observation_shape(params)) == (7, 7, 2)
    assert raw.action_space(raw.default_params).n == env.num_actions(params) == 6
    assert raw.max_episode_steps(raw.default_params) == params.max_steps
    assert envs.make("xminigrid/MiniGrid-DoorKey-8x8").observation_space(raw.default_params).shape == (98,)


def test_xminigrid_time_limit_is_a_truncation_and_the_final_observation_is_kept():
    """Turning in place never reaches the goal: the episode ends at max_steps (100 on Empty-5x5) as a truncation;
    the step returns the observation it ended in and the next episode's first one (the reset drawn with the
    step's key)."""
    env = envs.make_raw("xminigrid/MiniGrid-Empty-5x5")
    params = env.default_params
    state, obs = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step)
    for t in range(env.max_episode_steps(params)):
        key = jax.random.PRNGKey(100 + t)
        before = state
        state, ts = step(key, state, jnp.asarray(TURN_LEFT), params)
        if t < env.max_episode_steps(params) - 1:
            assert not bool(ts.terminated | ts.truncated)
    assert bool(ts.truncated) and not bool(ts.terminated) and float(ts.reward) == 0.0
    expected_final = env._env.step(params, before, jnp.asarray(TURN_LEFT)).observation
    np.testing.assert_array_equal(ts.final_obs, expected_final)
    _, reset_obs = env.reset(key, params)
    np.testing.assert_array_equal(ts.obs, reset_obs)
    assert int(state.state.step_num) == 0


def test_xminigrid_goal_is_a_termination_under_jit_and_vmap():
    """64 random walkers on Empty-5x5 for 250 steps, vmapped and jitted: every termination pays (xminigrid's reward
    1 - 0.9 t / max_steps), every truncation happens at the 100th step of an episode and pays nothing."""
    env = envs.make_raw("xminigrid/MiniGrid-Empty-5x5")
    params = env.default_params
    n, steps = 64, 250
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    state, _ = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        actions = jax.random.randint(k_act, (n,), 0, 3)
        count = state.state.step_num + 1
        state, ts = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, n), state, actions, params)
        return state, (ts.terminated, ts.truncated, ts.reward, count)

    _, (term, trunc, reward, count) = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(2), steps)))(state)
    term, trunc, reward, count = map(np.asarray, (term, trunc, reward, count))
    assert term.sum() > 0 and trunc.sum() > 0
    assert np.all(reward[term] > 0) and np.all(reward[trunc] == 0)
    assert np.all(count[trunc] == 100) and not np.any(term & trunc)


def test_a_missing_suite_is_one_line_naming_its_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(suites.SUITES, "nosuite", ("jaxrl.envs.suites.nosuite", "nosuite", "no_such_package_jaxrl",
                                                   ("Task-v0",)))
    with pytest.raises(suites.MissingSuiteError, match=r"nosuite/Task-v0 needs the 'nosuite' extra"):
        envs.make("nosuite/Task-v0")
    out = tmp_path / "run"
    assert main(get_program("train"), ["--env", "nosuite/Task-v0", "--out-dir", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--env" in err[0] and "pip install -e '.[nosuite]'" in err[0]
    assert not out.exists()


def test_ppo_trains_on_xminigrid_through_the_train_program(tmp_path):
    out = tmp_path / "xm"
    argv = ["--env", "xminigrid/MiniGrid-Empty-5x5", "--num-seeds", "2", "--total-timesteps", "8192",
            "--out-dir", str(out), "--quiet"]
    assert main(get_program("train"), argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and len(summary["final_returns"]) == 2
    assert all(0.0 <= r <= 1.0 for r in summary["final_returns"])


def _jumanji():
    return pytest.importorskip("jumanji")


def test_jumanji_spaces_and_flat_observation():
    jumanji = _jumanji()
    raw = envs.make_raw("jumanji/Snake-v1")
    suite = jumanji.make("Snake-v1")
    assert raw.action_space(None).n == suite.action_spec.num_values == 4
    sample = suite.observation_spec.generate_value()
    assert raw.observation_space(None).shape == (12 * 12 * 5 + 1 + 4,)  # grid, step_count, action_mask
    assert raw.max_episode_steps(None) == suite.time_limit == 4000
    _, obs = raw.reset(jax.random.PRNGKey(0), None)
    assert obs.shape == raw.observation_space(None).shape and obs.dtype == jnp.float32
    assert sample.grid.shape == (12, 12, 5)
    assert envs.make_raw("jumanji/Game2048-v1").max_episode_steps(None) == 2000  # given a limit (a truncation)


def test_jumanji_time_limit_is_a_truncation_though_the_suite_terminates():
    """Maze-v0 ends its 100-step limit with termination (discount 0); the adapter reports a truncation, with the
    observation the episode ended in (step_count 100) and the reset's."""
    _jumanji()
    env = envs.make_raw("jumanji/Maze-v0")
    state, obs = env.reset(jax.random.PRNGKey(0), None)
    step = jax.jit(env.step)
    for t in range(100):
        key = jax.random.PRNGKey(10 + t)
        mask = np.asarray(obs[-5:-1]) > 0  # Maze's observation ends with the action mask, then step_count
        state, ts = step(key, state, jnp.asarray(int(np.argmax(mask))), None)  # stays clear of the target only by luck
        if bool(ts.terminated):
            pytest.skip("reached the target before the limit")
        obs = ts.obs
    assert bool(ts.truncated) and not bool(ts.terminated)
    assert float(ts.final_obs[-1]) == 100.0  # step_count in the final observation
    _, reset_obs = env.reset(key, None)
    np.testing.assert_array_equal(ts.obs, reset_obs)


def test_jumanji_snake_death_is_a_termination_under_jit_and_vmap():
    """32 random snakes for 300 steps: episodes end by dying (terminated, far before the 4000-step limit)."""
    _jumanji()
    env = envs.make_raw("jumanji/Snake-v1")
    n = 32
    state, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), n), None)

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        actions = jax.random.randint(k_act, (n,), 0, 4)
        state, ts = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, n), state, actions, None)
        return state, (ts.terminated, ts.truncated)

    _, (term, trunc) = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(2), 300)))(state)
    assert int(np.asarray(term).sum()) > n and not np.asarray(trunc).any()


@pytest.mark.slow
def test_ppo_runs_on_jumanji_through_the_train_program(tmp_path):
    _jumanji()
    out = tmp_path / "jm"
    argv = ["--env", "jumanji/Maze-v0", "--num-seeds", "2", "--total-timesteps", "4096", "--out-dir", str(out), "--quiet"]
    assert main(get_program("train"), argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and len(summary["final_returns"]) == 2


# ---------------------------------------------------------------------------------------------------------------
# MuJoCo Playground
# ---------------------------------------------------------------------------------------------------------------

def _playground():
    return pytest.importorskip("mujoco_playground")


def test_playground_spaces_are_the_suites():
    _playground()
    from mujoco_playground import registry

    cartpole = envs.make_raw("playground/CartpoleBalance")
    suite = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
    assert cartpole.observation_space(None).shape == (suite.observation_size,) == (5,)
    space = cartpole.action_space(None)
    assert space.shape == (suite.action_size,) == (1,) and (space.low == -1).all() and (space.high == 1).all()
    assert cartpole.max_episode_steps(None) == registry.get_default_config("CartpoleBalance").episode_length == 1000
    go1 = envs.make_raw("playground/Go1JoystickFlatTerrain")  # a dict observation: the policy's "state"
    assert go1.observation_space(None).shape == (48,) and go1.action_space(None).shape == (12,)
    with pytest.raises(ValueError, match="reset_ratio must be at least 1"):
        envs.make_raw("playground/CartpoleBalance", reset_ratio=0)
    with pytest.raises(ValueError, match="impl must be one of jax, warp"):
        envs.make_raw("playground/CartpoleBalance", impl="cuda")
    if jax.default_backend() != "gpu":
        with pytest.raises(ValueError, match="impl warp runs on NVIDIA GPUs only"):
            envs.make_raw("playground/CartpoleBalance", impl="warp")


def test_playground_time_limit_is_a_truncation_and_the_final_observation_is_kept():
    """CartpoleBalance never terminates; with a 5-step limit the 5th step is a truncation that returns the state
    Playground's own step reached and the next episode's first observation (the reset drawn with the step's key)."""
    _playground()
    env = envs.make_raw("playground/CartpoleBalance", episode_length=5)
    action = jnp.array([0.3])
    keys = jax.random.split(jax.random.PRNGKey(1), 5)

    @jax.jit
    def run():  # one compiled program: five adapter steps, Playground's own step from the fifth state, the reset
        state, _ = env.reset(jax.random.PRNGKey(0), None)
        before, first_four = jax.lax.scan(lambda s, k: env.step(k, s, action, None), state, keys[:4])
        state, ts = env.step(keys[4], before, action, None)
        return state, first_four, ts, env._env.step(before.env_state, action), env.reset(keys[4], None)[1]

    state, first_four, ts, expected, reset_obs = run()
    assert not np.asarray(first_four.truncated).any() and not np.asarray(first_four.terminated).any()
    assert bool(ts.truncated) and not bool(ts.terminated)
    np.testing.assert_allclose(ts.final_obs, expected.obs, rtol=1e-6)
    np.testing.assert_allclose(ts.reward, expected.reward, rtol=1e-6)
    np.testing.assert_array_equal(ts.obs, reset_obs)
    assert int(state.time) == 0


def test_playground_locomotion_meshes_are_only_drawn():
    """Without a menagerie checkout the robots' meshes are placeholders: two placeholders of different sizes give
    the same masses, inertias and contacts, and no mesh geom collides."""
    _playground()
    from mujoco_playground._src import locomotion

    from jaxrl.envs.suites import playground

    for task in ("Go1JoystickFlatTerrain", "G1JoystickFlatTerrain", "BerkeleyHumanoidJoystickFlatTerrain"):
        models = []
        for size in (0.01, 0.5):
            with playground.menagerie_free_assets(task, mesh_size=size):
                models.append(locomotion._envs[task](config=locomotion.get_default_config(task),
                                                     config_overrides={"impl": "jax"}).mj_model)
        small, large = models
        for field in ("body_mass", "body_inertia", "body_ipos", "geom_contype", "geom_conaffinity", "dof_armature"):
            np.testing.assert_array_equal(getattr(small, field), getattr(large, field), err_msg=f"{task} {field}")
        playground.check_meshes_only_drawn(small, task)


@pytest.mark.slow
def test_playground_go1_falls_are_terminations_and_do_not_depend_on_the_meshes():
    """16 Go1 robots under random torques for 100 steps, vmapped and jitted: falls end episodes as terminations
    (before the 1000-step limit); the same rollout with other placeholder meshes is the same trajectory."""
    _playground()
    from jaxrl.envs.suites import playground

    def rollout(mesh_size):
        original = playground.placeholder_mesh
        playground.placeholder_mesh = lambda name, size=0.01: original(name, mesh_size)
        try:
            env = envs.make_raw("playground/Go1JoystickFlatTerrain")
        finally:
            playground.placeholder_mesh = original
        n = 16
        state, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), n), None)

        def body(state, key):
            k_act, k_env = jax.random.split(key)
            actions = jax.random.uniform(k_act, (n, 12), minval=-1, maxval=1)
            state, ts = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, n), state, actions, None)
            return state, (ts.terminated, ts.truncated, ts.final_obs)

        return jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(2), 100)))(state)[1]

    term, trunc, obs = map(np.asarray, rollout(0.01))
    assert term.sum() > 0 and not trunc.any()
    np.testing.assert_array_equal(obs, np.asarray(rollout(0.5)[2]))


# ---------------------------------------------------------------------------------------------------------------
# Craftax
# ---------------------------------------------------------------------------------------------------------------

def _craftax():
    return pytest.importorskip("craftax")


def test_craftax_spaces_are_the_suites():
    _craftax()
    from craftax.craftax_env import make_craftax_env_from_name

    for name, (obs_dim, actions, limit) in {"Craftax-Classic-Symbolic-v1": (1345, 17, 10_000),
                                           "Craftax-Symbolic-v1": (8268, 43, 100_000)}.items():
        raw = envs.make_raw("craftax/" + name)
        suite = make_craftax_env_from_name(name, auto_reset=False)
        params = raw.default_params
        assert raw.observation_space(params).shape == suite.observation_space(params).shape == (obs_dim,)
        assert raw.action_space(params).n == suite.action_space(params).n == actions
        assert raw.max_episode_steps(params) == suite.default_params.max_timesteps == limit
    with pytest.raises(ValueError, match="reset_ratio and max_timesteps must be at least 1"):
        envs.make_raw("craftax/Craftax-Classic-Symbolic-v1", reset_ratio=0)
    assert envs.make_raw("craftax/Craftax-Classic-Symbolic-v1", max_timesteps=50).max_episode_steps(
        envs.make_raw("craftax/Craftax-Classic-Symbolic-v1", max_timesteps=50).default_params) == 50


@pytest.mark.slow
def test_craftax_time_limit_is_a_truncation_and_death_a_termination():
    """Craftax's ``done`` includes the time limit: the adapter reports the limit as a truncation (with the final
    observation and the reset's), a death as a termination, and a death on the last step as a termination."""
    _craftax()
    env = envs.make_raw("craftax/Craftax-Classic-Symbolic-v1", max_timesteps=3)
    params = env.default_params
    step = jax.jit(env.step)
    noop = jnp.asarray(0)
    state, _ = env.reset(jax.random.PRNGKey(0), params)
    for t in range(3):
        key = jax.random.PRNGKey(10 + t)
        before = state
        state, ts = step(key, state, noop, params)
        assert bool(ts.truncated) == (t == 2) and not bool(ts.terminated)
    step_key, reset_key = jax.random.split(key)  # the adapter splits the step's key
    expected_obs = jax.jit(env._env.step)(step_key, before, noop, params)[0]
    np.testing.assert_array_equal(ts.final_obs, expected_obs)
    np.testing.assert_array_equal(ts.obs, jax.jit(env.reset)(reset_key, params)[1])
    assert int(state.timestep) == 0

    fresh, _ = env.reset(jax.random.PRNGKey(1), params)
    dying = fresh.replace(player_health=jnp.zeros_like(fresh.player_health))
    _, ts = step(jax.random.PRNGKey(2), dying, noop, params)
    assert bool(ts.terminated) and not bool(ts.truncated)
    _, ts = step(jax.random.PRNGKey(3), dying.replace(timestep=jnp.asarray(2, fresh.timestep.dtype)), noop, params)
    assert bool(ts.terminated) and not bool(ts.truncated)  # dead on the last step


@pytest.mark.slow
def test_craftax_vmapped_auto_reset_hands_out_the_pooled_worlds_in_order():
    """8 envs with reset_ratio 4 generate 2 worlds a step: the finished envs (1, 3, 5) start in pool worlds 0, 1
    and 0 (three finish, two worlds), drawn with the reset halves of the first two envs' keys; the others step on."""
    _craftax()
    env = envs.make_raw("craftax/Craftax-Classic-Symbolic-v1", reset_ratio=4)
    params = env.default_params
    n = 8
    state, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), params)
    dead = jnp.zeros(n, bool).at[jnp.array([1, 3, 5])].set(True)
    state = state.replace(player_health=jnp.where(dead, 0, state.player_health).astype(state.player_health.dtype))
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    new_state, ts = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(keys, state, jnp.zeros(n, jnp.int32), params)
    np.testing.assert_array_equal(ts.terminated, dead)
    reset_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys[:2])  # the reset half of each env's step key
    pool_obs = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)[1]
    for env_index, slot in ((1, 0), (3, 1), (5, 0)):
        np.testing.assert_array_equal(ts.obs[env_index], pool_obs[slot])
    alive = ~np.asarray(dead)
    np.testing.assert_array_equal(np.asarray(ts.obs)[alive], np.asarray(ts.final_obs)[alive])
    assert np.all(np.asarray(new_state.timestep)[alive] == 1) and np.all(np.asarray(new_state.timestep)[~alive] == 0)


@pytest.mark.slow
@pytest.mark.parametrize("env_name,out", [("playground/CartpoleBalance", "pg"),
                                          ("craftax/Craftax-Classic-Symbolic-v1", "cx"),
                                          ("xminigrid/MiniGrid-Empty-5x5", "xm"), ("jumanji/Snake-v1", "jm")])
def test_usage_commands_as_written(env_name, out, tmp_path):
    """The issue's four commands (the out dir under tmp_path): PPO through train.py on one task of each suite."""
    pytest.importorskip(suites.SUITES[env_name.split("/")[0]][2])
    argv = ["--env", env_name, "--num-seeds", "2", "--total-timesteps", "20000", "--out-dir", str(tmp_path / out),
            "--quiet"]
    assert main(get_program("train"), argv) == 0
    summary = json.loads((tmp_path / out / "summary.json").read_text())
    assert summary["status"] == "completed" and len(summary["final_returns"]) == 2
    assert all(np.isfinite(summary["final_returns"]))


# ---------------------------------------------------------------------------------------------------------------
# XLand-MiniGrid rule sets as levels
# ---------------------------------------------------------------------------------------------------------------

def _tiles(array) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in t) for t in np.asarray(array) if np.any(t)]


def test_xland_rulesets_are_goal_chains_over_distinct_objects():
    """1000 generated rule sets: depths 0, 1, 2 all occur; rule 0 makes the goal's object and rule i the first
    ingredient of rule i - 1; on the grid are exactly the chain's leaves and the distractors, all distinct, the goal's
    object among them only at depth 0. A mutation keeps the goal's object, the rules and the chain's leaves."""
    from jaxrl.envs.suites.xland import generate_ruleset, mutate_ruleset, ruleset_depth

    levels = jax.jit(jax.vmap(generate_ruleset))(jax.random.split(jax.random.PRNGKey(0), 1000))
    mutate = jax.jit(lambda key, level: mutate_ruleset(key, level, num_edits=3))
    depths = np.asarray(ruleset_depth(levels))
    assert set(depths.tolist()) == {0, 1, 2}
    for i in range(0, 1000, 37):
        goal, rules, tiles = (np.asarray(x[i]) for x in (levels.goal, levels.rules, levels.init_tiles))
        target, depth = tuple(goal[1:3]), depths[i]
        assert goal[0] in (1, 3)
        made = target
        leaves = []
        for rule in rules[:depth]:
            assert rule[0] == 3 and tuple(rule[5:7]) == made  # TileNearRule(a, b -> made)
            made = tuple(rule[1:3])
            leaves.append(tuple(rule[3:5]))
        leaves.append(made)
        on_grid = _tiles(tiles)
        assert len(set(on_grid)) == len(on_grid) and set(leaves) <= set(on_grid)
        assert (target in on_grid) == (depth == 0)
        mutated = mutate(jax.random.PRNGKey(i), jax.tree.map(lambda x: x[i], levels))
        assert tuple(np.asarray(mutated.goal[1:3])) == target
        np.testing.assert_array_equal(mutated.rules, rules)
        np.testing.assert_array_equal(mutated.init_tiles[:depth + 1], tiles[:depth + 1])


def test_xland_levels_play_under_vmap_with_the_ruleset_in_view():
    """64 random walkers, each on its own generated rule set (batched params): the observation ends with the level's
    goal and rule encodings; reaching a goal is a termination that pays, the 243-step limit a truncation."""
    from jaxrl.envs.levels.spaces import LEVEL_SPACES, XLAND_LEVELS_ENV
    from jaxrl.envs.wrappers import VecEnv

    space = LEVEL_SPACES[XLAND_LEVELS_ENV]
    env = space.make_env(250)
    n, steps = 64, 300
    levels = jax.vmap(space.generator(0))(jax.random.split(jax.random.PRNGKey(1), n))
    vec = VecEnv(env, n, batched_params=True)
    state, obs = vec.reset(jax.random.PRNGKey(2), levels)
    goal_and_rules = np.concatenate([np.asarray(levels.ruleset.goal), np.asarray(levels.ruleset.rules).reshape(n, -1)], 1)
    np.testing.assert_array_equal(np.asarray(obs)[:, 50:], goal_and_rules)

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        state, ts = vec.step(k_env, state, jax.random.randint(k_act, (n,), 0, 6), levels)
        return state, (ts.terminated, ts.truncated, ts.reward)

    _, (term, trunc, reward) = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(3), steps)))(state)
    term, trunc, reward = map(np.asarray, (term, trunc, reward))
    assert term.sum() > 0 and trunc.sum() > 0 and not np.any(term & trunc)
    assert np.all(reward[term] > 0) and np.all(reward[~term] == 0)


def test_ued_runs_a_curriculum_over_xland_rulesets(tmp_path):
    """ACCEL over generated rule sets through the ued program: the held-out rule sets are evaluated by name."""
    out = tmp_path / "xl"
    argv = ["--env", "xminigrid/XLand-MiniGrid-R1-9x9", "--method", "accel", "--num-seeds", "2",
            "--total-timesteps", "4096", "--num-chunks", "1", "--num-levels", "8", "--rollout-len", "64",
            "--capacity", "16", "--out-dir", str(out), "--quiet"]
    assert main(get_program("ued"), argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    text = json.dumps(summary)
    assert all(name in text for name in ("HoldBlueBall", "NearRedKey", "MakeAndHoldStar", "MakeTwiceNearHex"))
    assert (out / "held_out_levels.png").exists()


def test_playground_action_repeat_sums_the_rewards_of_the_repeated_steps():
    """``action_repeat=2`` (a config override): one adapter step is two Playground steps with the same action, its
    reward their sum."""
    _playground()
    env = envs.make_raw("playground/CartpoleBalance", action_repeat=2)
    assert env.action_repeat == 2
    action = jnp.array([0.5])

    @jax.jit
    def run():
        state, _ = env.reset(jax.random.PRNGKey(0), None)
        _, ts = env.step(jax.random.PRNGKey(1), state, action, None)
        first = env._env.step(state.env_state, action)
        second = env._env.step(first, action)
        return ts, first.reward + second.reward, second.obs

    ts, reward, obs = run()
    np.testing.assert_allclose(ts.reward, reward, rtol=1e-6)
    np.testing.assert_allclose(ts.final_obs, obs, rtol=1e-6)
