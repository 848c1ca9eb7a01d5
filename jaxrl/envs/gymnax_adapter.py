"""Adapter from gymnax 1.x environments to the jaxrl :class:`Env` protocol."""
from __future__ import annotations

import gymnax
import numpy as np
from gymnax.environments import spaces as gspaces

from jaxrl.envs.core import Box, Discrete, Env
from jaxrl.types import Timestep


def convert_space(space) -> Discrete | Box:
    """A gymnax-style space -> jaxrl's: gymnax's own ``Discrete`` / ``Box``, or a suite's copy of them (Craftax
    ships gymnax's space classes under its own names), told apart by their fields."""
    if isinstance(space, gspaces.Discrete) or hasattr(space, "n"):
        return Discrete(int(space.n))
    if isinstance(space, gspaces.Box) or all(hasattr(space, field) for field in ("low", "high", "shape")):
        shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, dtype=np.float32), shape)
        high = np.broadcast_to(np.asarray(space.high, dtype=np.float32), shape)
        return Box(low=low, high=high, shape=shape)
    raise TypeError(f"unsupported gymnax space {type(space).__name__}")


class GymnaxEnv(Env):
    """A gymnax environment with named, truncation-aware output.

    gymnax 1.x ``step`` returns ``(obs, state, reward, terminated, truncated, info)``
    with ``info["final_observation"]`` holding the pre-reset observation; this
    maps it onto :class:`Timestep` unchanged.
    """

    def __init__(self, env_id: str, **env_kwargs):
        self.env_id = env_id
        self._env, self._default_params = gymnax.make(env_id, **env_kwargs)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.env_id

    @property
    def default_params(self):
        return self._default_params

    def reset(self, key, params):
        obs, state = self._env.reset(key, params)
        return state, obs

    def step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        final_obs = info.pop("final_observation")
        info.pop("terminated", None)
        info.pop("truncated", None)
        timestep = Timestep(
            obs=obs,
            reward=reward.astype(np.float32),
            terminated=terminated.astype(bool),
            truncated=truncated.astype(bool) & ~terminated.astype(bool),
            final_obs=final_obs,
            info={},
        )
        return state, timestep

    def observation_space(self, params):
        return convert_space(self._env.observation_space(params))

    def action_space(self, params):
        return convert_space(self._env.action_space(params))

    def max_episode_steps(self, params):
        return int(params.max_steps_in_episode)
