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

import jax
import jax.numpy as jnp
import numpy as np
import xminigrid
from xminigrid.core.constants import NUM_COLORS, NUM_TILES

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep


class XMiniGridEnv(Env):
    """One xminigrid environment id; its ``EnvParams`` are the env params (static fields).

    XLand ids (``XLand-MiniGrid-R1-9x9`` ...) take a rule set in their params (a level: see
    :mod:`jaxrl.envs.suites.xland`); their default is the held-out rule set ``HoldBlueBall`` padded to
    ``max_depth`` rules and ``max_depth + 1 + max_distractors`` objects, and with ``observe_ruleset`` (the default
    for them) the observation is the flattened view followed by the goal's and the rules' encodings.
    """

    def __init__(self, env_id: str, observe_ruleset: bool | None = None, max_depth: int = 2, max_distractors: int = 3,
                 **kwargs):
        self._env, self._params = xminigrid.make(env_id, **kwargs)
        self.env_id = env_id
        self.is_xland = env_id.startswith("XLand")
        self.observe_ruleset = self.is_xland if observe_ruleset is None else bool(observe_ruleset)
        if self.observe_ruleset and not self.is_xland:
            raise ValueError(f"observe_ruleset needs an XLand environment, not {env_id}")
        if self.is_xland:
            from jaxrl.envs.suites.xland import held_out_rulesets

            rulesets = held_out_rulesets(max_depth, max_distractors)[1]
            self._params = self._params.replace(ruleset=jax.tree.map(lambda x: x[0], rulesets))

    def _observe(self, timestep):
        """The suite's observation, or with ``observe_ruleset`` ``[view * view * 2 + 5 + rules * 7]`` float32."""
        if not self.observe_ruleset:
            return timestep.observation
        state = timestep.state
        return jnp.concatenate([jnp.ravel(timestep.observation).astype(jnp.float32),
                                jnp.ravel(state.goal_encoding).astype(jnp.float32),
                                jnp.ravel(state.rule_encoding).astype(jnp.float32)])

    @property
    def name(self):  # type: ignore[override]
        return "xminigrid/" + self.env_id

    @property
    def default_params(self):
        return self._params

    def reset(self, key, params):
        timestep = self._env.reset(params, key)
        return timestep, self._observe(timestep)

    def step(self, key, state, action, params):
        nxt = self._env.step(params, state, jnp.asarray(action, jnp.int32).reshape(()))
        done = nxt.last()
        terminated = done & (nxt.discount == 0)
        truncated = done & (nxt.discount > 0)
        state = auto_reset(done, self._env.reset(params, key), nxt)
        return state, Timestep(obs=self._observe(state), reward=nxt.reward.astype(jnp.float32), terminated=terminated,
                               truncated=truncated, final_obs=self._observe(nxt), info={})

    def observation_space(self, params):
        if self.observe_ruleset:
            size = int(np.prod(self._env.observation_shape(params))) + params.ruleset.goal.size + params.ruleset.rules.size
            return Box(low=np.zeros(size, np.float32), high=np.full(size, 255, np.float32), shape=(size,))
        shape = tuple(self._env.observation_shape(params))
        high = np.broadcast_to(np.array([NUM_TILES - 1, NUM_COLORS - 1], np.float32), shape)
        return Box(low=np.zeros(shape, np.float32), high=high.copy(), shape=shape, dtype=jnp.uint8)

    def action_space(self, params):
        return Discrete(int(self._env.num_actions(params)))

    def max_episode_steps(self, params):
        return int(params.max_steps)


def make(env_id: str, **kwargs) -> XMiniGridEnv:
    return XMiniGridEnv(env_id, **kwargs)
