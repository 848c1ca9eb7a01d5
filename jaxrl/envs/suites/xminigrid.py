"""XLand-MiniGrid (Nikulin et al. 2024) behind the Env protocol: ``xminigrid/MiniGrid-DoorKey-8x8`` ...

xminigrid's environment is functional (``reset(params, key)``, ``step(params, timestep, action)``) and returns a
dm_env-style ``TimeStep``: ``step_type`` LAST ends an episode, with ``discount`` 0 at a termination (the goal
reached) and 1 at the time limit (``params.max_steps``). The adapter keeps the two apart (``terminated`` /
``truncated``), returns the observation the episode ended in as ``final_obs`` and then auto-resets with jaxrl's
key (xminigrid's own auto-reset wrappers either lose the final observation or spend the next action on the
reset). Observations are the agent's egocentric view, ``[view, view, 2]`` uint8 (tile, colour), flattened to
float32 by :func:`jaxrl.envs.make`; six discrete actions.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import xminigrid
from xminigrid.core.constants import NUM_COLORS, NUM_TILES

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep


class XMiniGridEnv(Env):
    """One xminigrid environment id; its ``EnvParams`` are the env params (static fields)."""

    def __init__(self, env_id: str, **kwargs):
        self._env, self._params = xminigrid.make(env_id, **kwargs)
        self.env_id = env_id

    @property
    def name(self):  # type: ignore[override]
        return "xminigrid/" + self.env_id

    @property
    def default_params(self):
        return self._params

    def reset(self, key, params):
        timestep = self._env.reset(params, key)
        return timestep, timestep.observation

    def step(self, key, state, action, params):
        nxt = self._env.step(params, state, jnp.asarray(action, jnp.int32).reshape(()))
        done = nxt.last()
        terminated = done & (nxt.discount == 0)
        truncated = done & (nxt.discount > 0)
        state = auto_reset(done, self._env.reset(params, key), nxt)
        return state, Timestep(obs=state.observation, reward=nxt.reward.astype(jnp.float32), terminated=terminated,
                               truncated=truncated, final_obs=nxt.observation, info={})

    def observation_space(self, params):
        shape = tuple(self._env.observation_shape(params))
        high = np.broadcast_to(np.array([NUM_TILES - 1, NUM_COLORS - 1], np.float32), shape)
        return Box(low=np.zeros(shape, np.float32), high=high.copy(), shape=shape, dtype=jnp.uint8)

    def action_space(self, params):
        return Discrete(int(self._env.num_actions(params)))

    def max_episode_steps(self, params):
        return int(params.max_steps)


def make(env_id: str, **kwargs) -> XMiniGridEnv:
    return XMiniGridEnv(env_id, **kwargs)
