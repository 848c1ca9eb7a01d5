"""Novelty search (Lehman & Stanley 2011): k-nearest-neighbour novelty and an on-device archive.

An individual's novelty is the mean Euclidean distance from its behaviour
characterisation to its ``k`` nearest neighbours among the rest of the current
population and the archive. The archive is a fixed-capacity ring buffer of
past behaviours carried in the (checkpointed) program state.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class NoveltyArchive(NamedTuple):
    """Attributes:
    behaviours: ``[K, B]`` stored characterisations (rows past ``size`` are unused).
    size: number of filled rows (at most ``K``).
    next_index: the row the next insertion writes (oldest first once full).
    """

    behaviours: jax.Array
    size: jax.Array
    next_index: jax.Array


def archive_init(capacity: int, behaviour_dim: int) -> NoveltyArchive:
    return NoveltyArchive(jnp.zeros((capacity, behaviour_dim), jnp.float32), jnp.zeros((), jnp.int32),
                          jnp.zeros((), jnp.int32))


def knn_novelty(behaviours: jax.Array, archive: NoveltyArchive, k: int) -> jax.Array:
    """Mean distance to the ``k`` nearest other behaviours (population and archive).

    Args:
        behaviours: ``[N, B]`` of the current population.
        archive: past behaviours.
        k: neighbours (static, ``k <= N - 1``).

    Returns:
        ``[N]`` novelty (higher: more novel).
    """
    n = behaviours.shape[0]
    d_pop = jnp.linalg.norm(behaviours[:, None, :] - behaviours[None, :, :], axis=-1)  # [N, N]
    d_pop = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d_pop)  # an individual is not its own neighbour
    d_arc = jnp.linalg.norm(behaviours[:, None, :] - archive.behaviours[None, :, :], axis=-1)  # [N, K]
    filled = jnp.arange(archive.behaviours.shape[0]) < archive.size
    d_arc = jnp.where(filled[None, :], d_arc, jnp.inf)
    nearest = -jax.lax.top_k(-jnp.concatenate([d_pop, d_arc], axis=1), k)[0]  # [N, k] ascending
    return jnp.mean(nearest, axis=1)


def archive_insert(archive: NoveltyArchive, new: jax.Array) -> NoveltyArchive:
    """Writes ``new [A, B]`` at the ring position, overwriting the oldest rows once full."""
    capacity = archive.behaviours.shape[0]
    rows = (archive.next_index + jnp.arange(new.shape[0])) % capacity
    return NoveltyArchive(
        archive.behaviours.at[rows].set(new.astype(archive.behaviours.dtype)),
        jnp.minimum(archive.size + new.shape[0], capacity),
        (archive.next_index + new.shape[0]) % capacity,
    )


def add_most_novel(archive: NoveltyArchive, behaviours: jax.Array, novelty: jax.Array, count: int) -> NoveltyArchive:
    """Archives the ``count`` most novel behaviours ``[N, B]`` of a generation."""
    _, idx = jax.lax.top_k(novelty, count)
    return archive_insert(archive, behaviours[idx])
