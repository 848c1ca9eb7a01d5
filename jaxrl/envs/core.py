"""The one environment protocol of jaxrl.

An :class:`Env` has gymnax semantics (pure ``reset``/``step`` taking a key and
explicit ``params``) but returns a named :class:`~jaxrl.types.Timestep` with
``terminated`` and ``truncated`` kept apart and the true final observation kept
for bootstrapping. ``step`` auto-resets: after an episode ends, ``obs`` is the
first observation of the next one.

Envs are Python objects holding only static structure (they are closed over,
never traced); everything that changes lives in the state or the params.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.types import EnvParams, EnvState, PRNGKey, Timestep


@dataclass(frozen=True)
class Discrete:
    """``n`` actions, ``0..n-1``."""

    n: int
    shape: tuple = ()
    dtype: Any = jnp.int32


@dataclass(frozen=True)
class Box:
    """Real-valued array of ``shape`` within ``[low, high]`` (numpy arrays, static)."""

    low: np.ndarray
    high: np.ndarray
    shape: tuple
    dtype: Any = jnp.float32

    @property
    def is_bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))


def auto_reset(done, reset, stepped):
    """Where ``done``, the next episode's start ``reset``, else ``stepped`` (matching pytrees, e.g. ``(state, obs)``):
    the select every auto-resetting ``step`` ends with."""
    return jax.tree.map(lambda r, s: jnp.where(done, r, s), reset, stepped)


def pooled_auto_reset(reset, reset_ratio: int):
    """``select(done, key, params, stepped) -> (state, obs)``: :func:`auto_reset` with ``reset(key, params)`` for
    an env whose reset costs far more than its step (Craftax generates a world).

    Unbatched, it is exactly ``auto_reset(done, reset(key, params), stepped)``. Under ``vmap`` over ``B`` envs
    (jaxrl's :class:`~jaxrl.envs.wrappers.VecEnv`), where every env would otherwise generate a reset every step,
    it generates ``ceil(B / reset_ratio)`` resets a step and hands them to the envs that finished in order
    (Craftax's optimistic reset, with the pool assigned by rank instead of at random): every finished episode gets
    its own fresh start unless more than ``ceil(B / reset_ratio)`` envs finish on the same step, when starts are
    shared. With batched params (one level per env) every env resets from its own params, exactly.
    """
    from jax.custom_batching import custom_vmap

    @custom_vmap
    def select(done, key, params, stepped):
        return auto_reset(done, reset(key, params), stepped)

    @select.def_vmap
    def pooled(axis_size, in_batched, done, key, params, stepped):
        done_b, key_b, params_b, stepped_b = in_batched
        broadcast = lambda tree, flags: jax.tree.map(  # noqa: E731
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x)), tree, flags)
        done, stepped = broadcast(done, done_b), broadcast(stepped, stepped_b)
        if not key_b:
            key = jax.random.split(key, axis_size)
        if any(jax.tree.leaves(params_b)):
            params = broadcast(params, params_b)
            out = jax.vmap(lambda d, k, p, s: auto_reset(d, reset(k, p), s))(done, key, params, stepped)
        else:
            pool_size = -(-axis_size // reset_ratio)
            pool = jax.vmap(reset, (0, None))(key[:pool_size], params)
            slot = (jnp.cumsum(done) - 1) % pool_size
            out = select_tree(done, jax.tree.map(lambda x: x[slot], pool), stepped)
        return out, jax.tree.map(lambda _: True, out)

    return select


class Env:
    """Base class: subclasses implement ``reset``, ``step`` and the spaces.

    Methods:
        reset(key, params) -> (state, obs)
        step(key, state, action, params) -> (state, Timestep)   # auto-resets
    """

    name: str = "env"

    @property
    def default_params(self) -> EnvParams:
        return None

    def reset(self, key: PRNGKey, params: EnvParams) -> tuple[EnvState, jax.Array]:
        raise NotImplementedError

    def step(self, key: PRNGKey, state: EnvState, action, params: EnvParams) -> tuple[EnvState, Timestep]:
        raise NotImplementedError

    def observation_space(self, params: EnvParams) -> Box:
        raise NotImplementedError

    def action_space(self, params: EnvParams) -> Discrete | Box:
        raise NotImplementedError

    def max_episode_steps(self, params: EnvParams) -> int:
        """Time limit of one episode (static), used to size evaluation scans."""
        raise NotImplementedError

    @property
    def unwrapped(self) -> "Env":
        return self


class Wrapper(Env):
    """Forwards everything to ``self.env``; subclasses override what they change."""

    def __init__(self, env: Env):
        self.env = env

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.env.name

    @property
    def default_params(self) -> EnvParams:
        return self.env.default_params

    def reset(self, key, params):
        return self.env.reset(key, params)

    def step(self, key, state, action, params):
        return self.env.step(key, state, action, params)

    def observation_space(self, params):
        return self.env.observation_space(params)

    def action_space(self, params):
        return self.env.action_space(params)

    def max_episode_steps(self, params):
        return self.env.max_episode_steps(params)

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    def __getattr__(self, item):
        # Only reached for attributes not found normally: delegate (e.g. num_envs).
        if item == "env":
            raise AttributeError(item)
        return getattr(self.env, item)


def select_tree(pred: jax.Array, on_true, on_false):
    """``where(pred, a, b)`` leaf by leaf, broadcasting a ``[B]`` or ``[]`` predicate."""

    def pick(a, b):
        p = jnp.reshape(pred, pred.shape + (1,) * (a.ndim - pred.ndim))
        return jnp.where(p, a, b)

    return jax.tree.map(pick, on_true, on_false)
