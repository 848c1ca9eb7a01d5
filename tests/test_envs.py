"""Environment protocol: gymnax adapter (termination vs truncation), registry, wrappers, brax."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import Box, Discrete, EpisodeStatistics, NormalizeObservation, RescaleAction, RunningMeanStd, VecEnv
from jaxrl.envs.probes import ObservationDependentReward, OneStepDiscount, TruncatedConstantReward


def _key(i):
    return jax.random.PRNGKey(i)


# ------------------------------------------------------------------ gymnax adapter


def test_cartpole_truncation_at_time_limit():
    """With max_steps_in_episode=3 the third step is a truncation (not a termination); the
    final observation is the true next state, and obs is already the reset observation."""
    env = envs.make_raw("CartPole-v1")
    short = env.default_params.replace(max_steps_in_episode=3)
    long = env.default_params
    step = jax.jit(env.step)
    state, obs0 = env.reset(_key(0), short)
    state_long = state
    for i, action in enumerate([0, 1, 0]):
        state, ts = step(_key(10 + i), state, jnp.int32(action), short)
        state_long, ts_long = step(_key(10 + i), state_long, jnp.int32(action), long)
        assert not bool(ts.terminated)
        assert float(ts.reward) == 1.0
        # The transition itself is identical to an env without the short limit.
        np.testing.assert_array_equal(ts.final_obs, ts_long.obs)
        if i < 2:
            assert not bool(ts.truncated)
            np.testing.assert_array_equal(ts.final_obs, ts.obs)
        else:
            assert bool(ts.truncated)
            assert not np.allclose(ts.final_obs, ts.obs)
            # auto-reset: a fresh episode (time 0, CartPole's initial state is uniform in [-0.05, 0.05])
            assert int(state.time) == 0
            assert np.all(np.abs(np.asarray(ts.obs)) <= 0.05)
            assert not bool(ts_long.truncated)
    assert obs0.shape == (4,)


def test_cartpole_termination_is_not_truncation():
    """Always pushing right makes the pole fall: terminated True, truncated False, and when
    the fall happens exactly at the time limit, termination wins (truncated stays False)."""
    env = envs.make_raw("CartPole-v1")
    params = env.default_params
    step = jax.jit(env.step)
    state, _ = env.reset(_key(0), params)
    states = [state]
    for k in range(1, 100):
        state, ts = step(_key(100 + k), state, jnp.int32(1), params)
        if bool(ts.terminated):
            break
        assert not bool(ts.truncated)
        np.testing.assert_array_equal(ts.final_obs, ts.obs)
    assert bool(ts.terminated) and not bool(ts.truncated)
    fell_at = k
    x, _, theta, _ = np.asarray(ts.final_obs)
    assert abs(x) > 2.4 or abs(theta) > 12 * 2 * np.pi / 360
    assert not np.allclose(ts.final_obs, ts.obs)

    # Same run with the time limit exactly at the falling step.
    at_limit = params.replace(max_steps_in_episode=fell_at)
    state = states[0]
    for k in range(1, fell_at + 1):
        state, ts = step(_key(100 + k), state, jnp.int32(1), at_limit)
    assert bool(ts.terminated)
    assert not bool(ts.truncated)


# ------------------------------------------------------------------ registry

NON_BRAX = [n for n in envs.registered_envs() if not n.startswith("brax/")]


def _zero_action(space, num_envs):
    if isinstance(space, Discrete):
        return jnp.zeros((num_envs,), jnp.int32)
    return jnp.zeros((num_envs,) + tuple(space.shape), jnp.float32)


@pytest.mark.parametrize("name", NON_BRAX)
def test_make_every_registered_env(name):
    env = envs.make(name)
    params = env.default_params
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    assert len(obs_space.shape) == 1
    if isinstance(act_space, Box) and act_space.is_bounded:
        np.testing.assert_array_equal(act_space.low, -1.0)
        np.testing.assert_array_equal(act_space.high, 1.0)
    assert env.max_episode_steps(params) >= 1
    vec = envs.make_vec_env(env, 2)

    @jax.jit
    def reset_and_step(key):
        key_reset, key_step = jax.random.split(key)
        state, obs = vec.reset(key_reset, params)
        _, ts = vec.step(key_step, state, _zero_action(act_space, 2), params)
        return obs, ts

    obs, ts = reset_and_step(_key(0))
    assert obs.shape == (2,) + tuple(obs_space.shape) and obs.dtype == jnp.float32
    assert ts.obs.shape == obs.shape and ts.final_obs.shape == obs.shape
    assert ts.reward.shape == (2,) and ts.reward.dtype == jnp.float32
    assert ts.terminated.shape == (2,) and ts.terminated.dtype == jnp.bool_
    assert ts.truncated.shape == (2,) and ts.truncated.dtype == jnp.bool_
    assert not np.any(np.asarray(ts.terminated & ts.truncated))
    assert np.all(np.isfinite(np.asarray(ts.obs))) and np.all(np.isfinite(np.asarray(ts.reward)))
    assert set(ts.info) >= {"episode_return", "episode_length", "episode_done"}


@pytest.mark.parametrize(
    "name, suggestion",
    [("CartPole-v2", "CartPole-v1"), ("brax/hoper", "brax/hopper"), ("probe/ConstantRewrd", "probe/ConstantReward")],
)
def test_unknown_env_suggests_close_match(name, suggestion):
    with pytest.raises(envs.UnknownEnvironmentError, match="did you mean") as info:
        envs.make(name)
    assert suggestion in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_env_without_close_match():
    with pytest.raises(envs.UnknownEnvironmentError) as info:
        envs.make("definitely-not-an-environment-xyz")
    assert "did you mean" not in str(info.value)


# ------------------------------------------------------------------ wrappers


def _run_steps(vec, params, actions, key=0):
    """Resets then steps ``vec`` through ``actions [T, B, ...]`` in one jitted scan."""

    @jax.jit
    def run(key):
        key_reset, key_steps = jax.random.split(key)
        state, obs = vec.reset(key_reset, params)

        def body(state, x):
            k, a = x
            state, ts = vec.step(k, state, a, params)
            return state, ts

        state, tss = jax.lax.scan(body, state, (jax.random.split(key_steps, actions.shape[0]), actions))
        return obs, state, tss

    return run(_key(key))


def test_episode_statistics_returns_and_lengths():
    # 5-step episodes with reward 1 (time-limit truncation): return 5, length 5 at steps 5 and 10.
    env = TruncatedConstantReward()
    vec = envs.make_vec_env(env, 2)
    _, state, tss = _run_steps(vec, None, jnp.zeros((12, 2), jnp.int32))
    done = np.asarray(tss.info["episode_done"])
    expected_done = np.zeros((12, 2), bool)
    expected_done[[4, 9]] = True
    np.testing.assert_array_equal(done, expected_done)
    ret, length = np.asarray(tss.info["episode_return"]), np.asarray(tss.info["episode_length"])
    np.testing.assert_array_equal(ret[:4], 0.0)  # no episode finished yet
    np.testing.assert_array_equal(length[:4], 0)
    np.testing.assert_array_equal(ret[4:], 5.0)  # last finished episode, kept between ends
    np.testing.assert_array_equal(length[4:], 5)
    # Running counters: 12 steps = two episodes of 5 + 2 steps into the third.
    np.testing.assert_array_equal(state.episode_return, [2.0, 2.0])
    np.testing.assert_array_equal(state.episode_length, [2, 2])


def test_episode_statistics_with_varying_rewards():
    # OneStepDiscount: reward 0 then 1 -> every episode has return 1 and length 2.
    vec = envs.make_vec_env(OneStepDiscount(), 3)
    _, _, tss = _run_steps(vec, None, jnp.zeros((6, 3), jnp.int32))
    np.testing.assert_array_equal(tss.reward, np.tile([[0.0], [1.0]], (3, 3)))
    np.testing.assert_array_equal(tss.info["episode_done"], np.tile([[False], [True]], (3, 3)))
    np.testing.assert_array_equal(tss.info["episode_return"][1::2], 1.0)
    np.testing.assert_array_equal(tss.info["episode_length"][1::2], 2)
    # ObservationDependentReward: one-step episodes with return = reward = +-1.
    vec = envs.make_vec_env(ObservationDependentReward(), 4)
    _, _, tss = _run_steps(vec, None, jnp.zeros((8, 4), jnp.int32))
    np.testing.assert_array_equal(tss.info["episode_return"], tss.reward)
    np.testing.assert_array_equal(tss.info["episode_length"], 1)
    assert set(np.unique(np.asarray(tss.reward))) == {-1.0, 1.0}


def test_rescale_action_maps_unit_box_to_pendulum_bounds_and_clips():
    env = envs.make("Pendulum-v1")
    assert isinstance(env, RescaleAction)
    space = env.action_space(env.default_params)
    np.testing.assert_array_equal(space.low, [-1.0])
    np.testing.assert_array_equal(space.high, [1.0])
    raw = env.unwrapped
    raw_space = raw.action_space(raw.default_params)
    np.testing.assert_array_equal(raw_space.low, [-2.0])
    np.testing.assert_array_equal(raw_space.high, [2.0])
    mapped = env.to_env_action(jnp.array([[-1.0], [-0.5], [0.0], [0.5], [1.0], [1.5], [-3.0]]))
    np.testing.assert_allclose(mapped[:, 0], [-2.0, -1.0, 0.0, 1.0, 2.0, 2.0, -2.0], rtol=1e-6)
    # Stepping the wrapped env with a equals stepping the raw env with 2a.
    params = env.default_params
    state, _ = env.reset(_key(0), params)
    _, ts = env.step(_key(1), state, jnp.array([0.25]), params)
    _, ts_raw = raw.step(_key(1), state, jnp.array([0.5]), params)
    np.testing.assert_allclose(ts.obs, ts_raw.obs, rtol=1e-6)
    assert float(ts.reward) == pytest.approx(float(ts_raw.reward), rel=1e-6)
    _, ts_far = raw.step(_key(1), state, jnp.array([-1.0]), params)
    assert float(ts_far.reward) != pytest.approx(float(ts_raw.reward))  # the action matters


NORM_ENVS, NORM_STEPS = 4, 20


@pytest.fixture(scope="module")
def cartpole_raw_run():
    """Raw (unnormalised) CartPole observations for fixed random actions, shared by the normalisation tests."""
    env = envs.make("CartPole-v1")
    actions = jax.random.bernoulli(_key(7), shape=(NORM_STEPS, NORM_ENVS)).astype(jnp.int32)
    raw_obs0, _, raw_ts = _run_steps(envs.make_vec_env(env, NORM_ENVS), env.default_params, actions)
    return env, actions, raw_obs0, raw_ts


def test_normalize_observation_running_stats_equal_numpy(cartpole_raw_run):
    env, actions, raw_obs0, raw_ts = cartpole_raw_run
    norm_vec = envs.make_vec_env(env, NORM_ENVS, normalize_obs=True)
    assert isinstance(norm_vec, NormalizeObservation)
    norm_obs0, state, norm_ts = _run_steps(norm_vec, env.default_params, actions)
    # Seen observations: the reset batch, then each step's (post auto-reset) observation.
    seen = np.concatenate([np.asarray(raw_obs0)[None], np.asarray(raw_ts.obs)]).reshape(-1, 4).astype(np.float64)
    assert seen.shape == ((NORM_STEPS + 1) * NORM_ENVS, 4)
    stats = envs.find_obs_stats(state)
    assert stats is not None
    # The initial pseudo-count 1e-4 (mean 0, var 1) shifts the result by ~1e-4/84 relative: negligible.
    np.testing.assert_allclose(stats.mean, seen.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.var, seen.var(axis=0), rtol=1e-4, atol=1e-6)
    assert float(stats.count) == pytest.approx(1e-4 + seen.shape[0], rel=1e-6)
    # The last step's observations are normalised with the final statistics.
    expected_last = np.clip((np.asarray(raw_ts.obs[-1]) - stats.mean) / np.sqrt(stats.var + 1e-8), -10, 10)
    np.testing.assert_allclose(norm_ts.obs[-1], expected_last, rtol=1e-5, atol=1e-5)
    expected_final = np.clip((np.asarray(raw_ts.final_obs[-1]) - stats.mean) / np.sqrt(stats.var + 1e-8), -10, 10)
    np.testing.assert_allclose(norm_ts.final_obs[-1], expected_final, rtol=1e-5, atol=1e-5)
    # The reset observation is normalised with the statistics of the reset batch folded into
    # the prior (mean 0, var 1, count 1e-4). Here the prior is NOT negligible: CartPole's reset
    # variance is ~1e-3, so the prior's 1e-4 * 1 adds a few percent; use the exact formula.
    first = np.asarray(raw_obs0, np.float64)
    n, c0 = first.shape[0], 1e-4
    mean = first.mean(0) * n / (n + c0)
    var = (c0 * 1.0 + n * first.var(0) + first.mean(0) ** 2 * c0 * n / (n + c0)) / (n + c0)
    np.testing.assert_allclose(norm_obs0, (first - mean) / np.sqrt(var + 1e-8), rtol=1e-4, atol=1e-4)


def test_normalize_observation_fixed_stats_are_not_updated(cartpole_raw_run):
    env, actions, raw_obs0, raw_ts = cartpole_raw_run
    fixed = RunningMeanStd(
        mean=jnp.array([0.1, 0.0, -0.1, 0.0]), var=jnp.array([4.0, 1.0, 0.25, 1.0]), count=jnp.asarray(7.0)
    )
    vec = envs.make_vec_env(env, NORM_ENVS, normalize_obs=True, obs_stats=fixed)
    obs0, state, tss = _run_steps(vec, env.default_params, actions)
    stats = envs.find_obs_stats(state)
    for got, want in zip(stats, fixed):
        np.testing.assert_array_equal(got, want)
    scale = np.sqrt(np.asarray(fixed.var) + 1e-8)
    np.testing.assert_allclose(obs0, (np.asarray(raw_obs0) - np.asarray(fixed.mean)) / scale, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tss.obs, (np.asarray(raw_ts.obs) - np.asarray(fixed.mean)) / scale, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        tss.final_obs, (np.asarray(raw_ts.final_obs) - np.asarray(fixed.mean)) / scale, rtol=1e-6, atol=1e-7
    )


def test_vec_env_batched_params():
    """One time limit per env: env 0 is truncated every 2 steps, env 1 every 3."""
    env = envs.make("CartPole-v1")
    p = env.default_params
    batched = jax.tree.map(lambda a, b: jnp.stack([a, b]), p.replace(max_steps_in_episode=2), p.replace(max_steps_in_episode=3))
    vec = envs.make_vec_env(env, 2, batched_params=True)
    assert isinstance(vec, VecEnv) and vec.num_envs == 2
    actions = jnp.tile(jnp.array([[0], [1]], jnp.int32), (3, 2))  # 6 steps, alternating
    _, _, tss = _run_steps(vec, batched, actions)
    trunc = np.asarray(tss.truncated)
    np.testing.assert_array_equal(trunc[:, 0], [False, True, False, True, False, True])
    np.testing.assert_array_equal(trunc[:, 1], [False, False, True, False, False, True])
    assert not np.any(np.asarray(tss.terminated))
    np.testing.assert_array_equal(tss.info["episode_length"][-1], [2, 3])
    # Shared params (the default): both envs use the same limit.
    vec_shared = envs.make_vec_env(env, 2)
    _, _, tss_shared = _run_steps(vec_shared, p.replace(max_steps_in_episode=2), actions)
    np.testing.assert_array_equal(np.asarray(tss_shared.truncated), np.tile([[False], [True]], (3, 2)))


def test_episode_statistics_is_applied_before_vectorisation():
    vec = envs.make_vec_env(envs.make("CartPole-v1"), 3)
    assert isinstance(vec, VecEnv) and isinstance(vec.env, EpisodeStatistics)


# ------------------------------------------------------------------ brax


def test_brax_inverted_pendulum_truncation_and_auto_reset():
    pytest.importorskip("brax")
    env = envs.make("brax/inverted_pendulum", backend="spring", episode_length=5)
    params = env.default_params
    assert env.max_episode_steps(params) == 5
    vec = envs.make_vec_env(env, 2)
    actions = jnp.zeros((6, 2) + tuple(env.action_space(params).shape), jnp.float32)
    obs0, _, tss = _run_steps(vec, params, actions)
    assert obs0.shape == (2, 4)
    terminated, truncated = np.asarray(tss.terminated), np.asarray(tss.truncated)
    # Zero torque from a +-0.01 start: the pole stays far inside the 0.2 rad limit in 6 steps.
    assert not terminated.any()
    np.testing.assert_array_equal(truncated[:, 0], [False, False, False, False, True, False])
    np.testing.assert_array_equal(truncated[:, 1], truncated[:, 0])
    np.testing.assert_array_equal(tss.reward, 1.0)
    for t in (0, 1, 2, 3, 5):
        np.testing.assert_array_equal(tss.final_obs[t], tss.obs[t])
    # At the limit the final observation continues the episode; obs is the new episode's start.
    assert not np.allclose(tss.final_obs[4], tss.obs[4])
    assert np.abs(np.asarray(tss.final_obs[4]) - np.asarray(tss.obs[3])).max() < 0.01
    np.testing.assert_array_equal(tss.info["episode_length"][4], [5, 5])
    np.testing.assert_array_equal(tss.info["episode_return"][4], [5.0, 5.0])


def test_envs_that_download_data_are_refused():
    assert "MNISTBandit-bsuite" not in envs.registered_envs()
    with pytest.raises(envs.UnknownEnvironmentError, match="downloads a data set"):
        envs.make("MNISTBandit-bsuite")


def test_pooled_auto_reset_is_exact_unbatched_and_hands_out_the_pool_in_order_under_vmap():
    """A reset that returns its key's first word: unvectorised, the select is auto_reset exactly; vmapped over 6
    envs with reset_ratio 3 (2 starts a step), the finished envs 0, 2, 3 and 5 take starts 0, 1, 0, 1 (drawn with
    the first two envs' keys), the others keep their stepped state; with batched params every env resets from
    its own params and key."""
    from jaxrl.envs.core import auto_reset, pooled_auto_reset

    def reset(key, params):
        return jax.random.key_data(key)[..., -1].astype(jnp.float32) + params

    select = pooled_auto_reset(reset, reset_ratio=3)
    key = jax.random.PRNGKey(4)
    for done in (True, False):
        np.testing.assert_array_equal(select(jnp.asarray(done), key, 1.0, jnp.asarray(-1.0)),
                                      auto_reset(jnp.asarray(done), reset(key, 1.0), jnp.asarray(-1.0)))
    keys = jax.random.split(jax.random.PRNGKey(5), 6)
    done = jnp.array([True, False, True, True, False, True])
    stepped = -jnp.arange(1.0, 7.0)
    out = np.asarray(jax.jit(jax.vmap(select, in_axes=(0, 0, None, 0)))(done, keys, 0.5, stepped))
    starts = np.asarray(jax.vmap(reset, in_axes=(0, None))(keys[:2], 0.5))
    np.testing.assert_array_equal(out, [starts[0], -2.0, starts[1], starts[0], -5.0, starts[1]])
    params = jnp.arange(6.0)
    out = np.asarray(jax.vmap(select)(done, keys, params, stepped))
    np.testing.assert_array_equal(out, np.where(done, jax.vmap(reset)(keys, params), stepped))
