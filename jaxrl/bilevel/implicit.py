"""Implicit gradients of an inner solution, without forming a Hessian.

For an inner problem ``theta*(phi) = argmin_theta L(theta, phi)`` and an outer objective ``J(theta*)``, the
implicit function theorem gives

    dJ/dphi = - grad_theta J . (H_theta theta L)^-1 . d^2 L / d theta d phi,

evaluated at ``theta*``. Here ``w = H^-1 grad_theta J`` comes from a Neumann series of Hessian-vector products
(Lorraine et al. 2019: ``H^-1 v ~ alpha sum_{j=0..K} (I - alpha H)^j v``, convergent when the eigenvalues of
``alpha H`` lie in ``(0, 2)``), and the mixed term is one vector-Jacobian product: ``d/dphi <grad_theta L(theta,
phi), w>`` with ``w`` held fixed. Everything works on pytrees and under ``jit`` / ``vmap``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def hvp(loss: Callable, params, vector, *args):
    """``H v``: the Hessian of ``loss(params, *args)`` in ``params`` times ``vector`` (a pytree like ``params``),
    forward-over-reverse (one jvp of the gradient; the Hessian is never formed)."""
    return jax.jvp(lambda p: jax.grad(loss)(p, *args), (params,), (vector,))[1]


def neumann_inverse_hvp(hvp_fn: Callable, vector, alpha: float, num_terms: int):
    """``H^-1 v ~ alpha sum_{j=0..K} (I - alpha H)^j v`` with ``K = num_terms`` (static).

    Args:
        hvp_fn: ``v -> H v`` on pytrees shaped like ``vector``.
        vector: ``v``.
        alpha: the series' step; it converges when ``0 < alpha * eig(H) < 2`` for every eigenvalue.
        num_terms: ``K``, the terms after the first.
    """

    def term(carry, _):
        power, total = carry
        power = jax.tree.map(lambda p, hp: p - alpha * hp, power, hvp_fn(power))  # (I - alpha H)^j v
        return (power, jax.tree.map(lambda t, p: t + p, total, power)), None

    (_, total), _ = jax.lax.scan(term, (vector, vector), None, length=num_terms)
    return jax.tree.map(lambda t: alpha * t, total)


def _vdot(a, b):
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def spectral_radius(hvp_fn: Callable, vector, num_iterations: int):
    """``|lambda|_max`` of ``H`` by ``num_iterations`` power iterations from ``vector`` (a scalar; 0 when ``H v``
    vanishes). ``num_iterations`` Hessian-vector products."""

    def iteration(v, _):
        hv = hvp_fn(v)
        norm = jnp.sqrt(_vdot(hv, hv))
        return jax.tree.map(lambda x: x / jnp.maximum(norm, 1e-30), hv), norm

    norm0 = jnp.sqrt(_vdot(vector, vector))
    v0 = jax.tree.map(lambda x: x / jnp.maximum(norm0, 1e-30), vector)
    _, norms = jax.lax.scan(iteration, v0, None, length=num_iterations)
    return norms[-1]


def implicit_gradient(inner_loss: Callable, outer_objective: Callable, theta, phi, alpha, num_terms: int,
                      power_iterations: int = 0):
    """``dJ/dphi`` of ``J(theta*(phi))`` at an inner solution ``theta`` (``grad_theta inner_loss = 0`` there).

    Args:
        inner_loss: ``(theta, phi) -> scalar``, minimised by the inner problem.
        outer_objective: ``theta -> scalar``, ``J`` (no direct dependence on ``phi``).
        theta, phi: pytrees; ``theta`` the inner solution for ``phi``.
        alpha, num_terms: the Neumann series' step and length (:func:`neumann_inverse_hvp`).
        power_iterations: when > 0, the step is capped at ``1 / |lambda|_max`` of the Hessian, estimated by that
            many power iterations, so the series cannot blow up where the curvature is large (an RL objective's
            curvature grows with the returns as the agent improves).

    Returns:
        A pytree like ``phi``.
    """
    outer_grad = jax.grad(outer_objective)(theta)
    hvp_fn = lambda v: hvp(inner_loss, theta, v, phi)  # noqa: E731
    if power_iterations > 0:
        radius = jax.lax.stop_gradient(spectral_radius(hvp_fn, outer_grad, power_iterations))
        alpha = jnp.minimum(alpha, 1.0 / jnp.maximum(radius, 1e-30))
    w = neumann_inverse_hvp(hvp_fn, outer_grad, alpha, num_terms)
    w = jax.lax.stop_gradient(w)

    def mixed(phi_):  # <grad_theta L(theta, phi_), w>: its phi-gradient is (d^2 L / d theta d phi)^T w
        inner_grad = jax.grad(inner_loss)(theta, phi_)
        return _vdot(inner_grad, w)

    return jax.tree.map(lambda g: -g, jax.grad(mixed)(phi))
