"""A uniform replay buffer as a pytree of fixed-size arrays (a ring buffer).

Everything is a pure function of the buffer value, so the buffer is part of an
agent's state: it is vmapped over seeds, carried through ``lax.scan`` and
checkpointed with the rest of the run. Capacity and item shapes are static;
the fill level is traced.

Sampling draws ``batch_size`` *distinct* items uniformly among the stored ones
(no duplicates inside a batch), by drawing with replacement and redrawing the
positions that repeat an earlier one until none do. Redrawing only depends on
which positions collide, never on the item labels, so the procedure commutes
with any relabelling of the stored items and every ``batch_size``-subset is
equally likely. While the buffer holds many more items than a batch, one or
two rounds suffice, and a round costs ``O(batch_size^2)`` or
``O(batch_size log batch_size)``, never ``O(capacity)``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    """Attributes:
    data: pytree of arrays ``[capacity, ...]``.
    insert_pos: int32, slot the next item goes to.
    size: int32, number of valid items (``<= capacity``).
    """

    data: Any
    insert_pos: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init_buffer(example_item, capacity: int) -> ReplayBuffer:
    """Empty buffer for items shaped like ``example_item`` (one item, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, items) -> ReplayBuffer:
    """Writes a batch ``items`` (leaves ``[B, ...]``, ``B <= capacity``), overwriting the oldest when full."""
    capacity = buffer.capacity
    batch = jax.tree.leaves(items)[0].shape[0]
    if batch > capacity:
        raise ValueError(f"cannot add {batch} items at once to a replay buffer of capacity {capacity}")
    slots = (buffer.insert_pos + jnp.arange(batch, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda store, x: store.at[slots].set(x.astype(store.dtype)), buffer.data, items)
    return ReplayBuffer(
        data,
        (buffer.insert_pos + batch) % capacity,
        jnp.minimum(buffer.size + batch, capacity).astype(jnp.int32),
    )


def can_sample(buffer: ReplayBuffer, batch_size: int) -> jax.Array:
    """True once the buffer holds at least ``batch_size`` distinct items."""
    return buffer.size >= batch_size


PAIRWISE_REPEATS_MAX_BATCH = 512  # above this the [B, B] comparison costs more than a sort


def earlier_repeats(idx) -> jax.Array:
    """Marks every position whose index already occurs at an earlier position.

    Two exact ways give the same marks: for small batches a ``[B, B]`` comparison
    against the earlier positions (on CPU about twice as fast as the sort inside
    the sampler's redraw loop at 128-512 items: no sort and no scatter); for
    large ones a stable sort, which stays ``O(B log B)`` in time and memory.

    Args:
        idx: int ``[B]``.

    Returns:
        bool ``[B]``.
    """
    batch_size = idx.shape[0]
    if batch_size <= PAIRWISE_REPEATS_MAX_BATCH:
        positions = jnp.arange(batch_size)
        earlier = positions[None, :] < positions[:, None]  # [i, j]: j comes before i
        return jnp.any((idx[:, None] == idx[None, :]) & earlier, axis=1)
    order = jnp.argsort(idx, stable=True)
    sorted_idx = idx[order]
    dup_sorted = jnp.concatenate([jnp.zeros((1,), bool), sorted_idx[1:] == sorted_idx[:-1]])
    return jnp.zeros_like(dup_sorted).at[order].set(dup_sorted)


def sample_indices(key, size, batch_size: int) -> jax.Array:
    """``batch_size`` distinct uniform indices in ``[0, size)`` (``size`` traced, ``>= batch_size``).

    Returns:
        int32 ``[batch_size]``.
    """
    size = jnp.maximum(size, batch_size)  # an underfull buffer is guarded by can_sample; keep the loop finite

    def draw(key, shape):
        return jax.random.randint(key, shape, 0, size, dtype=jnp.int32)

    def cond(carry):
        _, _, dup = carry
        return jnp.any(dup)

    def body(carry):
        key, idx, dup = carry
        key, sub = jax.random.split(key)
        idx = jnp.where(dup, draw(sub, idx.shape), idx)
        return key, idx, earlier_repeats(idx)

    key, sub = jax.random.split(key)
    idx = draw(sub, (batch_size,))
    _, idx, _ = jax.lax.while_loop(cond, body, (key, idx, earlier_repeats(idx)))
    return idx


def sample(key, buffer: ReplayBuffer, batch_size: int):
    """A batch of ``batch_size`` distinct stored items (leaves ``[batch_size, ...]``).

    Only meaningful when :func:`can_sample`; the caller gates learning on it.
    """
    idx = sample_indices(key, buffer.size, batch_size)
    return jax.tree.map(lambda store: store[idx], buffer.data)


def add_masked(buffer: ReplayBuffer, items, keep) -> ReplayBuffer:
    """Writes the items of a batch where ``keep`` is True, in order, overwriting the oldest when full.

    Args:
        items: leaves ``[B, ...]``; keep: bool ``[B]`` (at most ``capacity`` of them True: the caller
            sizes the buffer so, e.g. ``capacity >= B``).
    """
    capacity = buffer.capacity
    keep = keep.astype(jnp.int32)
    offsets = jnp.cumsum(keep) - keep  # position of each kept item among the kept ones
    slots = jnp.where(keep > 0, (buffer.insert_pos + offsets) % capacity, capacity)  # capacity: dropped
    data = jax.tree.map(lambda store, x: store.at[slots].set(x.astype(store.dtype), mode="drop"), buffer.data, items)
    count = jnp.sum(keep)
    return ReplayBuffer(data, ((buffer.insert_pos + count) % capacity).astype(jnp.int32),
                        jnp.minimum(buffer.size + count, capacity).astype(jnp.int32))
