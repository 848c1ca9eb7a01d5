"""ObGD and its adaptive variant (Elsayed et al. 2024): eligibility-trace TD steps bounded against overshooting.

Not an optax transform: the step needs the TD error ``delta``. With ``e`` the
trace of the gradient of the prediction being learned (a value, a Q-value, a
log-probability plus its entropy term),

    e     <- gamma * lambda * e + grad
    step  = alpha / max(1, alpha * kappa * max(|delta|, 1) * ||e||_1)
    theta <- theta + step * delta * e

so one sample never moves the prediction past its target (the "overshooting
bound"). The adaptive variant divides each trace entry by ``sqrt(v_hat) + eps``
(``v`` an RMSProp average of ``(delta * e)^2``, bias-corrected) in both the
norm and the step. ``reset`` (an episode's end; for Q(lambda) also a
non-greedy action) zeroes the trace after the step, as the reference code does.
The reference's optimisers step ``theta -= step * delta * e`` on gradients of
the negated prediction; this is the same update written on the prediction.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ObGDState(NamedTuple):
    """Attributes: trace ``e`` and second moment ``v`` (zeros, unused by plain ObGD), both like the parameters;
    ``count`` int32 steps taken (the adaptive variant's bias correction)."""

    trace: Any
    v: Any
    count: jax.Array


def obgd_init(params) -> ObGDState:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return ObGDState(zeros, zeros, jnp.zeros((), jnp.int32))


def obgd_step(params, state: ObGDState, grads, delta, reset, lr, gamma, lamda, kappa, adaptive: bool = False,
              beta2: float = 0.999, eps: float = 1e-8):
    """One ObGD step.

    Args:
        params / grads: pytrees alike; ``grads`` of the prediction (not of a loss).
        delta: scalar TD error; reset: scalar bool, zero the trace after the step.
        lr, gamma, lamda, kappa: scalars (traced: sweepable). adaptive: static, AdaptiveObGD.

    Returns:
        ``(params, state, step_size)``: ``step_size`` is the effective alpha (``<= lr``).
    """
    count = state.count + 1
    trace = jax.tree.map(lambda e, g: gamma * lamda * e + g, state.trace, grads)
    if adaptive:
        v = jax.tree.map(lambda v, e: beta2 * v + (1.0 - beta2) * (delta * e) ** 2, state.v, trace)
        correction = 1.0 - beta2 ** count.astype(jnp.float32)
        scale = jax.tree.map(lambda v: 1.0 / (jnp.sqrt(v / correction) + eps), v)
    else:
        v = state.v
        scale = jax.tree.map(lambda e: 1.0, trace)
    z_sum = sum(jnp.sum(jnp.abs(e * s)) for e, s in zip(jax.tree.leaves(trace), jax.tree.leaves(scale)))
    bound = jnp.maximum(jnp.abs(delta), 1.0) * z_sum * lr * kappa
    step_size = lr / jnp.maximum(bound, 1.0)
    params = jax.tree.map(lambda p, e, s: p + step_size * delta * e * s, params, trace, scale)
    trace = jax.tree.map(lambda e: jnp.where(reset, jnp.zeros_like(e), e), trace)
    return params, ObGDState(trace, v, count), step_size
