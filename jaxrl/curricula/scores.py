"""Regret estimates that score a level from one rollout on it (Jiang et al. 2021, PLR / robust PLR).

Every env of a UED rollout plays one level for the whole rollout (it
auto-resets to the same level). How a level's per-step quantity becomes its
score (:data:`UNFINISHED`):

* ``unscored`` (the default; JaxUED's and minimax's ``accumulate_rollout_stats``): the time
  average over each *finished* episode, averaged over the finished episodes; the steps after the
  last episode end are ignored, and a level on which no episode finished has no score
  (``-inf``), so it never enters the level buffer.
* ``rollout_mean``: the mean over all the rollout's steps, finished or not (jaxrl's earlier rule).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


UNFINISHED = ("unscored", "rollout_mean")


def completed_episode_means(x: jax.Array, done: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per env: the mean over finished episodes of each episode's time average of ``x``.

    Args:
        x: ``[T, B]`` per-step quantity.
        done: ``[T, B]`` bool, an episode ended at step ``t`` (its last step is ``t``).

    Returns:
        ``(means [B], episodes [B])``: ``means`` is 0 where ``episodes`` (finished episodes) is 0.
    """

    def step(carry, inputs):
        running, length, total, count = carry
        x_t, done_t = inputs
        running, length = running + x_t, length + 1.0
        total = total + jnp.where(done_t, running / length, 0.0)
        count = count + done_t.astype(jnp.float32)
        return (jnp.where(done_t, 0.0, running), jnp.where(done_t, 0.0, length), total, count), None

    zeros = jnp.zeros(x.shape[1:], jnp.float32)
    (_, _, total, count), _ = jax.lax.scan(step, (zeros, zeros, zeros, zeros), (x.astype(jnp.float32), done))
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), 0.0), count


def rollout_score(x: jax.Array, done: jax.Array, unfinished: str) -> jax.Array:
    """A level's score ``[B]`` from its per-step quantity ``x [T, B]`` under the :data:`UNFINISHED` rule."""
    if unfinished == "rollout_mean":
        return jnp.mean(x, axis=0)
    if unfinished != "unscored":
        raise ValueError(f"unfinished must be one of {UNFINISHED}, got {unfinished!r}")
    means, episodes = completed_episode_means(x, done)
    return jnp.where(episodes > 0, means, -jnp.inf)


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


SCORES = ("pvl", "maxmc", "grounded_l1")
