"""Probe environments with known optimal values and policies.

Tiny environments in the spirit of Andy Jones' "debugging RL" probes: each one
isolates one piece of an agent (value learning, bootstrapping, discounting,
policy learning, conditioning on observations, truncation handling, memory), so a
failing probe points at the broken piece. Rewards and values are chosen so the
correct answer is known in closed form.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep


class ProbeState(NamedTuple):
    obs: jax.Array  # [obs_dim]
    time: jax.Array  # steps taken in this episode


class ProbeEnv(Env):
    """Shared mechanics: ``obs_dim`` features, episodes of ``episode_len`` steps.

    Subclasses define ``_initial_obs(key)``, ``_reward(obs, action, time)`` and
    whether the end of the episode is a termination or a time-limit truncation.
    """

    obs_dim: int = 1
    episode_len: int = 1
    truncate_at_limit: bool = False  # True: the limit is a truncation, not a terminal state
    discrete_actions: int | None = 2  # None: continuous action in [-1, 1]

    @property
    def name(self):  # type: ignore[override]
        return "probe/" + type(self).__name__

    def _initial_obs(self, key):
        return jnp.zeros((self.obs_dim,), jnp.float32)

    def _next_obs(self, key, obs, time):
        return obs

    def reset(self, key, params):
        obs = self._initial_obs(key)
        return ProbeState(obs, jnp.zeros((), jnp.int32)), obs

    def step(self, key, state, action, params):
        key_next, key_reset = jax.random.split(key)
        reward = self._reward(state.obs, action, state.time).astype(jnp.float32)
        time = state.time + 1
        at_limit = time >= self.episode_len
        terminated = at_limit & (not self.truncate_at_limit)
        truncated = at_limit & self.truncate_at_limit
        final_obs = self._next_obs(key_next, state.obs, time)
        reset_state, _ = self.reset(key_reset, params)
        next_state = auto_reset(at_limit, reset_state, ProbeState(final_obs, time))
        return next_state, Timestep(
            obs=next_state.obs, reward=reward, terminated=terminated, truncated=truncated, final_obs=final_obs, info={}
        )

    def observation_space(self, params):
        return Box(low=-np.ones(self.obs_dim, np.float32), high=np.ones(self.obs_dim, np.float32), shape=(self.obs_dim,))

    def action_space(self, params):
        if self.discrete_actions is None:
            return Box(low=-np.ones(1, np.float32), high=np.ones(1, np.float32), shape=(1,))
        return Discrete(self.discrete_actions)

    def max_episode_steps(self, params):
        return self.episode_len


class ConstantReward(ProbeEnv):
    """One step, reward +1. Tests value learning: V(obs) = 1."""

    def _reward(self, obs, action, time):
        return jnp.ones(())


class ObservationDependentReward(ProbeEnv):
    """One step, obs is -1 or +1 at random, reward = obs. Tests V conditioning: V(+-1) = +-1."""

    def _initial_obs(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0) * jnp.ones((1,), jnp.float32)

    def _reward(self, obs, action, time):
        return obs[0]


class OneStepDiscount(ProbeEnv):
    """Two steps: obs 0 then obs 1; reward +1 only at the end. Tests discounting
    and bootstrapping: V(obs=0) = gamma, V(obs=1) = 1."""

    episode_len = 2

    def _next_obs(self, key, obs, time):
        return jnp.ones_like(obs)

    def _reward(self, obs, action, time):
        return (time == 1).astype(jnp.float32)


class ActionDependentReward(ProbeEnv):
    """One step, reward +1 for action 1 and 0 for action 0. Tests the policy gradient:
    optimal policy always picks action 1, V = 1 under it."""

    def _reward(self, obs, action, time):
        return (action == 1).astype(jnp.float32)


class ObservationAndActionDependentReward(ProbeEnv):
    """One step, obs -1 or +1; reward +1 if the action matches the sign (action 1 for
    +1, action 0 for -1), else 0. Tests a policy conditioned on observations."""

    def _initial_obs(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0) * jnp.ones((1,), jnp.float32)

    def _reward(self, obs, action, time):
        return (action == (obs[0] > 0).astype(jnp.int32)).astype(jnp.float32)


class ContinuousActionReward(ProbeEnv):
    """One step, continuous action a in [-1, 1], reward = -(a - 0.5)^2. Tests the
    Gaussian policy: the optimal mean action is 0.5."""

    discrete_actions = None

    def _reward(self, obs, action, time):
        a = jnp.clip(jnp.reshape(action, ()), -1.0, 1.0)
        return -((a - 0.5) ** 2)


class TruncatedConstantReward(ProbeEnv):
    """Reward +1 every step, constant observation, episodes cut by a time limit of
    ``episode_len`` steps that is a truncation, never a termination. An agent that
    bootstraps correctly at truncation learns V = 1 / (1 - gamma); one that treats
    the time limit as terminal learns a much smaller value."""

    episode_len = 5
    truncate_at_limit = True

    def _reward(self, obs, action, time):
        return jnp.ones(())


class MemoryCueState(NamedTuple):
    cue: jax.Array  # 0 or 1, drawn at reset, seen only in the first observation
    time: jax.Array  # steps taken in this episode


class MemoryCue(ProbeEnv):
    """Remember the cue: tests memory (a recurrent policy) and its reset between episodes.

    Observations are ``[cue, query]``: the first shows the cue (-1 or +1, at
    random) with query 0, the next ``episode_len - 2`` are all zeros, and the
    last is ``[0, 1]``. Only the action at the query step is rewarded: +1 if
    it names the cue (action 1 for +1, action 0 for -1), else 0; then the
    episode terminates. A policy with memory gets return 1; a memoryless one
    sees the same query observation for both cues and gets 0.5 in
    expectation, whatever it does.
    """

    obs_dim = 2
    episode_len = 4

    def _obs(self, cue, time):
        cue_feature = jnp.where(time == 0, 2.0 * cue - 1.0, 0.0)
        query_feature = (time == self.episode_len - 1).astype(jnp.float32)
        return jnp.stack([cue_feature, query_feature]).astype(jnp.float32)

    def reset(self, key, params):
        cue = jax.random.bernoulli(key).astype(jnp.int32)
        time = jnp.zeros((), jnp.int32)
        return MemoryCueState(cue, time), self._obs(cue, time)

    def step(self, key, state, action, params):
        at_query = state.time == self.episode_len - 1
        reward = (at_query & (action == state.cue)).astype(jnp.float32)
        time = state.time + 1
        ended = time >= self.episode_len
        final_obs = self._obs(state.cue, time)
        reset_state, reset_obs = self.reset(key, params)
        next_state = jax.tree.map(lambda r, s: jnp.where(ended, r, s), reset_state, MemoryCueState(state.cue, time))
        obs = jnp.where(ended, reset_obs, final_obs)
        return next_state, Timestep(obs=obs, reward=reward, terminated=ended, truncated=jnp.zeros((), bool),
                                    final_obs=final_obs, info={})


PROBES = {
    cls.__name__: cls
    for cls in (
        ConstantReward,
        ObservationDependentReward,
        OneStepDiscount,
        ActionDependentReward,
        ObservationAndActionDependentReward,
        ContinuousActionReward,
        TruncatedConstantReward,
        MemoryCue,
    )
}
