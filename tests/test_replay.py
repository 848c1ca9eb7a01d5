"""Replay buffer: ring-buffer bookkeeping at any capacity and distinct uniform sampling."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.buffers import add, can_sample, init_buffer, sample, sample_indices
from jaxrl.buffers.replay import PAIRWISE_REPEATS_MAX_BATCH, earlier_repeats


def _item():
    return {"obs": jnp.zeros((2,)), "action": jnp.zeros((), jnp.int32)}


def _batch(values):
    values = jnp.asarray(values)
    return {"obs": jnp.stack([values, -values], -1).astype(jnp.float32), "action": values.astype(jnp.int32)}


@pytest.mark.parametrize("capacity", [1, 4, 5, 7])
def test_ring_buffer_wraps_and_reports_full_at_any_capacity(capacity):
    buffer = init_buffer(_item(), capacity)
    written = []
    for start in range(0, 9, 3):  # three batches of 3 (or of 1 when capacity is 1)
        batch = list(range(start, start + min(3, capacity)))
        buffer = jax.jit(add)(buffer, _batch(batch))
        written += batch
        expected_size = min(len(written), capacity)
        assert int(buffer.size) == expected_size
        assert int(buffer.insert_pos) == len(written) % capacity
        # The stored items are exactly the newest `capacity` written, each at slot (write index mod capacity).
        stored = np.asarray(buffer.data["action"])
        for i, value in enumerate(written[-capacity:]):
            slot = (len(written) - len(written[-capacity:]) + i) % capacity
            assert stored[slot] == value
        np.testing.assert_array_equal(np.asarray(buffer.data["obs"])[:, 1], -np.asarray(buffer.data["obs"])[:, 0])


def test_adding_more_than_capacity_at_once_is_refused():
    with pytest.raises(ValueError, match="capacity 2"):
        add(init_buffer(_item(), 2), _batch([1, 2, 3]))


def test_can_sample_counts_valid_items():
    buffer = add(init_buffer(_item(), 10), _batch([1, 2, 3]))
    assert bool(can_sample(buffer, 3)) and not bool(can_sample(buffer, 4))


def test_samples_are_distinct_and_only_valid_even_when_the_batch_is_the_whole_buffer():
    buffer = add(init_buffer(_item(), 16), _batch(np.arange(6) + 100))  # 6 valid of 16
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    batches = jax.jit(jax.vmap(lambda k: sample(k, buffer, 6)))(keys)
    actions = np.asarray(batches["action"])
    for row in actions:
        assert sorted(row.tolist()) == list(range(100, 106))


def test_sampling_is_uniform_over_subsets():
    # 5 items, batches of 2: each of the 10 pairs has probability 1/10.
    keys = jax.random.split(jax.random.PRNGKey(1), 20_000)
    idx = np.asarray(jax.jit(jax.vmap(lambda k: sample_indices(k, jnp.int32(5), 2)))(keys))
    assert np.all(idx[:, 0] != idx[:, 1]) and idx.min() == 0 and idx.max() == 4
    counts = {pair: 0 for pair in itertools.combinations(range(5), 2)}
    for a, b in idx:
        counts[tuple(sorted((int(a), int(b))))] += 1
    freq = np.array(list(counts.values())) / len(idx)
    # 20k draws: the standard error of each frequency is ~0.002; 0.01 is five of them.
    np.testing.assert_allclose(freq, 0.1, atol=0.01)
    # Each position is marginally uniform too (no order bias from redrawing).
    np.testing.assert_allclose(np.bincount(idx[:, 1], minlength=5) / len(idx), 0.2, atol=0.01)


def test_both_repeat_markers_mark_exactly_the_later_copies():
    # Hand-computed: positions 2 (repeats 0), 4 and 5 (repeat 1) are marked, first occurrences are not.
    small = jnp.array([7, 3, 7, 9, 3, 3])
    np.testing.assert_array_equal(np.asarray(earlier_repeats(small)), [0, 0, 1, 0, 1, 1])
    # The pairwise comparison (small batches) and the sort (large ones) agree on many collisions,
    # so the sampler draws the same indices whichever one its batch size selects.
    big = np.random.default_rng(2).integers(0, 200, PAIRWISE_REPEATS_MAX_BATCH + 1).astype(np.int32)
    expected = np.array([v in big[:i] for i, v in enumerate(big)])
    np.testing.assert_array_equal(np.asarray(jax.jit(earlier_repeats)(big)), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(earlier_repeats)(big[:-1])), expected[:-1])


@pytest.mark.parametrize("batch_size", [40, PAIRWISE_REPEATS_MAX_BATCH + 8])
def test_every_item_is_included_with_probability_batch_over_size(batch_size):
    # Uniform without replacement: each of `size` items is in a batch with probability batch_size / size,
    # on both sides of the pairwise / sort switch, and never twice in one batch.
    size, draws = batch_size + batch_size // 2, 400
    keys = jax.random.split(jax.random.PRNGKey(3), draws)
    idx = np.asarray(jax.jit(jax.vmap(lambda k: sample_indices(k, jnp.int32(size), batch_size)))(keys))
    assert all(len(set(row)) == batch_size for row in idx.tolist())
    inclusion = np.bincount(idx.ravel(), minlength=size) / draws
    p = batch_size / size  # 2/3; standard error of each frequency sqrt(p(1-p)/400) ~ 0.024
    np.testing.assert_allclose(inclusion, p, atol=0.11)
    np.testing.assert_allclose(inclusion.mean(), p, atol=1e-6)  # every batch has batch_size distinct items


def test_buffer_is_a_vmappable_pytree():
    buffers = jax.vmap(lambda _: init_buffer(_item(), 8))(jnp.arange(3))
    buffers = jax.vmap(add)(buffers, jax.vmap(_batch)(jnp.arange(6).reshape(3, 2)))
    np.testing.assert_array_equal(np.asarray(buffers.size), [2, 2, 2])
    batch = jax.vmap(lambda k, b: sample(k, b, 2))(jax.random.split(jax.random.PRNGKey(0), 3), buffers)
    np.testing.assert_array_equal(np.sort(np.asarray(batch["action"]), axis=1), [[0, 1], [2, 3], [4, 5]])
