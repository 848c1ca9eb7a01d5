"""Q(lambda) returns over a rollout (Peng's Q(lambda) as used by PQN, Gallici et al. 2024)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def q_lambda_returns(rewards, next_values, terminated, done, gamma, q_lambda):
    """Lambda-returns that mix the greedy bootstrap with the longer return, computed backwards.

    ``G_t = r_t + gamma * (1 - terminated_t) * ((1 - lambda) * next_values_t + lambda * N_t)``
    with ``N_t = G_{t+1}`` while the episode goes on and ``N_t = next_values_t``
    when the episode ended at ``t`` (truncation: bootstrap from the true final
    observation) or at the rollout's last step. ``lambda = 0`` is the one-step
    target ``r_t + gamma * max_a Q(s_{t+1}, a)``; ``lambda = 1`` is the
    discounted return to the end of the episode (or rollout, then bootstrapped).

    Args:
        rewards: ``[T, ...]`` reward of step t.
        next_values: ``[T, ...]`` ``max_a Q(s', a)`` of the observation step t
            actually led to (the true final observation when the episode ended
            at t, before the auto-reset).
        terminated: ``[T, ...]`` bool, step t reached a terminal state: no bootstrap.
        done: ``[T, ...]`` bool, the episode ended at t (terminated or truncated):
            the return does not flow back across episodes.
        gamma, q_lambda: scalars (may be traced).

    Returns:
        ``[T, ...]`` regression targets for ``Q(s_t, a_t)``.
    """
    not_terminated = 1.0 - terminated.astype(next_values.dtype)

    def backward(next_return, x):
        reward, next_value, nt, d = x
        continuation = jnp.where(d, next_value, next_return)
        ret = reward + gamma * nt * ((1.0 - q_lambda) * next_value + q_lambda * continuation)
        return ret, ret

    # Seeding the carry with the last step's greedy value makes the last step a one-step target.
    _, returns = jax.lax.scan(backward, next_values[-1], (rewards, next_values, not_terminated, done), reverse=True)
    return returns
