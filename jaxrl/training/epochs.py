"""Epochs x shuffled minibatches of gradient steps on one batch of experience.

The update phase shared by agents that learn from a fresh rollout several
times over (PPO, PQN): each epoch draws a new permutation of the batch, cuts it
into equal minibatches and takes one optimiser step per minibatch.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jax.flatten_util import ravel_pytree

from jaxrl.training.optim import apply_gradients, ravel_adam_state, unravel_adam_state


def minibatch_epochs(key, params, opt_state, batch, loss_fn: Callable, num_epochs: int, num_minibatches: int,
                     learning_rate, max_grad_norm):
    """``num_epochs`` passes over ``batch``, one gradient step per minibatch.

    Args:
        key: PRNG key (one permutation per epoch is drawn from it).
        params, opt_state: network parameters and optimiser state
            (:func:`jaxrl.training.optim.make_optimizer`).
        batch: pytree whose leaves are ``[N, ...]``; ``num_minibatches`` must divide ``N``.
        loss_fn: ``(params, minibatch) -> (loss, aux)``, ``minibatch`` leaves
            ``[N / num_minibatches, ...]``, ``aux`` a dict of scalars.
        num_epochs, num_minibatches: static counts.
        learning_rate, max_grad_norm: scalars (may be traced).

    Returns:
        ``(params, opt_state, metrics)``; ``metrics`` holds ``aux`` and the
        pre-clipping ``grad_norm``, each ``[num_epochs, num_minibatches]``.
    """
    batch_size = jax.tree.leaves(batch)[0].shape[0]
    minibatch_size = batch_size // num_minibatches
    # One flat vector for the parameters and each Adam moment while the update runs: far fewer kernels per step.
    flat_params, unravel = ravel_pytree(params)
    flat_opt_state = ravel_adam_state(opt_state)

    def epoch(carry, epoch_key):
        params, opt_state = carry
        perm = jax.random.permutation(epoch_key, batch_size)
        minibatches = jax.tree.map(
            lambda x: jnp.take(x, perm, axis=0).reshape((num_minibatches, minibatch_size) + x.shape[1:]), batch
        )

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            grads, aux = jax.grad(lambda flat, mb: loss_fn(unravel(flat), mb), has_aux=True)(params, minibatch)
            params, opt_state, grad_norm = apply_gradients(params, opt_state, grads, learning_rate, max_grad_norm)
            return (params, opt_state), {**aux, "grad_norm": grad_norm}

        return jax.lax.scan(minibatch_step, (params, opt_state), minibatches)

    (params, opt_state), metrics = jax.lax.scan(epoch, (flat_params, flat_opt_state), jax.random.split(key, num_epochs))
    return unravel(params), unravel_adam_state(opt_state, unravel), metrics
