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


RULES = ("obgd", "adaptive_obgd", "sgd", "adam")


class ObGDState(NamedTuple):
    """Attributes: trace ``e``, second moment ``v`` and first moment ``m`` (zeros where a rule does not use them),
    like the parameters; ``count`` int32 steps taken (bias corrections)."""

    trace: Any
    v: Any
    count: jax.Array
    m: Any = ()


def obgd_init(params, rule: str | None = None) -> ObGDState:
    """Zero trace and moments. ``rule`` (one of :data:`RULES`) keeps only the moments that rule uses (``v`` for
    adaptive_obgd and adam, ``m`` for adam; ``()`` otherwise): at 1024 seeds the unused ones would be gigabytes of
    zeros carried through every step. None keeps both (any rule can step it)."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    v = zeros if rule in (None, "adaptive_obgd", "adam") else ()
    m = zeros if rule in (None, "adam") else ()
    return ObGDState(zeros, v, jnp.zeros((), jnp.int32), m)


def trace_step(params, state: ObGDState, grads, delta, reset, lr, gamma, lamda, kappa, rule: str = "obgd"):
    """One step of the trace update ``rule`` (static): ``obgd`` / ``adaptive_obgd`` (:func:`obgd_step`), or the
    classic streaming updates the paper's "stream barrier" compares against: ``sgd`` (``theta += lr delta e``, no
    bound) and ``adam`` (Adam on ``-delta e`` as the gradient, beta 0.9 / 0.999). Returns ``(params, state, step)``."""
    if rule in ("obgd", "adaptive_obgd"):
        return obgd_step(params, state, grads, delta, reset, lr, gamma, lamda, kappa, adaptive=rule == "adaptive_obgd")
    count = state.count + 1
    trace = jax.tree.map(lambda e, g: gamma * lamda * e + g, state.trace, grads)
    m, v = state.m, state.v
    if rule == "sgd":
        params = jax.tree.map(lambda p, e: p + lr * delta * e, params, trace)
    else:
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = jax.tree.map(lambda m, e: b1 * m - (1 - b1) * delta * e, state.m, trace)
        v = jax.tree.map(lambda v, e: b2 * v + (1 - b2) * (delta * e) ** 2, state.v, trace)
        c1, c2 = 1.0 - b1 ** count.astype(jnp.float32), 1.0 - b2 ** count.astype(jnp.float32)
        params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
    trace = jax.tree.map(lambda e: jnp.where(reset, jnp.zeros_like(e), e), trace)
    return params, ObGDState(trace, v, count, m), jnp.asarray(lr, jnp.float32)


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
    return params, ObGDState(trace, v, count, state.m), step_size
