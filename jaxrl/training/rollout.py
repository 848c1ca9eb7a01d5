"""Experience collection shared by all agents."""
from __future__ import annotations

import jax

from jaxrl.networks.recurrent import reset_where
from jaxrl.types import Transition


def collect_rollout(key, policy_dist, vec_env, env_params, env_state, obs, rollout_len: int):
    """Steps ``vec_env`` for ``rollout_len`` steps, sampling actions from a policy.

    All randomness of the rollout (action noise for every step and one env key
    per step) is drawn before the scan in batched calls; on CPU this is
    measurably cheaper than splitting keys inside the loop. What does not need
    to be sequential (the actions' log-probabilities under the stored
    behaviour distributions) is computed after the scan in one batched call.

    Args:
        key: PRNG key.
        policy_dist: ``obs [B, ...] -> dist``, a distribution from
            :mod:`jaxrl.networks.distributions` (``sample_from_noise``, ``log_prob``).
        vec_env: vectorised env (``num_envs = B``).
        env_params: env params.
        env_state, obs: where the previous rollout stopped.
        rollout_len: ``T`` (static).

    Returns:
        ``(env_state, obs, transitions [T, B, ...], dists [T, B, ...])``, where
        ``dists`` are the behaviour distributions' parameters at each step.
    """
    env_state, obs, _, transitions, dists = collect_recurrent_rollout(
        key, lambda state, o: (state, policy_dist(o)), vec_env, env_params, env_state, obs, (), (), rollout_len
    )
    return env_state, obs, transitions, dists


def collect_recurrent_rollout(key, policy_step, vec_env, env_params, env_state, obs, policy_state, initial_policy_state,
                              rollout_len: int):
    """:func:`collect_rollout` for a policy that carries a state (a recurrent core) across steps.

    After each env step the policy state of every env whose episode ended
    (terminated or truncated) is reset to ``initial_policy_state``, so the
    first observation of the next episode is processed from a fresh state.
    The state returned is therefore the one to act on ``obs`` with.

    Args:
        policy_step: ``(policy_state, obs [B, ...]) -> (policy_state, dist)``.
        policy_state: leaves ``[B, ...]``, the state to process ``obs`` with (``()`` for none).
        initial_policy_state: leaves ``[B, ...]`` or broadcastable to them.
        Other arguments as in :func:`collect_rollout`.

    Returns:
        ``(env_state, obs, policy_state, transitions [T, B, ...], dists [T, B, ...])``.
    """
    key_noise, key_env = jax.random.split(key)
    _, dist_shape = jax.eval_shape(policy_step, policy_state, obs)
    noise = type(dist_shape).draw_noise(key_noise, (rollout_len,) + tuple(dist_shape.noise_shape()))
    env_keys = jax.random.split(key_env, rollout_len)

    def step(carry, x):
        env_state, obs, policy_state = carry
        step_noise, env_key = x
        policy_state, dist = policy_step(policy_state, obs)
        action = dist.sample_from_noise(step_noise)
        env_state, ts = vec_env.step(env_key, env_state, action, env_params)
        transition = Transition(
            obs=obs,
            action=action,
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            final_obs=ts.final_obs,
            log_prob=None,  # after the scan, batched over the whole trajectory
            info=ts.info,
        )
        policy_state = reset_where(ts.done, policy_state, initial_policy_state)
        return (env_state, ts.obs, policy_state), (transition, dist)

    (env_state, obs, policy_state), (transitions, dists) = jax.lax.scan(
        step, (env_state, obs, policy_state), (noise, env_keys)
    )
    # vmapped over time, so each step's distribution sees its leaves exactly as in the loop (e.g. a per-step scalar epsilon)
    transitions = transitions._replace(log_prob=jax.vmap(lambda dist, action: dist.log_prob(action))(dists, transitions.action))
    return env_state, obs, policy_state, transitions, dists
