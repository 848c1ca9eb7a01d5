"""Experience collection shared by all agents."""
from __future__ import annotations

import jax

from jaxrl.types import Transition


def collect_rollout(key, policy_dist, vec_env, env_params, env_state, obs, rollout_len: int):
    """Steps ``vec_env`` for ``rollout_len`` steps, sampling actions from a policy.

    All randomness of the rollout (action noise for every step and one env key
    per step) is drawn before the scan in batched calls; on CPU this is
    measurably cheaper than splitting keys inside the loop.

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
    key_noise, key_env = jax.random.split(key)
    dist_shape = jax.eval_shape(policy_dist, obs)
    noise = type(dist_shape).draw_noise(key_noise, (rollout_len,) + tuple(dist_shape.noise_shape()))
    env_keys = jax.random.split(key_env, rollout_len)

    def step(carry, x):
        env_state, obs = carry
        step_noise, env_key = x
        dist = policy_dist(obs)
        action = dist.sample_from_noise(step_noise)
        env_state, ts = vec_env.step(env_key, env_state, action, env_params)
        transition = Transition(
            obs=obs,
            action=action,
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            final_obs=ts.final_obs,
            log_prob=dist.log_prob(action),
            info=ts.info,
        )
        return (env_state, ts.obs), (transition, dist)

    (env_state, obs), (transitions, dists) = jax.lax.scan(step, (env_state, obs), (noise, env_keys))
    return env_state, obs, transitions, dists
