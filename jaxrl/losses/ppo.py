"""PPO's clipped surrogate and (optionally clipped) value loss: small pure functions."""
from __future__ import annotations

import jax.numpy as jnp


def clipped_surrogate_loss(log_ratio, advantages, clip_eps):
    """PPO-clip policy loss ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))``.

    Args:
        log_ratio: ``[N]`` log pi_new(a|s) - log pi_old(a|s).
        advantages: ``[N]``.
        clip_eps: scalar.
    """
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def value_loss(values, old_values, targets, clip_eps, clip: bool):
    """``0.5 * mean((V - target)^2)``; with ``clip``, the pessimistic max with the
    clipped prediction ``old + clip(V - old, -eps, eps)`` (PPO2-style value clipping).

    Args:
        values, old_values, targets: ``[N]``.
    """
    unclipped = (values - targets) ** 2
    if not clip:
        return 0.5 * jnp.mean(unclipped)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, (clipped_values - targets) ** 2))


def normalize(x, eps: float = 1e-8):
    """``(x - mean) / (std + eps)`` over all elements."""
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)
