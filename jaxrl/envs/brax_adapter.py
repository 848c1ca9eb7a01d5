"""Adapter from brax environments to the jaxrl :class:`Env` protocol.

brax's own training wrappers fold the time limit into ``done`` and lose the
final observation on reset; here the time limit is a truncation, the true final
observation is kept for bootstrapping, and the reset key is threaded from the
caller so the whole rollout stays a pure function of its key.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Env, select_tree
from jaxrl.types import Timestep

BRAX_BACKENDS = ("spring", "positional", "generalized", "mjx")


class BraxState(NamedTuple):
    brax_state: object
    time: jax.Array  # steps taken in the current episode


class BraxEnv(Env):
    """A brax environment with an episode time limit as truncation and auto-reset.

    Args:
        env_name: brax registry name (``hopper``, ``ant``, ``halfcheetah``, ...).
        backend: physics pipeline (``spring`` is fastest on CPU; see the README).
        episode_length: time limit in steps (truncation, not termination).
        step_info: optional ``brax_state -> dict`` of arrays, read from the state each step reached (before any
            reset) into ``Timestep.info`` (quality-diversity tasks read their per-step descriptor from it).
        reward_fn: optional ``brax_state -> reward`` replacing brax's reward (a task that drops a reward term).
        **kwargs: passed to the brax environment constructor.
    """

    def __init__(self, env_name: str, backend: str = "spring", episode_length: int = 1000, step_info=None,
                 reward_fn=None, **kwargs):
        from brax import envs as brax_envs  # imported lazily: brax import is slow

        if backend not in BRAX_BACKENDS:
            raise ValueError(f"brax backend must be one of {', '.join(BRAX_BACKENDS)}, got {backend!r}")
        self.env_name = env_name
        self.backend = backend
        self.episode_length = int(episode_length)
        self._env = brax_envs.get_environment(env_name, backend=backend, **kwargs)
        self._step_info = step_info or (lambda brax_state: {})
        self._reward_fn = reward_fn or (lambda brax_state: brax_state.reward)
        self._obs_size = int(self._env.observation_size)
        self._action_size = int(self._env.action_size)

    @property
    def sys(self):
        """The brax system (link names, ...)."""
        return self._env.sys

    @property
    def name(self):  # type: ignore[override]
        return f"brax/{self.env_name}"

    def reset(self, key, params):
        state = self._env.reset(key)
        return BraxState(state, jnp.zeros((), jnp.int32)), state.obs

    def step(self, key, state, action, params):
        next_state = self._env.step(state.brax_state, action)
        # Some brax envs return Python floats (inverted_pendulum's reward, ``done`` with
        # terminate_when_unhealthy=False): make them arrays so the state can be selected.
        next_state = next_state.replace(
            reward=jnp.asarray(next_state.reward, jnp.float32), done=jnp.asarray(next_state.done, jnp.float32)
        )
        time = state.time + 1
        terminated = next_state.done > 0.5
        truncated = (time >= self.episode_length) & ~terminated
        done = terminated | truncated
        reset_state, _ = self.reset(key, params)
        # brax's step copies ``done`` into the state; clear it so a kept state is clean.
        stepped = BraxState(next_state.replace(done=jnp.zeros_like(next_state.done)), time)
        new_state = select_tree(done, reset_state, stepped)
        return new_state, Timestep(
            obs=new_state.brax_state.obs,
            reward=jnp.asarray(self._reward_fn(next_state), jnp.float32),
            terminated=terminated,
            truncated=truncated,
            final_obs=next_state.obs,
            info=self._step_info(next_state),
        )

    def observation_space(self, params):
        inf = np.full((self._obs_size,), np.inf, np.float32)
        return Box(low=-inf, high=inf, shape=(self._obs_size,))

    def action_space(self, params):
        one = np.ones((self._action_size,), np.float32)
        return Box(low=-one, high=one, shape=(self._action_size,))

    def max_episode_steps(self, params):
        return self.episode_length
