"""Environment wrappers: flattening, action rescaling, observation masking, episode
statistics, vectorisation and running observation normalisation.

All wrappers keep the :class:`~jaxrl.envs.core.Env` protocol. Single-env
wrappers (flatten, action rescale, masking, episode statistics) are elementwise and are
applied before :class:`VecEnv`; :class:`NormalizeObservation` needs a batch and
wraps a :class:`VecEnv`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, Wrapper
from jaxrl.types import Array


class FlattenObservation(Wrapper):
    """Flattens observations to ``[obs_dim]`` (e.g. MinAtar's ``[10, 10, C]``)."""

    def _flat(self, obs):
        return jnp.reshape(obs, (-1,)).astype(jnp.float32)

    def reset(self, key, params):
        state, obs = self.env.reset(key, params)
        return state, self._flat(obs)

    def step(self, key, state, action, params):
        state, ts = self.env.step(key, state, action, params)
        return state, ts._replace(obs=self._flat(ts.obs), final_obs=self._flat(ts.final_obs))

    def observation_space(self, params):
        space = self.env.observation_space(params)
        if isinstance(space, Discrete):  # e.g. FrozenLake: a scalar index becomes [1] float
            return Box(low=np.zeros(1, np.float32), high=np.full(1, space.n - 1, np.float32), shape=(1,))
        size = int(np.prod(space.shape))
        return Box(low=np.reshape(space.low, (size,)), high=np.reshape(space.high, (size,)), shape=(size,))


def unflattened_observation_shape(env: Env) -> tuple:
    """The observation's shape before :class:`FlattenObservation` (e.g. MinAtar's ``(10, 10, C)``), found by
    walking ``env``'s wrappers; ``env``'s own observation shape when nothing flattens it."""
    inner = env
    while isinstance(inner, Wrapper):
        if isinstance(inner, FlattenObservation):
            return tuple(inner.env.observation_space(inner.env.default_params).shape)
        inner = inner.env
    return tuple(env.observation_space(env.default_params).shape)


class RescaleAction(Wrapper):
    """Agent acts in ``[-1, 1]^d``; actions are clipped there and mapped affinely to the env's bounds.

    Policies then need no knowledge of the bounds, and a Gaussian sample outside
    the box is clipped (the agent keeps the unclipped sample for its log-prob).
    """

    def __init__(self, env: Env):
        super().__init__(env)
        space = env.action_space(env.default_params)
        if not isinstance(space, Box) or not space.is_bounded:
            raise ValueError(f"RescaleAction needs a bounded Box action space, got {space}")
        self._low = np.asarray(space.low, np.float32)
        self._high = np.asarray(space.high, np.float32)

    def to_env_action(self, action: Array) -> Array:
        action = jnp.clip(action, -1.0, 1.0)
        return self._low + (action + 1.0) * 0.5 * (self._high - self._low)

    def step(self, key, state, action, params):
        return self.env.step(key, state, self.to_env_action(action), params)

    def action_space(self, params):
        shape = self.env.action_space(params).shape
        return Box(low=-np.ones(shape, np.float32), high=np.ones(shape, np.float32), shape=shape)


class GoalReward(Wrapper):
    """Replaces the reward with 1 on reaching a terminal state and 0 otherwise (a sparse goal reward: the
    MountainCar of BARFI's reference, ``MountainCarSparse``, beside gymnax's -1 a step)."""

    def step(self, key, state, action, params):
        state, ts = self.env.step(key, state, action, params)
        return state, ts._replace(reward=ts.terminated.astype(jnp.float32))


class MaskObservation(Wrapper):
    """Keeps only the observation features ``keep`` of a flat ``[obs_dim]`` observation.

    Turns a fully observed task into a partially observed one (CartPole
    without its velocities): a policy has to infer the hidden features from
    the history, which needs memory (``--recurrent gru``).
    """

    def __init__(self, env: Env, keep: tuple[int, ...]):
        super().__init__(env)
        self.keep = tuple(int(i) for i in keep)
        self._index = np.asarray(self.keep, np.int32)

    def _mask(self, obs):
        return obs[..., self._index]

    def reset(self, key, params):
        state, obs = self.env.reset(key, params)
        return state, self._mask(obs)

    def step(self, key, state, action, params):
        state, ts = self.env.step(key, state, action, params)
        return state, ts._replace(obs=self._mask(ts.obs), final_obs=self._mask(ts.final_obs))

    def observation_space(self, params):
        space = self.env.observation_space(params)
        low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)[..., self._index]
        high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)[..., self._index]
        return Box(low=low, high=high, shape=low.shape)


class EpisodeStatisticsState(NamedTuple):
    env_state: object
    episode_return: Array  # running undiscounted return of the current episode
    episode_length: Array
    returned_episode_return: Array  # return of the last finished episode (0 before any)
    returned_episode_length: Array


class EpisodeStatistics(Wrapper):
    """Tracks undiscounted episode returns and lengths.

    Adds to ``Timestep.info``: ``episode_return`` / ``episode_length`` (of the
    last finished episode, 0 before the first one ends), and ``episode_done``
    (an episode ended on this step, so the two values above are fresh).
    """

    def reset(self, key, params):
        state, obs = self.env.reset(key, params)
        zero = jnp.zeros((), jnp.float32)
        return EpisodeStatisticsState(state, zero, jnp.zeros((), jnp.int32), zero, jnp.zeros((), jnp.int32)), obs

    def step(self, key, state, action, params):
        env_state, ts = self.env.step(key, state.env_state, action, params)
        done = ts.done
        ep_return = state.episode_return + ts.reward
        ep_length = state.episode_length + 1
        new_state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
            returned_episode_return=jnp.where(done, ep_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, ep_length, state.returned_episode_length),
        )
        info = dict(ts.info)
        info.update(
            episode_return=new_state.returned_episode_return,
            episode_length=new_state.returned_episode_length,
            episode_done=done,
        )
        return new_state, ts._replace(info=info)


class VecEnv(Wrapper):
    """``num_envs`` copies of ``env`` stepped together with ``vmap``.

    ``reset``/``step`` take one key and split it per environment; params are
    shared (not batched) unless ``batched_params`` is set, in which case every
    leaf of ``params`` carries a leading ``[num_envs]`` axis (one level per env,
    as curricula need).
    """

    def __init__(self, env: Env, num_envs: int, batched_params: bool = False):
        super().__init__(env)
        self.num_envs = int(num_envs)
        self._params_axis = 0 if batched_params else None

    def reset(self, key, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, self._params_axis))(keys, params)

    def step(self, key, state, action, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step, in_axes=(0, 0, 0, self._params_axis))(keys, state, action, params)


class RunningMeanStd(NamedTuple):
    """Running mean / variance of observations (parallel Welford update)."""

    mean: Array
    var: Array
    count: Array

    @classmethod
    def create(cls, shape) -> "RunningMeanStd":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: Array) -> "RunningMeanStd":
        """Folds a ``[B, *shape]`` batch into the statistics."""
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)
        return self.merge(batch_mean, batch_var, batch.shape[0])

    def merge(self, batch_mean: Array, batch_var: Array, batch_count) -> "RunningMeanStd":
        """Folds the moments of a batch (``batch_count`` samples, possibly traced) into the statistics."""
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, obs: Array, clip: float) -> Array:
        return jnp.clip((obs - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


class NormalizeState(NamedTuple):
    env_state: object
    obs_stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Normalises observations of a :class:`VecEnv` with running statistics carried in the state.

    Args:
        env: a vectorised env (observations ``[B, obs_dim]``).
        clip: normalised observations are clipped to ``[-clip, clip]``.
        fixed_stats: if given, these statistics are used and never updated
            (evaluation with the training statistics frozen).
    """

    def __init__(self, env: Env, clip: float = 10.0, fixed_stats: RunningMeanStd | None = None):
        super().__init__(env)
        self.clip = clip
        self.fixed_stats = fixed_stats

    def reset(self, key, params):
        env_state, obs = self.env.reset(key, params)
        stats = self.fixed_stats
        if stats is None:
            stats = RunningMeanStd.create(obs.shape[1:]).update(obs)
        return NormalizeState(env_state, stats), stats.normalize(obs, self.clip)

    def step(self, key, state, action, params):
        env_state, ts = self.env.step(key, state.env_state, action, params)
        stats = state.obs_stats if self.fixed_stats is not None else state.obs_stats.update(ts.obs)
        ts = ts._replace(obs=stats.normalize(ts.obs, self.clip), final_obs=stats.normalize(ts.final_obs, self.clip))
        return NormalizeState(env_state, stats), ts


def find_obs_stats(env_state) -> RunningMeanStd | None:
    """The observation statistics inside a (possibly wrapped) env state, or None."""
    if isinstance(env_state, NormalizeState):
        return env_state.obs_stats
    return None


def make_vec_env(
    env: Env,
    num_envs: int,
    normalize_obs: bool = False,
    obs_stats: RunningMeanStd | None = None,
    batched_params: bool = False,
) -> Env:
    """Standard stack used by agents: episode statistics -> vectorise -> (normalise).

    ``env`` should already be flattened / action-rescaled (see :func:`jaxrl.envs.make`).
    Pass ``obs_stats`` to evaluate with frozen training statistics.
    """
    vec = VecEnv(EpisodeStatistics(env), num_envs, batched_params=batched_params)
    if normalize_obs:
        vec = NormalizeObservation(vec, fixed_stats=obs_stats)
    return vec
