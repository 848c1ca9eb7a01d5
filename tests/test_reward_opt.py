"""BARFI and its baselines: returns and shaping by hand, the tasks' heuristics, the grid world, the learned reward's
start, the primary-only objective's blindness to r_aux, the outer step's direction on a bandit with a known
answer, and learning through a misspecified heuristic where the naive sum fails."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.bilevel.barfi import (Episodes, RewardOptConfig, discounted_returns, make_reward_opt, potential_shaping,
                                 make_reward_values, reward_opt_hparams)
from jaxrl.bilevel.implicit import spectral_radius
from jaxrl.bilevel.tasks import (DISTRACTOR_REWARD, TASKS, cartpole_good, cartpole_misspecified, goalgrid_good,
                                 goalgrid_misspecified, mountaincar_good, mountaincar_misspecified)


def test_discounted_returns_by_hand_stop_at_the_episode_end():
    rewards = jnp.array([[1.0, 2.0, 3.0, 7.0]])
    mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])  # the episode ended after step 2; step 3 is padding
    g = discounted_returns(rewards * mask, mask, 0.5)
    np.testing.assert_allclose(g, [[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0]])


def test_potential_shaping_is_the_naive_return_less_the_current_potential():
    """The reference's REINFORCEPotential: shaped return from t = G_t(r + r_aux) - r_aux,t, i.e. the per-step
    reward r_t + gamma r_aux,t+1 (0 past the episode's end)."""
    reward, aux = jnp.array([[1.0, 0.0, 2.0, 0.0]]), jnp.array([[3.0, -1.0, 5.0, 9.0]])
    mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    batch = Episodes(jnp.zeros((1, 4, 1)), jnp.zeros((1, 4), jnp.int32), reward * mask, aux * mask, mask)
    gamma = 0.9
    shaped = potential_shaping(batch, gamma)
    np.testing.assert_allclose(shaped[0, :3], [1 + 0.9 * -1, 0 + 0.9 * 5, 2 + 0], rtol=1e-6)
    np.testing.assert_allclose(discounted_returns(shaped * mask, mask, gamma),
                               discounted_returns((reward + aux) * mask, mask, gamma) - aux * mask, rtol=1e-5, atol=1e-5)


def test_cartpole_heuristics_follow_the_pd_controller_and_pay_nothing_at_termination():
    leaning_right = jnp.array([0.0, 0.0, 0.05, 0.1])  # theta + 0.02 theta_dot > 0: the controller pushes right (1)
    falling_back = jnp.array([0.0, 0.0, 0.01, -1.0])  # 0.01 - 0.02 < 0: push left (0)
    alive, ended = jnp.asarray(False), jnp.asarray(True)
    assert float(cartpole_good(leaning_right, 1, leaning_right, alive)) == 1.0
    assert float(cartpole_good(leaning_right, 0, leaning_right, alive)) == 0.0
    assert float(cartpole_good(falling_back, 0, falling_back, alive)) == 1.0
    assert float(cartpole_misspecified(leaning_right, 1, leaning_right, alive)) == -5.0
    assert float(cartpole_misspecified(leaning_right, 0, leaning_right, alive)) == 1.0
    assert float(cartpole_good(leaning_right, 1, leaning_right, ended)) == 0.0
    assert float(cartpole_misspecified(leaning_right, 0, leaning_right, ended)) == 0.0


def test_mountaincar_heuristics_reward_pumping_or_braking():
    moving_left, moving_right = jnp.array([-0.5, -0.01]), jnp.array([-0.5, 0.01])
    alive = jnp.asarray(False)
    assert float(mountaincar_good(moving_left, 0, moving_left, alive)) == 1.0
    assert float(mountaincar_good(moving_right, 2, moving_right, alive)) == 1.0
    assert float(mountaincar_good(moving_right, 0, moving_right, alive)) == -1.0
    assert float(mountaincar_good(moving_right, 1, moving_right, alive)) == -1.0  # coasting is not pumping
    assert float(mountaincar_misspecified(moving_right, 0, moving_right, alive)) == 1.0
    assert float(mountaincar_good(moving_left, 0, moving_left, jnp.asarray(True))) == 0.0


def test_goal_grid_walks_by_hand_and_its_heuristics():
    env = envs.make("GoalGrid-v0")
    params = env.default_params._replace(slip_prob=jnp.float32(0.0))
    state, obs = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_allclose(obs, [1 / 9, 1 / 9])
    path = [3, 3, 2, 1] + [1] * 7 + [0] * 8  # left into the wall twice, down, right to x = 8, up to y = 8
    total, expected_cells = 0.0, []
    for t, a in enumerate(path):
        state, ts = env.step(jax.random.PRNGKey(t), state, jnp.asarray(a), params)
        total += float(ts.reward)
        expected_cells.append(ts.final_obs * 9)
    np.testing.assert_allclose(expected_cells[0], [0, 1], atol=1e-5)
    np.testing.assert_allclose(expected_cells[2], [0, 0], atol=1e-5)
    assert bool(ts.terminated) and not bool(ts.truncated)
    np.testing.assert_allclose(ts.final_obs * 9, [8, 8], atol=1e-5)
    np.testing.assert_allclose(total, 100.0 - 0.1 * len(path), rtol=1e-5)
    np.testing.assert_allclose(ts.obs, [1 / 9, 1 / 9])  # auto-reset
    # 50 steps against a wall: truncated, not terminated
    state, _ = env.reset(jax.random.PRNGKey(0), params)
    for t in range(50):
        state, ts = env.step(jax.random.PRNGKey(t), state, jnp.asarray(3), params)
    assert bool(ts.truncated) and not bool(ts.terminated)
    centre, corner = jnp.array([4.0, 5.0]) / 9, jnp.array([1.0, 1.0]) / 9
    alive = jnp.asarray(False)
    assert float(goalgrid_misspecified(corner, 0, centre, alive)) == DISTRACTOR_REWARD
    assert float(goalgrid_misspecified(centre, 0, corner, alive)) == 0.0
    assert float(goalgrid_good(corner, 0, centre, alive)) > float(goalgrid_good(centre, 0, corner, alive))


def test_sparse_mountaincar_pays_only_at_the_goal():
    """MountainCarSparse-v0: gymnax's MountainCar with the reference's primary reward, 1 on reaching the goal."""
    env = envs.make("MountainCarSparse-v0")
    params = env.default_params
    state, obs = env.reset(jax.random.PRNGKey(0), params)
    rewards, terminated = [], []
    for t in range(200):  # bang-bang: push with the velocity (right when at rest)
        action = jnp.where(obs[1] < 0, 0, 2)
        state, ts = env.step(jax.random.PRNGKey(t), state, action, params)
        rewards.append(float(ts.reward))
        terminated.append(bool(ts.terminated))
        obs = ts.obs
        if ts.terminated or ts.truncated:
            break
    assert terminated[-1] and rewards[-1] == 1.0 and sum(rewards[:-1]) == 0.0


def _agent(method: str, env_name: str, heuristic, **changes):
    cfg = dataclasses.replace(RewardOptConfig(method=method, episodes=4, inner_steps=2, horizon=30, hidden_sizes=(8,),
                                              reward_hidden_sizes=(8,)), **changes)
    env = envs.make(env_name)
    return cfg, env, make_reward_opt(cfg, env, heuristic, 4, 2)


def _run(agent, env, cfg, iterations: int, key=jax.random.PRNGKey(0)):
    hparams = reward_opt_hparams(cfg)
    state = agent.init(key, hparams)

    def body(state, k):
        return agent.update(k, state, env.default_params, hparams)

    return jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(key, iterations)))(state)


def test_primary_only_ignores_the_auxiliary_reward():
    """Same seeds, three very different heuristics: primary_only's policy is bit-identical after training."""
    wild = lambda obs, action, next_obs, terminated: 1e3 * jnp.sin(7 * obs[0]) + 50.0 * action  # noqa: E731
    policies = []
    for heuristic in (cartpole_good, cartpole_misspecified, wild):
        cfg, env, agent = _agent("primary_only", "CartPole-v1", heuristic)
        state, metrics = _run(agent, env, cfg, 3)
        policies.append(state.params)
    for other in policies[1:]:
        jax.tree.map(np.testing.assert_array_equal, policies[0], other)
    # and the naive sum does read it
    cfg, env, agent = _agent("naive", "CartPole-v1", wild)
    naive = _run(agent, env, cfg, 3)[0].params
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(naive), jax.tree.leaves(policies[0])))


def test_learned_reward_starts_as_the_naive_sum_with_the_reference_discount():
    cfg, env, agent = _agent("barfi", "CartPole-v1", cartpole_misspecified)
    state = agent.init(jax.random.PRNGKey(1), reward_opt_hparams(cfg))
    phi_1, phi_2 = make_reward_values(cfg, env)(state.reward, jnp.asarray(TASKS["CartPole-v1"].state_grid().obs))
    np.testing.assert_array_equal(phi_1, 0.0)
    np.testing.assert_array_equal(phi_2, 1.0)
    np.testing.assert_allclose(jax.nn.sigmoid(state.reward.discount_logit), 0.99, atol=1e-3)


@pytest.mark.parametrize("hypergradient", ["implicit", "unrolled"])
def test_outer_step_turns_a_misspecified_heuristic_down_and_a_good_one_up(hypergradient):
    """A one-step bandit (probe/ActionDependentReward: primary reward 1 for action 1). A heuristic paying +1 for
    action 0 misleads: BARFI's outer steps lower its weight phi_2 at action 0; one paying +1 for action 1 helps:
    phi_2 at action 1 rises. Both outer gradients (implicit and unrolled) agree on the direction."""
    wrong = lambda obs, action, next_obs, terminated: (action == 0).astype(jnp.float32)  # noqa: E731
    right = lambda obs, action, next_obs, terminated: (action == 1).astype(jnp.float32)  # noqa: E731
    for heuristic, action, sign in ((wrong, 0, -1.0), (right, 1, 1.0)):
        cfg, env, agent = _agent("barfi", "probe/ActionDependentReward", heuristic, episodes=64, horizon=1,
                                 hypergradient=hypergradient, reward_lr=0.01, entropy_coef=0.01)
        state, metrics = _run(agent, env, cfg, 20)
        _, phi_2 = make_reward_values(cfg, env)(state.reward, jnp.zeros((1, 1)))
        assert sign * (float(phi_2[0, action]) - 1.0) > 0.05, (hypergradient, action, phi_2)


def test_spectral_radius_by_power_iteration():
    a = jnp.diag(jnp.array([0.5, -3.0, 2.0]))
    radius = spectral_radius(lambda v: a @ v, jnp.ones(3), 30)
    np.testing.assert_allclose(radius, 3.0, rtol=1e-3)


def test_barfi_learns_through_a_misspecified_heuristic_where_the_naive_sum_fails():
    """CartPole's misspecified heuristic pays -5 for agreeing with a balancing PD controller and +1 otherwise: the
    naive sum's agent learns to drop the pole (primary return below an untrained policy's ~20) on every seed;
    BARFI's outer steps turn the heuristic's weight phi_2 negative on every seed (they invert it) and its agent
    balances far longer on average (single seeds vary: some have not turned within the budget). 3 seeds, 100
    outer iterations of 3 x 16 episodes cut at 100 steps; the evaluation plays the stochastic policy (500 steps)."""
    returns, phi_2 = {}, {}
    for method in ("naive", "barfi"):
        cfg = RewardOptConfig(method=method, episodes=16, horizon=100, reward_lr=0.05, gamma_lr=0.05)
        env = envs.make("CartPole-v1")
        agent = make_reward_opt(cfg, env, TASKS["CartPole-v1"].heuristics["misspecified"], 100, 16)
        hparams = reward_opt_hparams(cfg)

        def one(key):
            state = agent.init(key, hparams)
            state, metrics = jax.lax.scan(lambda s, k: agent.update(k, s, env.default_params, hparams), state,
                                          jax.random.split(key, 100))
            return agent.evaluate(jax.random.fold_in(key, 1), state, env.default_params, hparams).mean(), metrics["phi_2"][-1]

        returns[method], phi_2[method] = map(np.asarray, jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(3), 3)))
    assert np.all(returns["naive"] < 20.0), returns
    assert np.all(phi_2["barfi"] < 0.0), phi_2
    assert np.mean(returns["barfi"]) > 3 * 20.0, returns


@pytest.mark.slow
def test_usage_commands_as_written(tmp_path):
    """The issue's commands (the out dir under tmp_path): barfi with the misspecified heuristic, naive with the good one;
    summary.json's final_return_mean is measured on the primary reward."""
    import json

    from jaxrl.programs import get_program
    from jaxrl.programs.driver import main

    for method, heuristic in (("barfi", "misspecified"), ("naive", "good")):
        out = tmp_path / method
        argv = ["--method", method, "--env", "CartPole-v1", "--heuristic", heuristic, "--num-seeds", "2",
                "--outer-iterations", "5", "--out-dir", str(out), "--quiet"]
        assert main(get_program("reward_opt"), argv) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["return_measured_on"] == "primary reward" and summary["heuristic"] == heuristic
        assert len(summary["final_returns"]) == 2 and 0 < summary["final_return_mean"] <= 500
