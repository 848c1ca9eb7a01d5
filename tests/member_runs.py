"""Helpers for "a vmapped member equals the single run with its key and hyperparameters" tests."""
import jax
import jax.numpy as jnp
import numpy as np


def run_members(train, members):
    """Runs ``train`` vmapped over ``members`` (a list of ``(key, hparams)``) and once per member alone.

    Returns:
        ``(batched_state, batched_metrics, [(state, metrics) per member])``.
    """
    keys = jnp.stack([k for k, _ in members])
    hps = jax.tree.map(lambda *x: jnp.stack(x), *[h for _, h in members])
    batched_state, batched_metrics = jax.jit(jax.vmap(train))(keys, hps)
    single = jax.jit(train)
    return batched_state, batched_metrics, [single(k, h) for k, h in members]


def assert_member_close(batched_tree, i, single_tree, rtol, atol):
    """Member ``i`` of ``batched_tree`` equals ``single_tree`` leafwise, to ``rtol`` / ``atol``."""
    member = jax.tree.leaves(jax.tree.map(lambda x: x[i], batched_tree))
    single = jax.tree.leaves(single_tree)
    assert len(member) == len(single)
    for a, b in zip(member, single):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
