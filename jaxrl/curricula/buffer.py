"""The level buffer of Prioritized Level Replay (Jiang et al. 2021) as a pytree of fixed capacity.

Replay distribution ``P = (1 - rho) * P_score + rho * P_staleness`` (``rho``
the staleness coefficient). With rank prioritisation ``P_score`` is
proportional to ``(1 / rank_i)^(1 / beta)`` (rank 1 = highest score, ranks
as floats); with proportional prioritisation to ``score_i^(1 / beta)``
(``beta`` the temperature). ``P_staleness`` is proportional to
``time - last_sampled_i``, where ``time`` counts levels played so far.
Empty slots have probability 0.

Insertion fills empty slots first; once full, a new level replaces the
lowest-scoring level only if its score is higher. A level without a score
(``-inf``: no episode finished on it, see :mod:`jaxrl.curricula.scores`) is
never inserted, as in JaxUED's and minimax's buffers; a replayed level that
comes back unscored keeps its slot with score ``-inf`` (lowest rank, first to
be replaced).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LevelBuffer(NamedTuple):
    """Levels and their statistics; ``C`` = capacity.

    Attributes:
        levels: the levels, every leaf with a leading ``[C]``.
        scores: ``[C]`` float32, the latest score of each level.
        max_returns: ``[C]`` float32, best episode return seen on each level (``-inf`` before any; MaxMC).
        last_sampled: ``[C]`` int32, ``time`` when each level was last inserted or replayed.
        filled: ``[C]`` bool, the slot holds a level.
        time: ``[]`` int32, levels played so far (the staleness clock).
    """

    levels: Any
    scores: jax.Array
    max_returns: jax.Array
    last_sampled: jax.Array
    filled: jax.Array
    time: jax.Array


PRIORITIZATIONS = ("rank", "proportional")


def empty_buffer(example_level, capacity: int) -> LevelBuffer:
    """A buffer of ``capacity`` empty slots shaped like ``example_level`` (one unbatched level)."""
    levels = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_level)
    return LevelBuffer(
        levels=levels,
        scores=jnp.zeros(capacity, jnp.float32),
        max_returns=jnp.full(capacity, -jnp.inf, jnp.float32),
        last_sampled=jnp.zeros(capacity, jnp.int32),
        filled=jnp.zeros(capacity, bool),
        time=jnp.zeros((), jnp.int32),
    )


def _normalize(weights: jax.Array, filled: jax.Array) -> jax.Array:
    """``weights / sum``; uniform over filled slots when every weight is 0 (e.g. all scores 0)."""
    weights = jnp.where(filled, weights, 0.0)
    total = jnp.sum(weights)
    uniform = filled / jnp.maximum(jnp.sum(filled), 1)
    return jnp.where(total > 0, weights / jnp.where(total > 0, total, 1.0), uniform)


def score_weights(scores: jax.Array, filled: jax.Array, prioritization: str, temperature) -> jax.Array:
    """``P_score [C]``: rank or proportional prioritisation with a temperature.

    Args:
        scores: ``[C]``; filled: ``[C]`` bool; temperature: ``beta > 0``, a scalar (may be traced).
        prioritization: ``"rank"`` or ``"proportional"`` (static).
    """
    if prioritization == "rank":
        # Ranks among filled slots (empty ones sort last); float so that 1 / rank is never truncated to 0.
        order = jnp.argsort(jnp.where(filled, -scores, jnp.inf))
        ranks = jnp.zeros(scores.shape, jnp.float32).at[order].set(jnp.arange(1, scores.shape[0] + 1, dtype=jnp.float32))
        weights = (1.0 / ranks) ** (1.0 / temperature)
    elif prioritization == "proportional":
        weights = jnp.maximum(scores, 0.0) ** (1.0 / temperature)
    else:
        raise ValueError(f"prioritization must be one of {PRIORITIZATIONS}, got {prioritization!r}")
    return _normalize(weights, filled)


def staleness_weights(last_sampled: jax.Array, time: jax.Array, filled: jax.Array) -> jax.Array:
    """``P_staleness [C]`` proportional to ``time - last_sampled`` over filled slots."""
    return _normalize((time - last_sampled).astype(jnp.float32), filled)


def replay_distribution(buffer: LevelBuffer, prioritization: str, temperature, staleness_coef) -> jax.Array:
    """``P [C] = (1 - rho) * P_score + rho * P_staleness``; ``temperature`` and ``staleness_coef`` (rho) are
    scalars that may be traced (swept), ``prioritization`` is static."""
    p_score = score_weights(buffer.scores, buffer.filled, prioritization, temperature)
    p_stale = staleness_weights(buffer.last_sampled, buffer.time, buffer.filled)
    return (1.0 - staleness_coef) * p_score + staleness_coef * p_stale


def sample_indices(key, probs: jax.Array, num: int) -> jax.Array:
    """``num`` slot indices ``[num]`` drawn with replacement from ``probs [C]``."""
    return jax.random.choice(key, probs.shape[0], (num,), replace=True, p=probs)


def fill_ratio(buffer: LevelBuffer) -> jax.Array:
    """Fraction of slots holding a level, ``[]``."""
    return jnp.mean(buffer.filled.astype(jnp.float32))


def insert_level(buffer: LevelBuffer, level, score, max_return, protected=None) -> LevelBuffer:
    """Inserts one level: into the first empty slot, else over the lowest score if ``score`` is higher;
    never when ``score`` is not finite (an unscored level). Slots where ``protected [C]`` (bool) is set
    are never replaced (DRED's dataset levels).

    The inserted level's staleness clock starts at ``buffer.time``.
    """
    replaceable = buffer.filled if protected is None else buffer.filled & ~protected
    full = jnp.all(buffer.filled)
    lowest = jnp.argmin(jnp.where(replaceable, buffer.scores, jnp.inf))
    slot = jnp.where(full, lowest, jnp.argmin(buffer.filled))
    write = jnp.isfinite(score) & (~full | (jnp.any(replaceable) & (score > buffer.scores[slot])))

    def put(array, value):
        return array.at[slot].set(jnp.where(write, value, array[slot]))

    return LevelBuffer(
        levels=jax.tree.map(put, buffer.levels, level),
        scores=put(buffer.scores, score),
        max_returns=put(buffer.max_returns, max_return),
        last_sampled=put(buffer.last_sampled, buffer.time),
        filled=put(buffer.filled, True),
        time=buffer.time,
    )


def insert_levels(buffer: LevelBuffer, levels, scores: jax.Array, max_returns: jax.Array, protected=None) -> LevelBuffer:
    """:func:`insert_level` for a batch (leaves ``[B, ...]``, ``scores [B]``), one after another."""

    def body(buf, item):
        return insert_level(buf, *item, protected=protected), None

    return jax.lax.scan(body, buffer, (levels, scores, max_returns))[0]


def update_replayed(buffer: LevelBuffer, indices: jax.Array, scores: jax.Array, max_returns: jax.Array) -> LevelBuffer:
    """After replaying slots ``indices [B]``: new scores, best returns kept, staleness reset to ``time``."""
    return buffer._replace(
        scores=buffer.scores.at[indices].set(scores),
        max_returns=buffer.max_returns.at[indices].max(max_returns),
        last_sampled=buffer.last_sampled.at[indices].set(buffer.time),
    )


def advance_time(buffer: LevelBuffer, num_levels: int) -> LevelBuffer:
    """Moves the staleness clock on by the ``num_levels`` levels just played."""
    return buffer._replace(time=buffer.time + num_levels)
