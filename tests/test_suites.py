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
