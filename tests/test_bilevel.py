"""Implicit differentiation: the Neumann-series inverse-Hessian-vector product and the implicit gradient."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.bilevel import hvp, implicit_gradient, neumann_inverse_hvp


def _spd(key, n, low=0.5, high=2.0):
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (n, n)), np.float64))
    return q @ np.diag(np.linspace(low, high, n)) @ q.T


def test_hvp_is_the_hessian_times_the_vector():
    a = _spd(jax.random.PRNGKey(0), 5)
    loss = lambda theta: 0.5 * theta @ jnp.asarray(a, jnp.float32) @ theta + jnp.sum(theta**3)  # noqa: E731
    theta, v = jnp.arange(5.0) / 5, jnp.ones(5)
    exact = jax.hessian(loss)(theta) @ v
    np.testing.assert_allclose(hvp(loss, theta, v), exact, rtol=1e-5)


def test_neumann_series_inverts_a_quadratic_hessian():
    """On L = 1/2 theta^T A theta (eigenvalues 0.5..2, alpha 0.4: alpha eig in (0.2, 0.8)) the series approaches
    A^-1 v as terms are added: 200 terms agree with the exact solve to 1e-5 relative, 5 terms do not."""
    a = _spd(jax.random.PRNGKey(1), 6)
    v = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (6,)), np.float64)
    exact = np.linalg.solve(a, v)
    a32 = jnp.asarray(a, jnp.float32)
    series = jax.jit(lambda k: neumann_inverse_hvp(lambda x: a32 @ x, jnp.asarray(v, jnp.float32), 0.4, k),
                     static_argnums=0)
    np.testing.assert_allclose(series(200), exact, rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(series(5) - exact) > 0.05 * np.linalg.norm(exact)
    # on a pytree: the same solve split over two leaves
    tree = neumann_inverse_hvp(lambda t: {"x": (a32 @ jnp.concatenate([t["x"], t["y"]]))[:3],
                                          "y": (a32 @ jnp.concatenate([t["x"], t["y"]]))[3:]},
                               {"x": jnp.asarray(v[:3], jnp.float32), "y": jnp.asarray(v[3:], jnp.float32)}, 0.4, 200)
    np.testing.assert_allclose(np.concatenate([tree["x"], tree["y"]]), exact, rtol=1e-5, atol=1e-5)


def test_implicit_gradient_matches_finite_differences_of_the_analytic_solution():
    """Inner L(theta, phi) = 1/2 theta^T A theta - theta^T B phi, whose optimum is analytic: theta* = A^-1 B phi;
    outer J(theta) = -1/2 |theta - t|^2. dJ/dphi from the Neumann series against central differences of
    J(A^-1 B phi), and against the exact formula -(theta* - t)^T A^-1 B."""
    a = _spd(jax.random.PRNGKey(3), 4)
    b = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (4, 3)), np.float64)
    target = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (4,)), np.float64)
    phi = np.asarray(jax.random.normal(jax.random.PRNGKey(6), (3,)), np.float64)
    a32, b32, t32 = (jnp.asarray(x, jnp.float32) for x in (a, b, target))

    def inner_loss(theta, phi_):
        return 0.5 * theta @ a32 @ theta - theta @ (b32 @ phi_)

    def outer(theta):
        return -0.5 * jnp.sum((theta - t32) ** 2)

    def solution(p):
        return np.linalg.solve(a, b @ p)

    def objective(p):
        return -0.5 * np.sum((solution(p) - target) ** 2)

    theta_star = jnp.asarray(solution(phi), jnp.float32)
    grad = implicit_gradient(inner_loss, outer, theta_star, jnp.asarray(phi, jnp.float32), alpha=0.4, num_terms=300)
    eps = 1e-5
    fd = np.asarray([(objective(phi + eps * e) - objective(phi - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-5)
    # the exact formula, as a second check of the sign: -(theta* - t)^T A^-1 B
    np.testing.assert_allclose(grad, -(solution(phi) - target) @ np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
