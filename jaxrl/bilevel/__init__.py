"""Bi-level optimisation pieces: implicit differentiation of an inner solution (BARFI's outer gradient,
Gupta et al. 2023; the Neumann-series inverse-Hessian-vector product of Lorraine et al. 2019).

implicit.py    hvp (forward-over-reverse), neumann_inverse_hvp, implicit_gradient
"""
from jaxrl.bilevel.implicit import hvp, implicit_gradient, neumann_inverse_hvp

__all__ = ["hvp", "implicit_gradient", "neumann_inverse_hvp"]
