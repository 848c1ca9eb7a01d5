"""Craftax (Matthews et al. 2024) behind the Env protocol: ``craftax/Craftax-Classic-Symbolic-v1`` and
``craftax/Craftax-Symbolic-v1`` (symbolic observations: 1345 and 8268 features, 17 and 43 actions).

Craftax keeps gymnax's old signature, ``step(key, state, action, params) -> (obs, state, reward, done, info)``,
and its ``done`` includes the time limit (``state.timestep >= params.max_timesteps``: 10,000 steps for Classic,
100,000 for the full game). The adapter takes Craftax's environment *without* auto-reset and splits ``done``:
an episode that ends because the player died (or stood in lava, or beat the final boss) is *terminated*; one
that ends only at the time limit is *truncated* (a death on the last step counts as terminated: the game itself
says so when asked with no time limit). The final observation is returned before jaxrl's auto-reset.
``max_timesteps`` (an adapter keyword) shortens the time limit, e.g. for fast evaluation scans.

Generating a world costs ~20x a step (CPU: 509 resets/s against 10,700 steps/s at 64 envs), so resetting every
env every step, as a vmapped select does, would make the reset the whole cost. Under ``vmap`` the adapter
generates ``ceil(num_envs / reset_ratio)`` worlds a step (``reset_ratio`` 16 by default, Craftax's own PPO
uses the same optimistic reset) and gives them to the envs that finished, in order
(:func:`jaxrl.envs.core.pooled_auto_reset`); a single, unvectorised env resets exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from craftax.craftax_env import make_craftax_env_from_name

from jaxrl.envs.core import Env, pooled_auto_reset
from jaxrl.envs.gymnax_adapter import convert_space
from jaxrl.types import Timestep

NO_TIME_LIMIT = np.iinfo(np.int32).max


class CraftaxEnv(Env):
    """One Craftax symbolic environment; Craftax's ``EnvParams`` are the env params."""

    def __init__(self, env_id: str, max_timesteps: int | None = None, reset_ratio: int = 16):
        if int(reset_ratio) < 1 or (max_timesteps is not None and int(max_timesteps) < 1):
            raise ValueError(f"reset_ratio and max_timesteps must be at least 1, got {reset_ratio} and {max_timesteps}")
        self._env = make_craftax_env_from_name(env_id, auto_reset=False)
        self._auto_reset = pooled_auto_reset(self.reset, int(reset_ratio))
        self.env_id = env_id
        params = self._env.default_params
        self._params = params.replace(max_timesteps=int(max_timesteps)) if max_timesteps else params

    @property
    def name(self):  # type: ignore[override]
        return "craftax/" + self.env_id

    @property
    def default_params(self):
        return self._params

    def reset(self, key, params):
        obs, state = self._env.reset(key, params)
        return state, obs

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)  # the step's draws and the next world stay independent
        obs, nxt, reward, done, _ = self._env.step(step_key, state, jnp.asarray(action, jnp.int32).reshape(()), params)
        # The game over without the time limit: a death (or lava, or the boss beaten) ends it for good.
        game_over = self._env.is_terminal(nxt, params.replace(max_timesteps=NO_TIME_LIMIT))
        terminated = done & game_over
        truncated = done & ~game_over
        state, new_obs = self._auto_reset(done, reset_key, params, (nxt, obs))
        return state, Timestep(obs=new_obs, reward=jnp.asarray(reward, jnp.float32), terminated=terminated,
                               truncated=truncated, final_obs=obs, info={})

    def observation_space(self, params):
        return convert_space(self._env.observation_space(params))

    def action_space(self, params):
        return convert_space(self._env.action_space(params))

    def max_episode_steps(self, params):
        return int(params.max_timesteps)


def make(env_id: str, **kwargs) -> CraftaxEnv:
    return CraftaxEnv(env_id, **kwargs)
