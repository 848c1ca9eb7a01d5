"""Generalised advantage estimation with truncation handled correctly."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def gae_advantages(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """GAE over a rollout, bootstrapping through time-limit truncation.

    Args:
        rewards: ``[T, ...]`` reward of step t.
        values: ``[T, ...]`` V(obs_t).
        next_values: ``[T, ...]`` V of the observation step t actually led to
            (the true final observation when the episode ended at t, before the
            auto-reset). For t < T-1 without an episode end this is V(obs_{t+1}).
        terminated: ``[T, ...]`` bool, step t reached a terminal state: no bootstrap.
        done: ``[T, ...]`` bool, the episode ended at t (terminated or truncated):
            the advantage recursion stops, so credit does not flow across episodes.
        gamma, gae_lambda: scalars (may be traced).

    Returns:
        ``(advantages, returns)``, both ``[T, ...]``; ``returns = advantages + values``
        are the value targets.
    """
    not_terminated = 1.0 - terminated.astype(values.dtype)
    not_done = 1.0 - done.astype(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(carry, x):
        delta, nd = x
        adv = delta + gamma * gae_lambda * nd * carry
        return adv, adv

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values
