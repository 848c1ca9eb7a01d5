"""Sparse initialisation (Elsayed et al. 2024): LeCun-uniform weights with a fraction of each unit's inputs zeroed."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def sparse_init(sparsity: float = 0.9):
    """A flax kernel initialiser: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``ceil(sparsity * fan_in)`` inputs of
    every output unit set to zero (chosen at random per unit), as the reference's ``sparse_init``.

    Dense kernels are ``[fan_in, fan_out]``; convolution kernels ``[h, w, c_in, c_out]`` (fan-in ``h w c_in``).
    """

    def init(key, shape, dtype=jnp.float32):
        fan_in = math.prod(shape[:-1])
        fan_out = shape[-1]
        key_values, key_mask = jax.random.split(key)
        bound = 1.0 / math.sqrt(fan_in)
        values = jax.random.uniform(key_values, (fan_in, fan_out), dtype, -bound, bound)
        num_zeros = int(math.ceil(sparsity * fan_in))
        # Per output unit, a random permutation of its inputs: the first num_zeros are zeroed.
        ranks = jnp.argsort(jax.random.uniform(key_mask, (fan_out, fan_in)), axis=1).argsort(axis=1).T  # [fan_in, fan_out]
        return jnp.where(ranks < num_zeros, 0.0, values).reshape(shape).astype(dtype)

    return init
