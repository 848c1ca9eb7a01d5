"""Fitness of policy parameters from rollouts, for a whole population in one call.

A solution is the parameter pytree of a policy network. Its fitness is the
mean undiscounted return of the first episode in each of ``M`` fixed-length
rollouts: a ``lax.scan`` of ``num_steps`` env steps, ``vmap``-ed over episodes
and then over the population. Every individual of a generation plays the same
``M`` episode keys (common random numbers: differences in fitness come from
the parameters, not from luckier start states).

Observation normalisation, when on, is shared by the population: every
individual acts on observations normalised with the same frozen statistics,
and the statistics are updated once per generation from all observations the
population saw (Salimans et al. 2017).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.envs import RunningMeanStd

OBS_CLIP = 10.0  # the clip of jaxrl.envs.NormalizeObservation, so saved policies see the same inputs


class Rollouts(NamedTuple):
    """What a population's rollouts produced.

    Attributes:
        returns: ``[N]`` mean return over the ``M`` episodes (the fitness).
        episode_returns: ``[N, M]``.
        behaviour: ``[N, B]`` behaviour characterisation, averaged over episodes.
        obs_mean / obs_var: ``[obs_dim]`` moments of the observations acted on
            before each episode ended (all individuals and episodes pooled).
        obs_count: scalar, number of those observations.
    """

    returns: jax.Array
    episode_returns: jax.Array
    behaviour: jax.Array
    obs_mean: jax.Array
    obs_var: jax.Array
    obs_count: jax.Array


def final_observation(final_obs: jax.Array) -> jax.Array:
    """Default behaviour characterisation: the observation the episode ended in, ``[obs_dim] -> [obs_dim]``."""
    return final_obs


def episode_rollout(key, act: Callable, env, env_params, num_steps: int, obs_stats: RunningMeanStd | None):
    """One episode of a deterministic policy, cut at ``num_steps`` steps.

    Args:
        act: ``obs [obs_dim] -> action``.
        obs_stats: frozen normalisation statistics, or None.

    Returns:
        ``(return [], final_obs [obs_dim], obs_sum [obs_dim], obs_sq_sum [obs_dim], count [])``:
        the return of the first episode, the observation it ended in (the last
        one if it did not end), and raw-observation sums over the steps played
        before it ended.
    """
    key_reset, key_steps = jax.random.split(key)
    state, obs = env.reset(key_reset, env_params)

    def step(carry, step_key):
        state, obs, ret, final, finished, s1, s2, n = carry
        live = ~finished
        s1, s2, n = s1 + live * obs, s2 + live * obs**2, n + live
        x = obs if obs_stats is None else obs_stats.normalize(obs, OBS_CLIP)
        state, ts = env.step(step_key, state, act(x), env_params)
        ret = ret + jnp.where(finished, 0.0, ts.reward)
        final = jnp.where(live & ts.done, ts.final_obs, final)
        finished = finished | ts.done
        return (state, ts.obs, ret, final, finished, s1, s2, n), None

    zeros = jnp.zeros_like(obs)
    init = (state, obs, jnp.zeros((), jnp.float32), zeros, jnp.zeros((), bool), zeros, zeros, jnp.zeros((), jnp.float32))
    (state, obs, ret, final, finished, s1, s2, n), _ = jax.lax.scan(step, init, jax.random.split(key_steps, num_steps))
    final = jnp.where(finished, final, obs)
    return ret, final, s1, s2, n


def make_population_fitness(
    env,
    apply_action: Callable,
    num_episodes: int,
    num_steps: int,
    behaviour_fn: Callable = final_observation,
) -> Callable:
    """``fitness(key, population_params, obs_stats, env_params) -> Rollouts`` for a population.

    Args:
        env: a single (unvectorised) jaxrl env, e.g. ``jaxrl.envs.make(name)``.
        apply_action: ``(params, obs [obs_dim]) -> action`` of the policy network.
        num_episodes: ``M`` episodes per individual.
        num_steps: static length of every episode's scan.
        behaviour_fn: ``final_obs [obs_dim] -> [B]`` behaviour characterisation.

    The returned function takes ``population_params`` with a leading ``[N]``
    axis on every leaf, ``obs_stats`` (a ``RunningMeanStd`` or None) and the
    env params every individual plays (traced: a level can change per call).
    """

    def one(params, key, obs_stats, env_params):
        return episode_rollout(key, lambda o: apply_action(params, o), env, env_params, num_steps, obs_stats)

    over_episodes = jax.vmap(one, in_axes=(None, 0, None, None))
    over_population = jax.vmap(over_episodes, in_axes=(0, None, None, None))

    def fitness(key, population_params, obs_stats, env_params) -> Rollouts:
        keys = jax.random.split(key, num_episodes)  # shared by every individual
        rets, finals, s1, s2, n = over_population(population_params, keys, obs_stats, env_params)  # [N, M, ...]
        behaviour = jnp.mean(jax.vmap(jax.vmap(behaviour_fn))(finals), axis=1)
        count = jnp.sum(n)
        mean = jnp.sum(s1, axis=(0, 1)) / jnp.maximum(count, 1.0)
        var = jnp.maximum(jnp.sum(s2, axis=(0, 1)) / jnp.maximum(count, 1.0) - mean**2, 0.0)
        return Rollouts(rets.mean(axis=1), rets, behaviour, mean, var, count)

    return fitness


def update_obs_stats(stats: RunningMeanStd, rollouts: Rollouts) -> RunningMeanStd:
    """Folds a generation's pooled observation moments into the shared statistics."""
    return stats.merge(rollouts.obs_mean, rollouts.obs_var, rollouts.obs_count)
