"""Scalar schedules as traced arithmetic (sweepable start / end / duration, no recompilation)."""
from __future__ import annotations

import jax.numpy as jnp


def linear_schedule(start, end, duration, step):
    """Linear interpolation from ``start`` at ``step = 0`` to ``end`` at ``step = duration``, then ``end``.

    The epsilon-greedy exploration schedule of DQN (Mnih et al. 2015) and
    CleanRL's ``linear_schedule``. All arguments may be traced scalars (or
    arrays that broadcast); ``duration <= 0`` gives ``end`` at once.

    Args:
        start, end: values at the two ends.
        duration: steps to go from ``start`` to ``end`` (e.g. ``exploration_fraction * total_steps``).
        step: current step (float or int).

    Returns:
        float32 value, same shape as the broadcast arguments.
    """
    step = jnp.asarray(step, jnp.float32)
    duration = jnp.asarray(duration, jnp.float32)
    fraction = jnp.clip(step / jnp.maximum(duration, 1e-12), 0.0, 1.0)
    fraction = jnp.where(duration > 0, fraction, 1.0)
    return jnp.asarray(start, jnp.float32) + fraction * (jnp.asarray(end, jnp.float32) - jnp.asarray(start, jnp.float32))
