"""Genetic variation of MAP-Elites: the Iso+Line-DD operator (Vassiliades & Mouret 2018)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def iso_line_dd(key, parents_x, parents_y, iso_sigma, line_sigma):
    """``x + iso_sigma * N(0, I) + line_sigma * N(0, 1) * (y - x)`` for each pair of parents.

    The isotropic Gaussian explores around ``x``; the line term moves along the direction to another elite,
    which follows the correlations between elites ("the elite hypervolume"). One line coefficient per
    offspring is shared by every parameter (QDax's ``isoline_variation``); no clipping.

    Args:
        parents_x, parents_y: genotype pytrees with leaves ``[N, ...]``.
        iso_sigma, line_sigma: scalars (traced: sweepable).

    Returns:
        offspring with leaves ``[N, ...]``.
    """
    leaves_x, treedef = jax.tree.flatten(parents_x)
    leaves_y = treedef.flatten_up_to(parents_y)
    key_line, key_iso = jax.random.split(key)
    n = leaves_x[0].shape[0]
    line = jax.random.normal(key_line, (n,)) * line_sigma
    iso_keys = jax.random.split(key_iso, len(leaves_x))

    def vary(x, y, k):
        coeff = line.reshape((n,) + (1,) * (x.ndim - 1))
        return x + jax.random.normal(k, x.shape, x.dtype) * iso_sigma + coeff * (y - x)

    return treedef.unflatten([vary(x, y, k) for x, y, k in zip(leaves_x, leaves_y, iso_keys)])
