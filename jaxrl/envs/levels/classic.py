"""Classic control with designable physics: a CartPole level is gymnax's ``EnvParams``.

The level is the pole's and cart's physical parameters (gravity, cart mass,
pole mass, pole half-length, push force); the derived fields gymnax keeps
(``total_mass``, ``polemass_length``) are recomputed from them. Use with
``envs.make("CartPole-v1")`` and ``VecEnv(batched_params=True)`` (one level per
env), and with :mod:`jaxrl.curricula` through :func:`generate_cartpole_level`
and :func:`mutate_cartpole_level`.
"""
from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp

# Sampling range of each designable parameter (gymnax's defaults: 9.8, 1.0, 0.1, 0.5, 10.0).
CARTPOLE_RANGES = {
    "gravity": (4.9, 19.6),
    "masscart": (0.5, 2.0),
    "masspole": (0.05, 0.5),
    "length": (0.25, 1.0),
    "force_mag": (5.0, 15.0),
}

CARTPOLE_HELD_OUT = {
    "Default": {},
    "HeavyPole": {"masspole": 0.4},
    "LongPole": {"length": 0.9},
    "HighGravity": {"gravity": 18.0},
    "WeakPush": {"force_mag": 6.0},
}


def cartpole_level(**values) -> object:
    """gymnax CartPole ``EnvParams`` with ``values`` replacing the defaults; every leaf a jnp scalar.

    ``total_mass`` and ``polemass_length`` follow from the masses and length.
    """
    _, default = gymnax.make("CartPole-v1")
    fields = {k: jnp.asarray(getattr(default, k), jnp.float32) for k in CARTPOLE_RANGES}
    fields.update({k: jnp.asarray(v, jnp.float32) for k, v in values.items()})
    return default.replace(
        **fields,
        max_steps_in_episode=jnp.asarray(default.max_steps_in_episode, jnp.int32),
        tau=jnp.asarray(default.tau, jnp.float32),
        theta_threshold_radians=jnp.asarray(default.theta_threshold_radians, jnp.float32),
        x_threshold=jnp.asarray(default.x_threshold, jnp.float32),
        total_mass=fields["masscart"] + fields["masspole"],
        polemass_length=fields["masspole"] * fields["length"],
    )


def generate_cartpole_level(key) -> object:
    """Every designable parameter uniform in :data:`CARTPOLE_RANGES`."""
    keys = jax.random.split(key, len(CARTPOLE_RANGES))
    return cartpole_level(**{name: jax.random.uniform(k, (), jnp.float32, lo, hi)
                             for k, (name, (lo, hi)) in zip(keys, CARTPOLE_RANGES.items())})


def mutate_cartpole_level(key, level, num_edits: int = 1, scale: float = 0.2) -> object:
    """``num_edits`` edits, each scaling one random parameter by ``exp(N(0, scale^2))``, clipped to its range."""
    names = tuple(CARTPOLE_RANGES)
    values = jnp.stack([getattr(level, n) for n in names])
    low = jnp.asarray([CARTPOLE_RANGES[n][0] for n in names], jnp.float32)
    high = jnp.asarray([CARTPOLE_RANGES[n][1] for n in names], jnp.float32)

    def edit(i, values):
        key_which, key_size = jax.random.split(jax.random.fold_in(key, i))
        which = jax.random.randint(key_which, (), 0, len(names))
        factor = jnp.exp(scale * jax.random.normal(key_size))
        return values.at[which].set(jnp.clip(values[which] * factor, low[which], high[which]))

    values = jax.lax.fori_loop(0, num_edits, edit, values)
    return cartpole_level(**{n: values[i] for i, n in enumerate(names)})


def cartpole_held_out_levels() -> tuple[tuple[str, ...], object]:
    """``(names, levels)`` of :data:`CARTPOLE_HELD_OUT`, leaves with a leading ``[len(names)]``."""
    names = tuple(CARTPOLE_HELD_OUT)
    levels = [cartpole_level(**CARTPOLE_HELD_OUT[n]) for n in names]
    return names, jax.tree.map(lambda *xs: jnp.stack(xs), *levels)
