"""Seeds x hyperparameter grids as one vmapped batch of members.

Member ``m = g * num_seeds + s`` trains grid point ``g`` with seed ``s``. The
seed keys are shared across grid points (common random numbers), so grid
points differ only by their hyperparameters.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp


def expand_grid(sweep: dict[str, list[float]]) -> list[dict[str, float]]:
    """``{"lr": [1, 2], "ent_coef": [0, .1]}`` -> the 4 grid points in row-major order (first key slowest)."""
    if not sweep:
        return [{}]
    names = list(sweep)
    return [dict(zip(names, values)) for values in itertools.product(*(sweep[n] for n in names))]


def grid_label(point: dict) -> str:
    """``{"lr": 0.001}`` -> ``"lr=0.001"`` (``"default"`` for the empty point): legends and report groups."""
    return ", ".join(f"{k}={v:g}" for k, v in point.items()) or "default"


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """``[num_seeds]`` keys; seed ``s`` of any run with the same ``seed`` gets the same key."""
    return jax.random.split(jax.random.PRNGKey(seed), num_seeds)


def member_batch(base_hparams, grid: list[dict[str, float]], num_seeds: int, seed: int):
    """Keys ``[G*S]`` and hparams with every leaf ``[G*S]``, grid-major.

    Args:
        base_hparams: HParams NamedTuple of scalars (the non-swept values).
        grid: list of ``G`` dicts overriding traced fields.
    """
    keys = jnp.tile(seed_keys(seed, num_seeds), (len(grid), 1))
    return keys, _batched(base_hparams, grid, num_seeds)


def _batched(hparams, grid: list[dict[str, float]], num_seeds: int):
    """``hparams`` (a NamedTuple, possibly nested) with every leaf ``[G*S, ...]``: scalars overridden by name
    per grid point, nested NamedTuples (e.g. a curriculum's beside PPO's) recursed into, other pytrees
    (objective parameters) broadcast unchanged."""
    if not hasattr(hparams, "_asdict"):  # no named hyperparameters (e.g. ``()``): broadcast whatever there is
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (len(grid) * num_seeds,) + jnp.shape(x)), hparams)
    batched = {}
    for name, value in hparams._asdict().items():
        if hasattr(value, "_asdict"):
            batched[name] = _batched(value, grid, num_seeds)
        elif isinstance(value, jax.Array) and value.ndim == 0:
            per_grid = jnp.stack([jnp.asarray(point.get(name, value), value.dtype) for point in grid])
            batched[name] = jnp.repeat(per_grid, num_seeds, axis=0)
        else:
            batched[name] = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(grid) * num_seeds,) + jnp.shape(x)), value)
    return type(hparams)(**batched)
