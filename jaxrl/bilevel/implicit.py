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


def implicit_gradient(inner_loss: Callable, outer_objective: Callable, theta, phi, alpha: float, num_terms: int):
    """``dJ/dphi`` of ``J(theta*(phi))`` at an inner solution ``theta`` (``grad_theta inner_loss = 0`` there).

    Args:
        inner_loss: ``(theta, phi) -> scalar``, minimised by the inner problem.
        outer_objective: ``theta -> scalar``, ``J`` (no direct dependence on ``phi``).
        theta, phi: pytrees; ``theta`` the inner solution for ``phi``.
        alpha, num_terms: the Neumann series' step and length (:func:`neumann_inverse_hvp`).

    Returns:
        A pytree like ``phi``.
    """
    outer_grad = jax.grad(outer_objective)(theta)
    w = neumann_inverse_hvp(lambda v: hvp(inner_loss, theta, v, phi), outer_grad, alpha, num_terms)
    w = jax.lax.stop_gradient(w)

    def mixed(phi_):  # <grad_theta L(theta, phi_), w>: its phi-gradient is (d^2 L / d theta d phi)^T w
        inner_grad = jax.grad(inner_loss)(theta, phi_)
        return sum(jax.numpy.vdot(g, x) for g, x in zip(jax.tree.leaves(inner_grad), jax.tree.leaves(w)))

    return jax.tree.map(lambda g: -g, jax.grad(mixed)(phi))
