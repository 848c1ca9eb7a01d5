"""Orthogonal initialisation without LAPACK.

flax's ``orthogonal`` calls LAPACK's QR. Inside a vmapped, jitted init on XLA:CPU
(jax 0.10), batched QR custom calls split their batch over the intra-op thread
pool while running on it; two of them scheduled concurrently on a 2-thread pool
each wait for work only the other's thread could run, and the program hangs
forever with every thread idle (seen in gdb: both pool threads inside
``jax::ParallelBatchMap`` of ``QrFactorization``). Gram-Schmidt written in
``jnp`` has no custom call, vectorises under ``vmap`` like any other op, and
yields the same distribution (Q of the QR decomposition with a positive
diagonal of R, as flax's sign correction gives).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def gram_schmidt(a: jax.Array) -> jax.Array:
    """Orthonormalises the columns of ``a`` ``[m, n]`` (``m >= n``): Q of ``a = QR`` with ``diag(R) > 0``.

    Classical Gram-Schmidt applied twice per column ("twice is enough"), which is
    orthogonal to float32 precision for the well-conditioned Gaussian matrices
    used at initialisation.
    """
    m, n = a.shape
    columns = jnp.arange(n)

    def body(j, q):
        v = q[:, j]
        for _ in range(2):
            coeffs = jnp.where(columns < j, q.T @ v, 0.0)
            v = v - q @ coeffs
        v = v / jnp.linalg.norm(v)
        return q.at[:, j].set(v)

    return jax.lax.fori_loop(0, n, body, a)


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """Drop-in for ``flax.linen.initializers.orthogonal`` that never calls LAPACK."""

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError("orthogonal initialisation needs at least 2 dimensions")
        n_rows = int(np.prod(shape)) // shape[column_axis]
        n_cols = shape[column_axis]
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        a = jax.random.normal(key, tall, jnp.float32)
        q = gram_schmidt(a)
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,))
        q = jnp.moveaxis(q, -1, column_axis)
        return (scale * q).astype(dtype)

    return init
