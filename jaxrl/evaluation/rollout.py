"""Evaluation rollouts inside the compiled program."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.envs import find_obs_stats, make_vec_env
from jaxrl.networks.recurrent import reset_where


def evaluate_episodes(key, act_fn, vec_env, env_params, num_steps: int, initial_policy_state=None, record: bool = False):
    """Undiscounted return of the first episode of each of ``vec_env.num_envs`` envs.

    At most ``num_steps`` steps (at least the env's time limit, so every
    episode finishes); rewards after an env's first episode ends are ignored.
    Without ``record`` the loop stops as soon as every episode has finished
    (a ``lax.while_loop``; under ``vmap`` when every member's have): the
    returns are those of the full-length scan, bit for bit (the same
    per-step keys, drawn before the loop), for a fraction of its steps
    when episodes end early. ``record`` needs the fixed length, so it scans.

    Args:
        key: PRNG key.
        act_fn: ``(obs [E, obs_dim], key) -> action [E, ...]``.
        vec_env: a vectorised env with ``num_envs = E``.
        env_params: its params.
        num_steps: static scan length.
        initial_policy_state: for a recurrent policy, its initial state (leaves
            ``[E, ...]``); ``act_fn`` is then ``(obs, key, policy_state) ->
            (action, policy_state)``. The state is carried through the scan and
            reset to the initial state after an episode ends, as in training.
        record: also return what each step acted on (to draw trajectories).

    Returns:
        ``[E]`` episode returns; with ``record``, ``(returns [E], env_states [T, E, ...],
        playing [T, E])``: the env state each step acted from, and whether that step still
        belonged to the first episode.
    """
    key_reset, key_loop = jax.random.split(key)
    state, obs = vec_env.reset(key_reset, env_params)
    num_envs = obs.shape[0]
    if initial_policy_state is None:  # feedforward: an empty state, so one scan serves both
        initial_policy_state, stateless_act = (), act_fn
        act_fn = lambda obs, k, policy_state: (stateless_act(obs, k), policy_state)  # noqa: E731

    def step(carry, step_key):
        state, obs, policy_state, returns, finished = carry
        key_act, key_env = jax.random.split(step_key)
        action, policy_state = act_fn(obs, key_act, policy_state)
        next_state, ts = vec_env.step(key_env, state, action, env_params)
        policy_state = reset_where(ts.done, policy_state, initial_policy_state)
        returns = returns + jnp.where(finished, 0.0, ts.reward)
        trace = (state, ~finished) if record else None
        finished = finished | ts.done
        return (next_state, ts.obs, policy_state, returns, finished), trace

    init = (state, obs, initial_policy_state, jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), bool))
    step_keys = jax.random.split(key_loop, num_steps)
    if record:
        (_, _, _, returns, _), trace = jax.lax.scan(step, init, step_keys)
        return (returns, *trace)

    def unfinished(loop):
        t, carry = loop
        return (t < num_steps) & ~jnp.all(carry[-1])

    def next_step(loop):
        t, carry = loop
        return t + 1, step(carry, step_keys[t])[0]

    _, (_, _, _, returns, _) = jax.lax.while_loop(unfinished, next_step, (jnp.zeros((), jnp.int32), init))
    return returns


def make_evaluate(env, act, num_episodes: int, deterministic: bool, normalize_obs: bool = False,
                  initial_policy_state=None):
    """An agent's ``evaluate(key, state, env_params, hparams) -> returns [num_episodes]``.

    Plays ``num_episodes`` fresh episodes (one per env of a new vectorised
    stack) with ``act(state.params, obs, key, deterministic)``; with
    ``normalize_obs`` the observations are normalised with the training
    statistics found in ``state.env_state``, frozen. The scan length is the
    time limit of ``env``'s default params (static).

    Args:
        env: the single, unvectorised env the agent trains on.
        act: the agent's ``(params, obs, key, deterministic) -> action``; for a
            recurrent agent ``(params, obs, key, deterministic, policy_state) ->
            (action, policy_state)``.
        initial_policy_state: a recurrent agent's ``batch_size -> state`` (see
            :class:`~jaxrl.agents.base.Agent`), None for a feedforward one.
    """
    num_steps = env.max_episode_steps(env.default_params)

    def evaluate(key, state, env_params, hparams):
        eval_env = make_vec_env(env, num_episodes, normalize_obs=normalize_obs, obs_stats=find_obs_stats(state.env_state))
        act_fn, policy_state = bind_policy(act, state.params, deterministic, initial_policy_state, num_episodes)
        return evaluate_episodes(key, act_fn, eval_env, env_params, num_steps, policy_state)

    return evaluate


def bind_policy(act, params, deterministic: bool, initial_policy_state, num_envs: int):
    """``(act_fn, initial state)`` for :func:`evaluate_episodes` from an agent's ``act`` and its parameters
    (the state is None for a feedforward policy, ``initial_policy_state(num_envs)`` for a recurrent one)."""
    if initial_policy_state is None:
        return (lambda obs, k: act(params, obs, k, deterministic)), None  # noqa: E731
    return (lambda obs, k, s: act(params, obs, k, deterministic, s)), initial_policy_state(num_envs)  # noqa: E731


def play_levels(key, act, params, env, levels, deterministic: bool = False, initial_policy_state=None):
    """One episode on each level with the env states it passed through, to draw trajectories.

    Args:
        act, params: the agent's ``act`` (see :func:`make_evaluate`) and its parameters.
        env: the single env whose params are levels.
        levels: leaves ``[L, ...]``.

    Returns:
        ``(returns [L], env_states [T, L, ...], playing [T, L])`` as :func:`evaluate_episodes` records them,
        ``T`` the env's time limit.
    """
    num_levels = jax.tree.leaves(levels)[0].shape[0]
    vec_env = make_vec_env(env, num_levels, batched_params=True)
    act_fn, policy_state = bind_policy(act, params, deterministic, initial_policy_state, num_levels)
    return evaluate_episodes(key, act_fn, vec_env, levels, env.max_episode_steps(env.default_params), policy_state, record=True)
