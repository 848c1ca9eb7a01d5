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
