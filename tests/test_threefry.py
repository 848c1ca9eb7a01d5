"""The loop-free Threefry lowering gives jax.random's bits exactly."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from jaxrl.threefry import threefry2x32


def test_known_answers_of_threefry_2x32_20():
    # Random123's known-answer vectors for Threefry-2x32 with 20 rounds: (key, counter) -> output.
    cases = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for key, count, expected in cases:
        out = threefry2x32(*(jnp.uint32(v) for v in key + count))
        assert [int(v) for v in out] == list(expected)


def test_equals_jax_threefry_on_many_counters():
    key = jnp.array([0x12345678, 0x9ABCDEF0], jnp.uint32)
    count = jnp.arange(1000, dtype=jnp.uint32)
    expected = np.asarray(threefry_2x32(key, count))  # jax's own (looped on CPU) lowering, in this process
    y1, y2 = jax.jit(threefry2x32)(key[0], key[1], count[:500], count[500:])
    np.testing.assert_array_equal(np.concatenate([y1, y2]), expected)


def test_installed_lowering_keeps_jax_random_bits_and_drops_the_loop():
    # In a fresh process: install it process-wide, then jax.random gives the bits the default lowering gave.
    code = (
        "import jax, numpy as np\n"
        "f = lambda k: (jax.random.split(k, 3), jax.random.randint(k, (4,), 0, 10000))\n"
        "k = jax.random.PRNGKey(42)\n"
        "before = [np.asarray(x) for x in jax.jit(f)(k)]\n"
        "from jaxrl.threefry import unroll_threefry_on_cpu\n"
        "unroll_threefry_on_cpu(); jax.clear_caches()\n"
        "g = lambda k: (jax.random.split(k, 3), jax.random.randint(k, (4,), 0, 10000))\n"
        "after = [np.asarray(x) for x in jax.jit(g)(k)]\n"
        "assert all(np.array_equal(a, b) for a, b in zip(before, after)), (before, after)\n"
        "assert 'while' not in jax.jit(g).lower(k).as_text()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"JAX_PLATFORMS": "cpu", **os.environ})
    assert proc.returncode == 0, proc.stderr[-2000:]
