"""Two SAC players on a two-player env (:mod:`jaxrl.envs.adversarial`), on the shared off-policy loop.

One iteration collects ``steps_per_update`` vectorised steps with the joint
policy (the protagonist's squashed Gaussian beside the adversary's, both
acting on the observation with the episode's temperature appended), adds them
to one replay buffer, and then, learner step by learner step, the adversary
updates first and the protagonist second on the same replay batch (QARL's
order). The adversary learns from ``-reward`` (zero-sum).

How the adversary is trained is the method's:

* ``tempered`` (QARL, the fixed-temperature and linear-schedule baselines): its entropy temperature is
  each transition's own, read from the observation's last feature (QARL's ``AdaptiveTempSAC``);
* ``autotuned`` (RARL, and the worst-case adversary of the evaluation): ordinary SAC with its learned
  temperature;
* ``none``: no adversary learns (the env's force budget is 0).

Where each episode's temperature comes from is a :class:`~jaxrl.training.off_policy.Context` over the
env params: the self-paced teacher, a schedule, a constant, or 0.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.sac import SACConfig, sac_learner
from jaxrl.envs.adversarial import split_action
from jaxrl.networks import TanhGaussian
from jaxrl.training.off_policy import Context, make_off_policy_agent

ADVERSARY_KINDS = ("tempered", "autotuned", "none")
FROZEN_LOG_STD = -30.0  # a frozen protagonist's behaviour: its greedy action (exp(-30) ~ 1e-13 of noise)


class TwoPlayerParams(NamedTuple):
    protagonist: Any  # SACParams
    adversary: Any  # SACParams


class TwoPlayerHParams(NamedTuple):
    """Both players' SAC hyperparameters (one set, as in QARL) and the curriculum's."""

    sac: Any  # SACHParams
    curriculum: Any  # the program's curriculum hyperparameters (NamedTuple)


def player_batches(batch, protagonist_dim: int):
    """A joint replay batch -> ``(protagonist's, adversary's)`` batches: each its part of the action, the adversary
    the negated reward (zero-sum); observations, terminations and next observations shared."""
    protagonist_action, adversary_action = split_action(batch.action, protagonist_dim)
    return batch._replace(action=protagonist_action), batch._replace(action=adversary_action, reward=-batch.reward)


def joint_distribution(protagonist: TanhGaussian, adversary: TanhGaussian) -> TanhGaussian:
    """The independent product of the two players' squashed Gaussians over the joint action ``[A_p + A_a]``."""
    return TanhGaussian(jnp.concatenate([protagonist.mean, adversary.mean], -1),
                        jnp.concatenate([protagonist.log_std, adversary.log_std], -1))


def temperature_of(obs: jax.Array) -> jax.Array:
    """The episode temperature carried as the observation's last feature: ``[..., obs_dim] -> [...]``."""
    return obs[..., -1]


def make_two_player_sac(cfg: SACConfig, env, total_timesteps: int, *, adversary: str, learn_protagonist: bool = True,
                        context: Context | None = None, num_eval_episodes: int = 16, deterministic_eval: bool = True):
    """The two-player agent. Returns an :class:`~jaxrl.agents.base.Agent` whose ``act`` (and evaluation) plays the
    protagonist against no adversary (a zero force); :func:`joint_act` plays both.

    Args:
        cfg: SAC options of both players (and the replay options of the shared loop).
        env: a :func:`jaxrl.envs.adversarial.make_two_player` env.
        adversary: one of :data:`ADVERSARY_KINDS`.
        learn_protagonist: False freezes the protagonist (the worst-case adversary's training).
        context: where each episode's temperature comes from (None: the env params the loop passes).
    """
    if adversary not in ADVERSARY_KINDS:
        raise ValueError(f"adversary must be one of {ADVERSARY_KINDS}, got {adversary!r}")
    obs_dim = int(env.observation_space(env.default_params).shape[0])
    p_dim, a_dim = int(env.protagonist_dim), int(env.adversary_dim)
    protagonist = sac_learner(cfg, obs_dim, p_dim)
    opponent = sac_learner(cfg, obs_dim, a_dim)

    def init_learner(key, hp: TwoPlayerHParams):
        key_p, key_a = jax.random.split(key)
        (p_params, p_opt), (a_params, a_opt) = protagonist.init(key_p, hp.sac), opponent.init(key_a, hp.sac)
        return TwoPlayerParams(p_params, a_params), TwoPlayerParams(p_opt, a_opt)

    def behaviour(params: TwoPlayerParams, obs, env_steps, hp: TwoPlayerHParams):
        if learn_protagonist:
            p_dist = protagonist.behaviour(params.protagonist, obs, env_steps, hp.sac)
        else:  # a frozen protagonist plays as it is evaluated, greedily, from the first step
            greedy = protagonist.behaviour(params.protagonist, obs, jnp.int32(cfg.learning_starts), hp.sac)
            p_dist = TanhGaussian(greedy.mean, jnp.full_like(greedy.log_std, FROZEN_LOG_STD))
        return joint_distribution(p_dist, opponent.behaviour(params.adversary, obs, env_steps, hp.sac))

    def learn_step(key, params: TwoPlayerParams, opt_state: TwoPlayerParams, batch, hp: TwoPlayerHParams):
        key_a, key_p = jax.random.split(key)
        p_batch, a_batch = player_batches(batch, p_dim)
        p_params, p_opt, a_params, a_opt = params.protagonist, opt_state.protagonist, params.adversary, opt_state.adversary
        metrics = {}
        if adversary != "none":  # the adversary first, then the protagonist (QARL's alternation)
            alpha = temperature_of(a_batch.obs) if adversary == "tempered" else None
            a_params, a_opt, a_metrics = opponent.learn_step(key_a, a_params, a_opt, a_batch, hp.sac, alpha=alpha)
            metrics.update({f"adversary_{k}": v for k, v in a_metrics.items()})
        if learn_protagonist:
            p_params, p_opt, p_metrics = protagonist.learn_step(key_p, p_params, p_opt, p_batch, hp.sac)
            metrics.update({f"protagonist_{k}": v for k, v in p_metrics.items()})
        return TwoPlayerParams(p_params, a_params), TwoPlayerParams(p_opt, a_opt), metrics

    def act(params: TwoPlayerParams, obs, key, deterministic: bool = False):
        action = protagonist.act(params.protagonist, obs, key, deterministic)
        return jnp.concatenate([action, jnp.zeros(action.shape[:-1] + (a_dim,), action.dtype)], -1)

    agent = make_off_policy_agent(cfg, env, total_timesteps, init_learner=init_learner, behaviour=behaviour,
                                  learn_step=learn_step, act=act, num_eval_episodes=num_eval_episodes,
                                  deterministic_eval=deterministic_eval, context=context)
    return agent, joint_act_fn(protagonist.act, opponent.act)


def joint_act_fn(protagonist_act: Callable, adversary_act: Callable) -> Callable:
    """``(params: TwoPlayerParams, obs, key, deterministic) -> joint action``: both players act."""

    def joint_act(params: TwoPlayerParams, obs, key, deterministic: bool = True):
        key_p, key_a = jax.random.split(key)
        return jnp.concatenate([protagonist_act(params.protagonist, obs, key_p, deterministic),
                                adversary_act(params.adversary, obs, key_a, deterministic)], -1)

    return joint_act
