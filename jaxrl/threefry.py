"""jax's Threefry PRNG lowered without a loop on CPU: the same random bits, far fewer XLA:CPU kernels.

On CPU jax lowers the Threefry-2x32 hash behind every ``jax.random`` call as
a ``fori_loop`` over its five groups of four rounds (it compiles faster). A
loop in a compiled XLA:CPU program runs as a sequence of small kernels per
trip, so every key split and every draw costs a few microseconds of
bookkeeping. Single-environment off-policy training makes dozens of such
calls per iteration (each env step splits keys and draws its reset state),
which made them a large share of a DQN CartPole iteration. Written out
straight (as jax already does on GPU) the hash fuses into a few kernels; the
bits are the same, so results do not change, only compile time grows a little.

:func:`unroll_threefry_on_cpu` installs this lowering for the process; the
training driver calls it, and a notebook can too.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # Salmon et al. 2011, Threefry-2x32
KEY_PARITY = np.uint32(0x1BD11BDA)


def rotate_left(x, bits: int):
    """``x`` (uint32) rotated left by ``bits``."""
    return lax.shift_left(x, np.uint32(bits)) | lax.shift_right_logical(x, np.uint32(32 - bits))


def threefry2x32(key1, key2, count1, count2):
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), as jax computes it, written out.

    Args:
        key1, key2: uint32 arrays, the two key words.
        count1, count2: uint32 arrays, the two counter words (all four broadcast to one shape).

    Returns:
        ``(y1, y2)``: uint32 arrays of the broadcast shape.
    """
    keys = (key1, key2, key1 ^ key2 ^ KEY_PARITY)
    x0, x1 = count1 + keys[0], count2 + keys[1]
    for group in range(5):
        for bits in ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = x0 ^ rotate_left(x1, bits)
        # Key injection after every four rounds.
        x0 = x0 + keys[(group + 1) % 3]
        x1 = x1 + keys[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def unroll_threefry_on_cpu() -> None:
    """Lowers ``jax.random``'s Threefry on CPU with :func:`threefry2x32` (idempotent, process-wide)."""
    from jax.extend.random import threefry2x32_p
    from jax.interpreters import mlir

    mlir.register_lowering(threefry2x32_p, mlir.lower_fun(
        lambda k1, k2, x1, x2: threefry2x32(*jnp.broadcast_arrays(k1, k2, x1, x2)), multiple_results=True),
        platform="cpu")
