"""Regret estimates that score a level from one rollout on it (Jiang et al. 2021, PLR / robust PLR).

Every env of a UED rollout plays one level for the whole rollout (it
auto-resets to the same level), so a level's score is a mean over the
rollout's steps of that env.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def positive_value_loss(advantages: jax.Array) -> jax.Array:
    """Positive value loss: mean over steps of ``max(A_t, 0)`` (``A_t`` the GAE advantages).

    Args:
        advantages: ``[T, B]``.

    Returns:
        ``[B]`` scores.
    """
    return jnp.mean(jnp.maximum(advantages, 0.0), axis=0)


def best_returns(stored: jax.Array, episode_returns: jax.Array, episode_done: jax.Array) -> jax.Array:
    """Best episode return ever seen per level: the stored best and the episodes completed in this rollout.

    Args:
        stored: ``[B]`` best return kept for each level (``-inf`` for a level never finished).
        episode_returns: ``[T, B]`` return of the episode that ended at step ``t``.
        episode_done: ``[T, B]`` bool, an episode ended at step ``t``.

    Returns:
        ``[B]``.
    """
    finished = jnp.where(episode_done, episode_returns, -jnp.inf)
    return jnp.maximum(stored, jnp.max(finished, axis=0))


def max_mc(values: jax.Array, best_return: jax.Array) -> jax.Array:
    """MaxMC regret: mean over steps of ``best_return - V(s_t)``.

    A level with no finished episode yet (``best_return = -inf``) scores 0:
    nothing is known about what is achievable on it.

    Args:
        values: ``[T, B]`` critic values of the rollout's observations.
        best_return: ``[B]`` from :func:`best_returns`.

    Returns:
        ``[B]`` scores.
    """
    known = jnp.isfinite(best_return)
    return jnp.where(known, jnp.mean(jnp.where(known, best_return, 0.0) - values, axis=0), 0.0)


SCORES = ("pvl", "maxmc")
