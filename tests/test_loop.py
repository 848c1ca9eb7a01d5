"""map_members: one member runs un-vmapped with the member axis kept; more members are a plain vmap."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.training.loop import map_members


def _step(state, scale, offset):
    # A cond on a per-member value (a select under vmap, a branch without it) and an output
    # that depends on no mapped argument (vmap still gives it the member axis).
    value = jax.lax.cond(state["x"][0] > 0, lambda x: x * scale, lambda x: x - scale, state["x"])
    return {"x": value + offset}, {"constant": jnp.float32(offset), "sum": jnp.sum(value)}


def test_one_member_matches_vmap_and_keeps_the_member_axis():
    state = {"x": jnp.array([[1.0, -2.0]])}
    scale = jnp.array([3.0])
    expected = jax.vmap(_step, in_axes=(0, 0, None))(state, scale, 0.5)
    got = jax.jit(map_members(_step, (0, 0, None)))(state, scale, 0.5)
    assert jax.tree.map(jnp.shape, got) == jax.tree.map(jnp.shape, expected)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b)
    # Un-vmapped, so no batching appears in the program.
    text = jax.jit(map_members(_step, (0, 0, None))).lower(state, scale, 0.5).as_text()
    assert "stablehlo.case" in text or "stablehlo.if" in text  # the cond stayed a branch


def test_several_members_are_a_vmap():
    state = {"x": jnp.array([[1.0, -2.0], [-1.0, 4.0]])}
    scale = jnp.array([3.0, 2.0])
    expected = jax.vmap(_step, in_axes=(0, 0, None))(state, scale, 0.5)
    got = map_members(_step, (0, 0, None))(state, scale, 0.5)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)
