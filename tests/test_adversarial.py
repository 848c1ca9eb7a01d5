"""Robust adversarial RL: the two-player envs, the players' routing, the temperature curriculum and the program."""
from __future__ import annotations

import json
import math

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxrl.adversarial.players import joint_distribution, player_batches, temperature_of
from jaxrl.adversarial.teacher import (gamma_kl, gamma_log_prob, importance_weighted_return, self_paced_update,
                                       teacher_init, teacher_record, teacher_step)
from jaxrl.agents.sac import SACConfig, sac_hparams, sac_learner
from jaxrl.envs.adversarial import fixed_temperature, gamma_temperature, make_two_player
from jaxrl.networks import TanhGaussian
from jaxrl.programs import get_program
from jaxrl.programs.driver import main
from jaxrl.training.off_policy import ReplayItem


# --- two-player envs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_zero_sum_and_no_push_is_gymnax(name):
    """Without a push the dynamics and reward are gymnax's (CartPole's force a * force_mag is its discrete action
    (a + 1) / 2; Pendulum's torque a * max_torque); the adversary's reward is the negated reward at every step."""
    env = make_two_player(name)
    params = env.default_params
    genv, gparams = gymnax.make(name)
    state, _ = env.reset(jax.random.PRNGKey(0), params)
    for t, a in enumerate([0.3, -0.7, 1.0, 0.0]):
        key = jax.random.PRNGKey(t + 1)
        gym_action = (a + 1.0) / 2.0 if name == "CartPole-v1" else jnp.array([a * 2.0])
        expected, _, expected_reward, *_ = genv.step(jax.random.split(key)[0], state.env_state, gym_action, gparams)
        state, ts = env.step(key, state, jnp.array([a, 0.0, 0.0]), params)
        np.testing.assert_allclose(ts.obs[:-1], expected, rtol=1e-5, atol=1e-6)
        assert float(ts.reward) == pytest.approx(float(expected_reward), rel=1e-6)
        assert float(ts.info["adversary_reward"]) == -float(ts.reward)


def _cartpole_at_rest(env):
    state, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    inner = state.env_state
    return state._replace(env_state=inner.replace(x=0.0, x_dot=0.0, theta=0.0, theta_dot=0.0))


def test_cartpole_push_by_hand():
    """Upright pole at rest, no protagonist force, push (F_x, F_y) = (0.5, 0.5) N on the pole's centre of mass.
    By hand (gymnax's parameters: masses 1.0 / 0.1, half-length 0.5, tau 0.02): temp = 0.5 / 1.1;
    thetaacc = (0 - temp + 0.5 / 0.1) / (0.5 (4/3 - 0.1 / 1.1)) = 7.3171; xacc = temp - 0.05 thetaacc / 1.1 = 0.1219.
    An upright pole is not turned by a vertical push: (0, 0.5) leaves theta_dot at 0."""
    env = make_two_player("CartPole-v1", adversary_force=0.5)
    state = _cartpole_at_rest(env)
    _, ts = env.step(jax.random.PRNGKey(1), state, jnp.array([0.0, 1.0, 1.0]), env.default_params)
    temp = 0.5 / 1.1
    thetaacc = (-temp + 5.0) / (0.5 * (4 / 3 - 0.1 / 1.1))
    xacc = temp - 0.05 * thetaacc / 1.1
    assert thetaacc == pytest.approx(7.3171, abs=1e-4) and xacc == pytest.approx(0.1219, abs=1e-4)
    np.testing.assert_allclose(ts.obs[:4], [0.0, 0.02 * xacc, 0.0, 0.02 * thetaacc], rtol=1e-5, atol=1e-7)
    _, vertical = env.step(jax.random.PRNGKey(1), state, jnp.array([0.0, 0.0, 1.0]), env.default_params)
    assert float(vertical.obs[3]) == 0.0 and float(vertical.obs[1]) == 0.0


def test_pendulum_push_is_a_torque_at_the_centre_of_mass():
    """At theta = 0 a horizontal push F_x = 1 N at l / 2 is a torque of 0.5 N m: the same step as a protagonist
    torque of 0.5 (a = 0.25 of max_torque 2), except the control cost, which counts the protagonist only."""
    env = make_two_player("Pendulum-v1", adversary_force=1.0)
    state, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    state = state._replace(env_state=state.env_state.replace(theta=jnp.float32(0.0), theta_dot=jnp.float32(0.0)))
    _, pushed = env.step(jax.random.PRNGKey(1), state, jnp.array([0.0, 1.0, 0.0]), env.default_params)
    _, torqued = env.step(jax.random.PRNGKey(1), state, jnp.array([0.25, 0.0, 0.0]), env.default_params)
    np.testing.assert_allclose(pushed.obs[:3], torqued.obs[:3], rtol=1e-6)
    assert float(pushed.reward) == 0.0 and float(torqued.reward) == pytest.approx(-0.001 * 0.25, rel=1e-5)


def test_player_batches_route_actions_and_negate_the_adversary_reward():
    obs = jnp.arange(10.0).reshape(2, 5)
    batch = ReplayItem(obs, jnp.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), jnp.array([1.0, -2.0]),
                       jnp.array([False, True]), obs + 1)
    protagonist, adversary = player_batches(batch, 1)
    np.testing.assert_allclose(protagonist.action, [[0.1], [0.4]])
    np.testing.assert_allclose(adversary.action, [[0.2, 0.3], [0.5, 0.6]])
    np.testing.assert_array_equal(protagonist.reward, [1.0, -2.0])
    np.testing.assert_array_equal(adversary.reward, [-1.0, 2.0])
    for b in (protagonist, adversary):
        np.testing.assert_array_equal(b.obs, obs) and np.testing.assert_array_equal(b.terminated, [False, True])
    np.testing.assert_array_equal(temperature_of(obs), [4.0, 9.0])
    joint = joint_distribution(TanhGaussian(jnp.zeros((2, 1)), jnp.zeros((2, 1))),
                               TanhGaussian(jnp.ones((2, 2)), -jnp.ones((2, 2))))
    np.testing.assert_array_equal(joint.mean, [[0, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(joint.log_std, [[0, -1, -1], [0, -1, -1]])


# --- temperatures ----------------------------------------------------------------------------------------------

def test_temperature_is_drawn_per_episode_from_the_gamma_distribution():
    """Gamma(50, 1000): mean 0.05, variance 50 / 1000^2; one temperature per episode, kept until it ends, the final
    observation carrying the ended episode's."""
    env = make_two_player("CartPole-v1")
    params = env.with_temperature(gamma_temperature(50.0, 1000.0))
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    _, obs = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    drawn = np.asarray(obs[:, -1], np.float64)
    assert drawn.mean() == pytest.approx(0.05, abs=4 * math.sqrt(5e-5 / 20_000))
    assert drawn.var() == pytest.approx(5e-5, rel=0.05)
    assert stats.kstest(drawn, stats.gamma(50, scale=1e-3).cdf).pvalue > 1e-3

    state, obs = env.reset(jax.random.PRNGKey(1), params)
    temperatures, ended = [float(obs[-1])], 0
    for t in range(300):  # a protagonist pushing right always: episodes of a few dozen steps
        state, ts = env.step(jax.random.PRNGKey(100 + t), state, jnp.array([1.0, 0.0, 0.0]), params)
        assert float(ts.final_obs[-1]) == temperatures[-1] == float(ts.info["episode_temperature"])
        if bool(ts.done):
            ended += 1
            temperatures.append(float(ts.obs[-1]))
        else:
            assert float(ts.obs[-1]) == temperatures[-1]
    assert ended >= 3 and len(set(temperatures)) == len(temperatures)
    fixed = env.with_temperature(fixed_temperature(0.02))
    assert float(env.reset(jax.random.PRNGKey(2), fixed)[1][-1]) == pytest.approx(0.02)


def test_episode_discounted_return_for_the_teacher():
    env = make_two_player("CartPole-v1", gamma=0.9)
    params = env.default_params
    state, _ = env.reset(jax.random.PRNGKey(1), params)
    for t in range(200):
        state, ts = env.step(jax.random.PRNGKey(t), state, jnp.array([1.0, 0.0, 0.0]), params)
        if bool(ts.done):
            steps = t + 1
            break
    assert float(ts.info["episode_discounted_return"]) == pytest.approx((1 - 0.9**steps) / (1 - 0.9), rel=1e-5)


def test_adversary_at_infinite_temperature_acts_uniformly_at_random():
    """The adversary's SAC step with its temperature read from the observation: on a reward that wants the action
    at 0.5 (-0.1 (a - 0.5)^2, so the softmax of Q / temperature is flat at temperature 10), a temperature of 10
    leaves the policy at the maximum-entropy squashed Gaussian (within 0.05 of uniform on [-1, 1] in Kolmogorov
    distance), a temperature of 1e-3 concentrates it near 0.5 (quantal response: uniform as the temperature grows,
    greedy as it falls). The temperatures stay moderate as inputs: the observation carries them raw (QARL's)."""
    cfg = SACConfig(hidden_sizes=(32, 32), learning_starts=0)
    hp = sac_hparams(cfg)._replace(lr=jnp.float32(3e-3), q_lr=jnp.float32(3e-3), gamma=jnp.float32(0.0))
    learner = sac_learner(cfg, obs_dim=2, action_dim=1)

    def trained(temperature):
        params, opt = learner.init(jax.random.PRNGKey(0), hp)

        def step(carry, key):
            params, opt = carry
            key_obs, key_action, key_step = jax.random.split(key, 3)
            obs = jnp.concatenate([jax.random.normal(key_obs, (128, 1)), jnp.full((128, 1), temperature)], -1)
            action = jax.random.uniform(key_action, (128, 1), minval=-1, maxval=1)
            batch = ReplayItem(obs, action, -0.1 * (action[:, 0] - 0.5) ** 2, jnp.ones(128, bool), obs)
            params, opt, _ = learner.learn_step(key_step, params, opt, batch, hp, alpha=temperature_of(batch.obs))
            return (params, opt), None

        (params, _), _ = jax.lax.scan(step, (params, opt), jax.random.split(jax.random.PRNGKey(1), 1500))
        obs = jnp.concatenate([jax.random.normal(jax.random.PRNGKey(2), (4000, 1)), jnp.full((4000, 1), temperature)], -1)
        return np.asarray(learner.act(params, obs, jax.random.PRNGKey(3), False)[:, 0])

    hot, cold = trained(10.0), trained(1e-3)
    assert stats.kstest(hot, stats.uniform(-1, 2).cdf).statistic < 0.05
    assert stats.kstest(cold, stats.uniform(-1, 2).cdf).statistic > 0.5 and abs(np.median(cold) - 0.5) < 0.1


# --- the self-paced teacher ------------------------------------------------------------------------------------

def test_gamma_kl_and_log_prob_match_numerical_integration():
    for k_p, k_q, rate in [(50.0, 1.0, 1000.0), (5.0, 7.0, 2.0), (1.0, 50.0, 1000.0)]:
        p, q = stats.gamma(k_p, scale=1 / rate), stats.gamma(k_q, scale=1 / rate)
        kl, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), 0, p.ppf(1 - 1e-12), limit=200)
        assert float(gamma_kl(k_p, k_q)) == pytest.approx(kl, rel=1e-3)
        assert float(gamma_log_prob(jnp.float32(p.mean()), k_p, rate)) == pytest.approx(p.logpdf(p.mean()), rel=1e-4)


def _hand_case(returns_of):
    temperatures = jnp.asarray(stats.gamma(20.0, scale=1e-3).rvs(size=60, random_state=0), jnp.float32)
    return temperatures, returns_of(temperatures), jnp.ones(60, bool)


def test_teacher_moves_towards_the_target_within_its_kl_bound():
    """Every return far above the threshold: the step goes as far towards the target as KL(new || old) <= 0.5
    allows (to the grid's resolution), never past it."""
    temperatures, returns, mask = _hand_case(lambda c: jnp.full_like(c, 100.0))
    k_new, performance = self_paced_update(20.0, 1.0, 1000.0, temperatures, returns, mask, 0.5, 10.0)
    assert float(performance) == pytest.approx(100.0)
    assert 1.0 < float(k_new) < 20.0
    assert float(gamma_kl(k_new, 20.0)) <= 0.5
    step = (20.0 - 1.0) / 2047
    assert float(gamma_kl(k_new - step, 20.0)) > 0.5  # the next grid point towards the target breaks the bound


def test_teacher_keeps_the_importance_weighted_return_above_its_threshold():
    """Returns grow with the temperature (a harder, more rational adversary wins more): moving towards low
    temperatures lowers the importance-weighted return, and the step stops where it reaches the threshold."""
    temperatures, returns, mask = _hand_case(lambda c: 2000.0 * c)  # mean about 40
    threshold = 35.0
    k_new, performance = self_paced_update(20.0, 1.0, 1000.0, temperatures, returns, mask, 0.5, threshold)
    assert float(performance) > threshold
    assert float(importance_weighted_return(k_new, 20.0, 1000.0, temperatures, returns, mask)) >= threshold
    unconstrained, _ = self_paced_update(20.0, 1.0, 1000.0, temperatures, returns, mask, 0.5, -1e9)
    assert float(unconstrained) < float(k_new) < 20.0  # the threshold, not the KL bound, stopped it
    step = (20.0 - 1.0) / 2047
    assert float(importance_weighted_return(k_new - step, 20.0, 1000.0, temperatures, returns, mask)) < threshold
    below, _ = self_paced_update(20.0, 1.0, 1000.0, temperatures, returns, mask, 0.5, 1e6)
    assert float(below) == 20.0  # under the threshold the distribution stays


def test_teacher_record_and_step_count_episodes():
    state = teacher_init(20.0, capacity=4)
    state = teacher_record(state, jnp.array([[0.1, 0.2], [0.3, 0.4]]), jnp.array([[1.0, 2.0], [3.0, 4.0]]),
                           jnp.array([[True, False], [False, True]]))
    np.testing.assert_allclose(state.temperatures[:2], [0.1, 0.4]) and np.testing.assert_allclose(state.returns[:2], [1, 4])
    assert int(state.count) == 2
    unchanged = teacher_step(state, 1.0, 1000.0, 0.5, -1e9, min_samples=3)
    assert float(unchanged.concentration) == 20.0 and int(unchanged.updates) == 0 and int(unchanged.count) == 2
    state = teacher_record(state, jnp.full(5, 0.02), jnp.full(5, 9.0), jnp.ones(5, bool))  # 7 recorded, 4 kept
    assert int(state.count) == 7
    np.testing.assert_allclose(state.temperatures, [0.1, 0.4, 0.02, 0.02])
    stepped = teacher_step(state, 1.0, 1000.0, 0.5, -1e9, min_samples=3)
    assert float(stepped.concentration) < 20.0 and int(stepped.updates) == 1 and int(stepped.count) == 0


# --- the program -----------------------------------------------------------------------------------------------

TINY = ["--total-timesteps", "512", "--learning-starts", "128", "--batch-size", "32", "--buffer-size", "2000",
        "--hidden-sizes", "16", "--worst-case-steps", "256", "--num-seeds", "2", "--eval-episodes", "2",
        "--teacher-samples", "2", "--num-chunks", "2", "--quiet"]


@pytest.mark.parametrize("method,env", [("qarl", "CartPole-v1"), ("rarl", "Pendulum-v1"), ("none", "CartPole-v1"),
                                        ("fixed_temperature", "Pendulum-v1"), ("linear_schedule", "CartPole-v1")])
def test_every_method_writes_the_robustness_summary(method, env, tmp_path):
    out = tmp_path / "run"
    assert main(get_program("adversarial"), ["--method", method, "--env", env, *TINY, "--out-dir", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    for name in ("nominal_returns", "worst_case_returns", "held_out_returns"):
        assert len(s[name]) == 2 and all(np.isfinite(s[name])), name
    assert set(s["held_out_levels"]) >= {"Default"} and s["method"] == method
    concentration = s["final_concentration"]
    if method == "linear_schedule":
        assert concentration == pytest.approx([1.0, 1.0])  # the schedule reaches the target at the end
    elif method != "qarl":
        assert concentration == [50.0, 50.0]
    robustness = np.load(out / "robustness.npz")
    assert robustness["held_out"].shape == (2, len(s["held_out_levels"]), 2)


def test_qarl_teacher_moves_only_above_its_threshold(tmp_path):
    """One program, two thresholds: 0 (every CartPole return is above it) moves the concentration towards the
    target; 1e6 (none is) keeps it at 50."""
    out = tmp_path / "run"
    assert main(get_program("adversarial"), ["--method", "qarl", *TINY, "--sweep", "performance_threshold=0,1000000",
                                             "--out-dir", str(out)]) == 0
    concentration = np.load(out / "curves.npz")["concentration"][-1]  # [G, S]
    assert np.all(concentration[0] < 50.0) and np.all(concentration[1] == 50.0)


def test_brax_hopper_push_moves_the_foot_and_physics_levels_apply():
    """brax/hopper through mjx: with no push the step is brax's own (protagonist's action, its reward); a push along
    x accelerates the foot along x; the adversary's reward is the negation; a heavier torso changes the step."""
    from jaxrl.envs.adversarial import TwoPlayerBraxEnv

    env = TwoPlayerBraxEnv("hopper", adversary_force=200.0)
    params = env.default_params
    state, _ = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step)
    protagonist = jnp.array([0.2, -0.1, 0.3])
    calm_state, calm = step(jax.random.PRNGKey(1), state, jnp.concatenate([protagonist, jnp.zeros(2)]), params)
    pushed_state, pushed = step(jax.random.PRNGKey(1), state, jnp.concatenate([protagonist, jnp.array([1.0, 0.0])]), params)
    own = env._brax.step(jax.random.PRNGKey(1), state, protagonist, None)[1]
    np.testing.assert_allclose(calm.obs, own.obs, rtol=1e-5, atol=1e-5)
    assert float(calm.reward) == pytest.approx(float(own.reward), rel=1e-5)
    assert float(pushed.info["adversary_reward"]) == -float(pushed.reward)

    def foot_x_velocity(s):  # brax's link velocities exclude the world body: the foot (body 4) is link 3
        return float(s.brax_state.pipeline_state.xd.vel[3, 0])

    assert foot_x_velocity(pushed_state) > foot_x_velocity(calm_state) + 0.1  # pushed along +x
    heavy = env.held_out_physics()[1]
    heavy_params = jax.tree.map(lambda x: x[1], heavy)  # HeavyTorso
    _, heavier = step(jax.random.PRNGKey(1), state, jnp.concatenate([protagonist, jnp.zeros(2)]), heavy_params)
    assert not np.allclose(heavier.obs, calm.obs)


def test_worst_case_training_meets_the_greedy_frozen_protagonist():
    """While the worst-case adversary trains, the frozen protagonist acts as it is evaluated: greedily from the
    first step (no warm-up noise), and its parameters never change."""
    from jaxrl.adversarial.methods import RationalityHParams
    from jaxrl.adversarial.players import TwoPlayerHParams, make_two_player_sac

    cfg = SACConfig(hidden_sizes=(16,), learning_starts=8, batch_size=4, buffer_size=64)
    env = make_two_player("CartPole-v1")
    agent, _ = make_two_player_sac(cfg, env, 32, adversary="autotuned", learn_protagonist=False)
    hp = TwoPlayerHParams(sac_hparams(cfg), RationalityHParams(*[jnp.float32(1.0)] * 6))
    state = agent.init(jax.random.PRNGKey(0), hp)
    start_params = state.params
    start = start_params.protagonist
    update = jax.jit(lambda k, s: agent.update(k, s, env.default_params, hp))
    for i in range(12):
        state, _ = update(jax.random.PRNGKey(i), state)
    stored = jax.tree.map(lambda x: x[:12], state.buffer.data)
    greedy = agent.act(start_params, stored.obs, jax.random.PRNGKey(0), True)[:, :1]
    np.testing.assert_allclose(stored.action[:, :1], greedy, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(state.params.protagonist)))
    assert not np.allclose(stored.action[:, 1:], 0.0)  # the adversary explores
