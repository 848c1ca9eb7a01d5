"""Evaluation rollouts inside the compiled program."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.envs import find_obs_stats, make_vec_env
from jaxrl.networks.recurrent import reset_where


def evaluate_episodes(key, act_fn, vec_env, env_params, num_steps: int, initial_policy_state=None):
    """Undiscounted return of the first episode of each of ``vec_env.num_envs`` envs.

    A fixed-length ``lax.scan`` of ``num_steps`` steps (at least the env's time
    limit, so every episode finishes); rewards after an env's first episode ends
    are ignored.

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

    Returns:
        ``[E]`` episode returns.
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
        state, ts = vec_env.step(key_env, state, action, env_params)
        policy_state = reset_where(ts.done, policy_state, initial_policy_state)
        returns = returns + jnp.where(finished, 0.0, ts.reward)
        finished = finished | ts.done
        return (state, ts.obs, policy_state, returns, finished), None

    init = (state, obs, initial_policy_state, jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), bool))
    (_, _, _, returns, _), _ = jax.lax.scan(step, init, jax.random.split(key_loop, num_steps))
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
        if initial_policy_state is None:
            act_fn = lambda obs, k: act(state.params, obs, k, deterministic)  # noqa: E731
            return evaluate_episodes(key, act_fn, eval_env, env_params, num_steps)
        act_fn = lambda obs, k, s: act(state.params, obs, k, deterministic, s)  # noqa: E731
        return evaluate_episodes(key, act_fn, eval_env, env_params, num_steps, initial_policy_state(num_episodes))

    return evaluate
