"""Jumanji (Bonnet et al. 2024) behind the Env protocol: ``jumanji/Snake-v1``, ``jumanji/Game2048-v1``,
``jumanji/Maze-v0``.

Jumanji's environments return ``(state, TimeStep)`` in dm_env's style, and several end a time-limit episode with
``termination`` (discount 0), so the discount cannot tell a time limit from a terminal state. The adapter reads
the time limit itself: an episode that ends with ``state.step_count >= time_limit`` is truncated, any other end
is terminated (an episode that ends on a terminal state exactly at the limit counts as truncated). Game2048 has
no time limit; the adapter gives it one (``max_steps``, a truncation) so evaluation scans are bounded. The
observation (a NamedTuple of arrays, the action mask included) is flattened into one float32 vector in the
suite's field order; jaxrl's auto-reset keeps the final observation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import jumanji
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep

DEFAULT_MAX_STEPS = {"Game2048-v1": 2000}  # tasks without their own time limit


def flatten_observation(observation) -> jax.Array:
    """A jumanji observation (NamedTuple / pytree of arrays) -> ``[D]`` float32, leaves in field order."""
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(observation)])


class JumanjiEnv(Env):
    """One jumanji environment id (jumanji's environments take no params: ``default_params`` is None)."""

    def __init__(self, env_id: str, max_steps: int | None = None, **kwargs):
        self._env = jumanji.make(env_id, **kwargs)
        self.env_id = env_id
        own = getattr(self._env, "time_limit", None)
        self.time_limit = int(max_steps or own or DEFAULT_MAX_STEPS.get(env_id, 1000))
        self._obs_dim = int(flatten_observation(self._env.observation_spec.generate_value()).shape[0])

    @property
    def name(self):  # type: ignore[override]
        return "jumanji/" + self.env_id

    def reset(self, key, params):
        state, timestep = self._env.reset(key)
        return state, flatten_observation(timestep.observation)

    def step(self, key, state, action, params):
        nxt, timestep = self._env.step(state, jnp.asarray(action, jnp.int32).reshape(()))
        at_limit = nxt.step_count >= self.time_limit
        ended = timestep.last() | at_limit
        truncated = ended & at_limit
        terminated = ended & ~at_limit
        final_obs = flatten_observation(timestep.observation)
        reset_state, reset_timestep = self._env.reset(key)
        state, obs = auto_reset(ended, (reset_state, flatten_observation(reset_timestep.observation)), (nxt, final_obs))
        return state, Timestep(obs=obs, reward=timestep.reward.astype(jnp.float32), terminated=terminated,
                               truncated=truncated, final_obs=final_obs, info={})

    def observation_space(self, params):
        return Box(low=np.full(self._obs_dim, -np.inf, np.float32), high=np.full(self._obs_dim, np.inf, np.float32),
                   shape=(self._obs_dim,))

    def action_space(self, params):
        return Discrete(int(self._env.action_spec.num_values))

    def max_episode_steps(self, params):
        return self.time_limit


def make(env_id: str, **kwargs) -> JumanjiEnv:
    return JumanjiEnv(env_id, **kwargs)
