"""The linear (epsilon) schedule on hand-computed values."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.training.schedules import linear_schedule


def test_linear_schedule_hand_values():
    # 1.0 -> 0.05 over 100 steps: slope -0.0095 per step, then constant.
    steps = jnp.array([0, 10, 50, 100, 101, 10_000])
    np.testing.assert_allclose(linear_schedule(1.0, 0.05, 100, steps), [1.0, 0.905, 0.525, 0.05, 0.05, 0.05], rtol=1e-6)


def test_linear_schedule_increasing_and_zero_duration():
    np.testing.assert_allclose(linear_schedule(0.0, 2.0, 4, jnp.arange(6)), [0.0, 0.5, 1.0, 1.5, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(linear_schedule(1.0, 0.1, 0, jnp.arange(3)), [0.1, 0.1, 0.1], rtol=1e-6)


def test_linear_schedule_is_traced_and_vmappable():
    starts = jnp.array([1.0, 0.5])
    out = jax.jit(jax.vmap(lambda s: linear_schedule(s, 0.0, 10.0, 5)))(starts)
    np.testing.assert_allclose(out, [0.5, 0.25], rtol=1e-6)
