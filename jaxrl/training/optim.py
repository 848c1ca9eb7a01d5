"""Optimiser built so every scalar (learning rate, grad-norm clip) can be traced.

The learning rate is applied outside optax so a sweep over it, and its
annealing schedule, are plain traced arithmetic (no recompilation per value).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree


def make_optimizer(max_grad_norm, adam_eps: float = 1e-5) -> optax.GradientTransformation:
    """Global-norm clipping then Adam's scaling (no learning rate: see :func:`apply_gradients`).

    ``max_grad_norm`` may be a traced scalar; the optimiser *state* does not
    depend on it, so ``init`` can be called with any value.
    """
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.scale_by_adam(eps=adam_eps))


def apply_gradients(params, opt_state, grads, learning_rate, max_grad_norm, adam_eps: float = 1e-5):
    """One optimiser step ``params - lr * adam(clip(grads))`` (``adam_eps`` as given to :func:`make_optimizer`).

    Returns:
        ``(params, opt_state, grad_norm)`` with the pre-clipping global norm.
    """
    updates, opt_state = make_optimizer(max_grad_norm, adam_eps).update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p - learning_rate * u, params, updates)
    return params, opt_state, global_norm(grads)


def global_norm(tree) -> jax.Array:
    """``sqrt(sum of squares)`` over every leaf."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def linear_anneal(initial, update_step, num_updates):
    """``initial * (1 - update_step / num_updates)``: CleanRL / PPO's linear decay."""
    return initial * (1.0 - update_step / num_updates)


def ravel_adam_state(opt_state):
    """The :func:`make_optimizer` state with Adam's moments as flat vectors (``ravel_pytree`` order)."""
    clip_state, adam = opt_state
    return clip_state, adam._replace(mu=ravel_pytree(adam.mu)[0], nu=ravel_pytree(adam.nu)[0])


def unravel_adam_state(opt_state, unravel):
    """Inverse of :func:`ravel_adam_state` given the parameters' ``unravel``."""
    clip_state, adam = opt_state
    return clip_state, adam._replace(mu=unravel(adam.mu), nu=unravel(adam.nu))
