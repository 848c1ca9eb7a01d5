"""GAE on hand-computed trajectories, with termination, truncation and end-of-rollout bootstrap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.losses import gae_advantages

F, T_ = False, True


def _gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    terminated = jnp.asarray(terminated)
    done = terminated | jnp.asarray(truncated)
    adv, ret = gae_advantages(
        jnp.asarray(rewards, jnp.float32),
        jnp.asarray(values, jnp.float32),
        jnp.asarray(next_values, jnp.float32),
        terminated,
        done,
        gamma,
        lam,
    )
    return np.asarray(adv), np.asarray(ret)


def test_gae_termination_truncation_and_end_of_rollout_bootstrap_in_one_batch():
    """T=4, B=3, gamma=0.9, lambda=0.8 (gamma*lambda = 0.72).

    Column 0: terminated at t=1 -> no bootstrap at t=1 (V(final_obs)=5 ignored), recursion cut.
    Column 1: same numbers, truncated at t=1 -> bootstrap from V(final_obs)=5, recursion cut.
    Column 2: no episode end -> recursion runs through, bootstrap V(obs_T)=4 at t=3.
    For t without an episode end next_values[t] = values[t+1] (consistent rollout).
    """
    rewards = [[1, 1, 0], [2, 2, 1], [0, 0, 0], [1, 1, 2]]
    values = [[0.5, 0.5, 1], [1.0, 1.0, 2], [0.0, 0.0, 1], [2.0, 2.0, 0]]
    next_values = [[1.0, 1.0, 2], [5.0, 5.0, 1], [2.0, 2.0, 0], [3.0, 3.0, 4]]
    terminated = [[F, F, F], [T_, F, F], [F, F, F], [F, F, F]]
    truncated = [[F, F, F], [F, T_, F], [F, F, F], [F, F, F]]

    # Column 0 (termination at t=1):
    #   deltas: t0 = 1 + .9*1 - .5 = 1.4; t1 = 2 + 0 - 1 = 1.0; t2 = 0 + .9*2 - 0 = 1.8; t3 = 1 + .9*3 - 2 = 1.7
    #   A3 = 1.7; A2 = 1.8 + .72*1.7 = 3.024; A1 = 1.0 (cut); A0 = 1.4 + .72*1.0 = 2.12
    # Column 1 (truncation at t=1): only t1 changes: delta = 2 + .9*5 - 1 = 5.5
    #   A3 = 1.7; A2 = 3.024; A1 = 5.5 (cut); A0 = 1.4 + .72*5.5 = 5.36
    # Column 2 (no end):
    #   deltas: t0 = 0 + .9*2 - 1 = .8; t1 = 1 + .9*1 - 2 = -.1; t2 = 0 + 0 - 1 = -1; t3 = 2 + .9*4 - 0 = 5.6
    #   A3 = 5.6; A2 = -1 + .72*5.6 = 3.032; A1 = -.1 + .72*3.032 = 2.08304; A0 = .8 + .72*2.08304 = 2.2997888
    expected_adv = np.array(
        [
            [2.12, 5.36, 2.2997888],
            [1.0, 5.5, 2.08304],
            [3.024, 3.024, 3.032],
            [1.7, 1.7, 5.6],
        ]
    )
    adv, ret = _gae(rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ret, expected_adv + np.array(values), rtol=1e-6, atol=1e-6)
    # Hand-written returns too: column 0 return at the terminal step is just the reward.
    np.testing.assert_allclose(ret[:, 0], [2.62, 2.0, 3.024, 3.7], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 1], [5.86, 6.5, 3.024, 3.7], rtol=1e-6)


def test_gae_terminal_and_truncated_at_last_step():
    """An episode ending exactly at the rollout's last step: termination gives A = r - V,
    truncation gives A = r + gamma * V(final_obs) - V. gamma=0.5, lambda=0.5."""
    rewards = [[1.0, 1.0], [1.0, 1.0]]
    values = [[2.0, 2.0], [3.0, 3.0]]
    next_values = [[3.0, 3.0], [10.0, 10.0]]
    terminated = [[F, F], [T_, F]]
    truncated = [[F, F], [F, T_]]
    # col 0: A1 = 1 - 3 = -2; A0 = (1 + .5*3 - 2) + .25*(-2) = 0.5 - 0.5 = 0
    # col 1: A1 = 1 + .5*10 - 3 = 3; A0 = 0.5 + .25*3 = 1.25
    adv, _ = _gae(rewards, values, next_values, terminated, truncated, 0.5, 0.5)
    np.testing.assert_allclose(adv, [[0.0, 1.25], [-2.0, 3.0]], rtol=1e-6, atol=1e-6)


def test_gae_lambda_one_is_monte_carlo_return_minus_value():
    """gamma=0.5, lambda=1, T=3. Column 0 has no episode end (bootstrap V(obs_3)=8),
    column 1 terminates at t=1.

    col 0: G2 = 3 + .5*8 = 7; G1 = 2 + .5*7 = 5.5; G0 = 1 + .5*5.5 = 3.75 -> A = G - V = [-.25, .5, 1]
    col 1: G1 = 2 (terminal); G0 = 1 + .5*2 = 2; G2 = 7 -> A = [2-4, 2-5, 7-6] = [-2, -3, 1]
    """
    rewards = [[1, 1], [2, 2], [3, 3]]
    values = [[4, 4], [5, 5], [6, 6]]
    next_values = [[5, 5], [6, 99], [8, 8]]
    terminated = [[F, F], [F, T_], [F, F]]
    truncated = [[F, F]] * 3
    adv, ret = _gae(rewards, values, next_values, terminated, truncated, 0.5, 1.0)
    np.testing.assert_allclose(adv, [[-0.25, -2.0], [0.5, -3.0], [1.0, 1.0]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ret, [[3.75, 2.0], [5.5, 2.0], [7.0, 7.0]], rtol=1e-6, atol=1e-6)


def test_gae_lambda_zero_is_one_step_td_error():
    """gamma=0.5, lambda=0: A_t = r_t + gamma * (1 - term_t) * V(next_t) - V_t, no recursion."""
    rewards = [[1, 1], [2, 2], [3, 3]]
    values = [[4, 4], [5, 5], [6, 6]]
    next_values = [[5, 5], [6, 6], [8, 8]]
    terminated = [[F, F], [F, T_], [F, F]]
    truncated = [[F, T_], [F, F], [F, F]]
    # col 0: [1 + 2.5 - 4, 2 + 3 - 5, 3 + 4 - 6] = [-.5, 0, 1]
    # col 1: t0 truncated -> bootstraps: -.5; t1 terminated: 2 - 5 = -3; t2: 1
    adv, _ = _gae(rewards, values, next_values, terminated, truncated, 0.5, 0.0)
    np.testing.assert_allclose(adv, [[-0.5, -0.5], [0.0, -3.0], [1.0, 1.0]], rtol=1e-6, atol=1e-6)


def _reference_gae(rewards, values, next_values, terminated, done, gamma, lam):
    """Direct (non-recursive) definition: A_t = sum_k (gamma lam)^k delta_{t+k}, stopping after
    the first step at which the episode ended."""
    T, B = rewards.shape
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    adv = np.zeros((T, B))
    for b in range(B):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * deltas[k, b]
                if done[k, b]:
                    break
                weight *= gamma * lam
            adv[t, b] = total
    return adv


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_gae_matches_direct_sum_on_random_rollout(lam):
    rng = np.random.default_rng(0)
    T, B, gamma = 7, 5, 0.95
    rewards = rng.normal(size=(T, B))
    values = rng.normal(size=(T, B))
    next_values = rng.normal(size=(T, B))
    terminated = rng.random((T, B)) < 0.2
    truncated = (rng.random((T, B)) < 0.2) & ~terminated
    done = terminated | truncated
    adv, ret = _gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    expected = _reference_gae(rewards, values, next_values, terminated.astype(float), done, gamma, lam)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-5, atol=1e-5)


def test_gae_under_jit_with_traced_gamma_lambda():
    """gamma and lambda are traced hyperparameters: jit with them as arguments gives the same numbers."""
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    values = jnp.array([[4.0], [5.0], [6.0]])
    next_values = jnp.array([[5.0], [6.0], [8.0]])
    flags = jnp.zeros((3, 1), bool)
    f = jax.jit(lambda g, l: gae_advantages(rewards, values, next_values, flags, flags, g, l)[0])
    np.testing.assert_allclose(np.asarray(f(0.5, 1.0))[:, 0], [-0.25, 0.5, 1.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(f(0.5, 0.0))[:, 0], [-0.5, 0.0, 1.0], rtol=1e-6, atol=1e-6)
