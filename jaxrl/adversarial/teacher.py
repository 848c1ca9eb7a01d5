"""Curricula over the adversary's rationality: QARL's self-paced teacher (Reddi et al. 2024) and its baselines.

The adversary's entropy temperature is drawn per episode from
``Gamma(k, rate)`` with the rate fixed (mean ``k / rate``); the curriculum moves
the concentration ``k`` from ``k_0`` (50: mean 0.05, a nearly random adversary)
towards the target ``k_T`` (1: mean 0.001, nearly rational).

The self-paced teacher (Klink et al. 2021's SPDL with a Gamma context, QARL's
``SelfPacedGammaTemperatureTeacherFixedBeta``) updates once at least
``min_samples`` episodes have finished since its last update, from their
temperatures ``c_i`` and the protagonist's discounted returns ``R_i``:

    k_new = argmin_k KL(Gamma(k) || Gamma(k_T))
            s.t. KL(Gamma(k) || Gamma(k_old)) <= max_kl,
                 mean_i [p_k(c_i) / p_k_old(c_i)] R_i >= threshold,

and only when the current distribution's performance (the plain mean of the
``R_i``) already reaches ``threshold``; otherwise ``k`` stays (the reference
freezes the distribution then). The problem is one-dimensional and its
optimum lies between ``k_old`` and ``k_T`` (KL to the target is convex in
``k``), so it is solved by a dense grid over that segment: every candidate is
checked against both constraints exactly, which the reference's
``trust-constr`` solver only approaches.

Everything is a pure function of arrays: the teacher runs inside the compiled
training program, one per seed.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

NUM_CANDIDATES = 2048  # grid points on the segment [k_old, k_T]


def gamma_log_prob(x: jax.Array, concentration, rate) -> jax.Array:
    """``log Gamma(x; k, rate)`` (shape-rate parameterisation), elementwise."""
    return concentration * jnp.log(rate) + (concentration - 1.0) * jnp.log(x) - rate * x - gammaln(concentration)


def gamma_kl(k_p, k_q) -> jax.Array:
    """``KL(Gamma(k_p, b) || Gamma(k_q, b))`` for equal rates (the rate cancels)."""
    return (k_p - k_q) * digamma(k_p) - gammaln(k_p) + gammaln(k_q)


def importance_weighted_return(k_new, k_old, rate, temperatures, returns, mask) -> jax.Array:
    """``mean_i w_i R_i`` over the ``mask``-ed samples, ``w_i = p_k_new(c_i) / p_k_old(c_i)``.

    Args:
        k_new: ``[K]`` candidate concentrations (or a scalar); temperatures, returns, mask: ``[N]``.
    Returns:
        ``[K]`` (or a scalar).
    """
    k_new = jnp.asarray(k_new)
    c = jnp.maximum(temperatures, 1e-30)
    log_w = gamma_log_prob(c, k_new[..., None], rate) - gamma_log_prob(c, k_old, rate)
    weights = jnp.where(mask, jnp.exp(log_w), 0.0)
    return jnp.sum(weights * returns, axis=-1) / jnp.maximum(jnp.sum(mask), 1)


def self_paced_update(k_old, k_target, rate, temperatures, returns, mask, max_kl: float, threshold: float):
    """The teacher's step (module docstring): ``(k_new, performance)``, ``performance`` the masked mean return.

    ``k_new = k_old`` when the performance is below ``threshold`` or no candidate closer to the target meets both
    constraints (``k_old`` itself always does: its KL to itself is 0 and its importance weights are 1).
    """
    performance = jnp.sum(jnp.where(mask, returns, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
    fractions = jnp.linspace(0.0, 1.0, NUM_CANDIDATES)
    candidates = k_old + fractions * (k_target - k_old)  # [K], candidates[0] = k_old, candidates[-1] = k_target
    feasible = ((gamma_kl(candidates, k_old) <= max_kl)
                & (importance_weighted_return(candidates, k_old, rate, temperatures, returns, mask) >= threshold))
    feasible = feasible.at[0].set(True)
    distance = jnp.where(feasible, gamma_kl(candidates, k_target), jnp.inf)
    best = candidates[jnp.argmin(distance)]
    return jnp.where(performance >= threshold, best, k_old), performance


class TeacherState(NamedTuple):
    """The self-paced teacher of one run.

    Attributes:
        concentration: the current ``k`` (scalar).
        temperatures, returns: ``[capacity]`` episodes recorded since the last update (first ``count`` valid).
        count: episodes recorded since the last update (int32; entries past ``capacity`` are dropped).
        updates: teacher updates made (int32); performance: the mean return seen at the last update.
    """

    concentration: jax.Array
    temperatures: jax.Array
    returns: jax.Array
    count: jax.Array
    updates: jax.Array
    performance: jax.Array


def teacher_init(concentration: float, capacity: int) -> TeacherState:
    zeros = jnp.zeros((capacity,), jnp.float32)
    return TeacherState(jnp.float32(concentration), zeros, zeros, jnp.int32(0), jnp.int32(0), jnp.float32(jnp.nan))


def teacher_record(state: TeacherState, temperatures, returns, done) -> TeacherState:
    """Appends the finished episodes (``done``) of ``[N]`` candidates, in order, after the ones recorded."""
    temperatures, returns, done = (jnp.reshape(x, (-1,)) for x in (temperatures, returns, done))
    capacity = state.temperatures.shape[0]
    slots = state.count + jnp.cumsum(done) - 1
    slots = jnp.where(done & (slots < capacity), slots, capacity)  # out of range: dropped by the scatter
    return state._replace(temperatures=state.temperatures.at[slots].set(temperatures, mode="drop"),
                          returns=state.returns.at[slots].set(returns, mode="drop"),
                          count=state.count + jnp.sum(done).astype(jnp.int32))


def teacher_step(state: TeacherState, k_target, rate, max_kl: float, threshold: float, min_samples: int) -> TeacherState:
    """Updates the concentration once ``min_samples`` episodes are recorded, then empties the record."""
    capacity = state.temperatures.shape[0]
    mask = jnp.arange(capacity) < jnp.minimum(state.count, capacity)
    k_new, performance = self_paced_update(state.concentration, k_target, rate, state.temperatures, state.returns, mask,
                                           max_kl, threshold)
    ready = state.count >= min_samples
    return state._replace(concentration=jnp.where(ready, k_new, state.concentration),
                          count=jnp.where(ready, 0, state.count),
                          updates=state.updates + ready.astype(jnp.int32),
                          performance=jnp.where(ready, performance, state.performance))


def linear_concentration(k_initial, k_target, progress) -> jax.Array:
    """The linear schedule's concentration at training ``progress`` in ``[0, 1]`` (clipped)."""
    return k_initial + (k_target - k_initial) * jnp.clip(progress, 0.0, 1.0)
