"""SAC (Haarnoja et al. 2018, with the learned temperature of "SAC: algorithms and applications")
for continuous control, on the shared off-policy loop.

What is specific to SAC lives here: the squashed Gaussian actor, independently
initialised twin critics with Polyak-averaged targets (clipped double Q,
Fujimoto et al. 2018), the learned temperature with target entropy
``-scale * |A|``, and one learner step. Actions live in ``[-1, 1]^A``:
:func:`jaxrl.envs.make` rescales them affinely to the env's bounds
(:class:`~jaxrl.envs.wrappers.RescaleAction`), and the tanh keeps them inside.

Order inside a learner step follows stable-baselines3: the critic step uses the
temperature and actor of before the step; the actor step then uses the
updated critics; the temperature step uses the log-probabilities of the
actor's sample of this step.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import option
from jaxrl.envs import Box
from jaxrl.envs.core import Env
from jaxrl.losses.td import polyak_update, td_target
from jaxrl.networks import TanhGaussian
from jaxrl.networks.continuous import SquashedGaussianActor, TwinQNetwork
from jaxrl.training.off_policy import OffPolicyConfig, config_problem, hparams_from_config, make_off_policy_agent
from jaxrl.training.optim import apply_gradients, make_optimizer

ADAM_EPS = 1e-8  # torch's and optax.adam's default, as in SB3's and CleanRL's SAC


@dataclasses.dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC options. Traced ones can be swept with ``--sweep name=v1,v2``."""

    hidden_sizes: tuple = option((256, 256), "hidden layer sizes of the actor and of each critic")
    activation: str = option("relu", "hidden activation", choices=("tanh", "relu", "gelu", "silu"))
    num_critics: int = option(2, "critics, each independently initialised; targets use their minimum", minimum=1)
    autotune: bool = option(True, "learn the temperature alpha towards the target entropy (else alpha stays init_alpha)")
    lr: float = option(3e-4, "Adam learning rate of the actor and the temperature", traced=True, minimum=0.0)
    q_lr: float = option(3e-4, "Adam learning rate of the critics", traced=True, minimum=0.0)
    gamma: float = option(0.99, "discount factor", traced=True, minimum=0.0)
    tau: float = option(0.005, "Polyak rate of the target critics, every learner step", traced=True, minimum=0.0)
    init_alpha: float = option(1.0, "initial temperature alpha (entropy coefficient; learned as log alpha)", traced=True, positive=True)
    target_entropy_scale: float = option(1.0, "target entropy is -scale * action_dim", traced=True)
    max_grad_norm: float = option(float("inf"), "global gradient-norm clip of each network (inf: none, as SB3 and CleanRL)",
                                  traced=True, minimum=0.0)


class SACHParams(NamedTuple):
    """Traced hyperparameters: every leaf is a float scalar (``[G*S]`` when vmapped)."""

    lr: jax.Array
    q_lr: jax.Array
    gamma: jax.Array
    tau: jax.Array
    init_alpha: jax.Array
    target_entropy_scale: jax.Array
    max_grad_norm: jax.Array


class SACParams(NamedTuple):
    actor: Any
    critic: Any  # leaves [num_critics, ...]
    target_critic: Any
    log_alpha: jax.Array  # scalar


class SACOptState(NamedTuple):
    actor: Any
    critic: Any
    log_alpha: Any


def sac_hparams(cfg: SACConfig) -> SACHParams:
    return hparams_from_config(cfg, SACHParams)


def validate_sac(cfg: SACConfig, env: Env, total_timesteps: int) -> str | None:
    """Host-side checks needing the env: an error message naming the flag, or None."""
    space = env.action_space(env.default_params)
    if not isinstance(space, Box):
        return f"--algo: sac needs a continuous (Box) action space; {env.name} has discrete actions (use dqn)"
    if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
        return f"--env: sac needs bounded actions; {env.name} has an unbounded action space"
    return config_problem(cfg)


def sac_networks(cfg: SACConfig, action_dim: int):
    """``(actor, critic)``: the squashed Gaussian actor and the twin critics."""
    actor = SquashedGaussianActor(action_dim, tuple(cfg.hidden_sizes), cfg.activation)
    critic = TwinQNetwork(tuple(cfg.hidden_sizes), cfg.activation, cfg.num_critics)
    return actor, critic


def make_networks(cfg: SACConfig, env: Env):
    return sac_networks(cfg, int(env.action_space(env.default_params).shape[0]))


class SACLearner(NamedTuple):
    """SAC's pure pieces for one player, on observations ``[obs_dim]`` and actions ``[-1, 1]^A``.

    Attributes:
        init: ``(key, hparams) -> (SACParams, SACOptState)``.
        learn_step: ``(key, params, opt_state, batch, hparams, alpha=None) -> (params, opt_state, metrics)``: one
            gradient step on ``batch`` (a replay item batch: obs, action, reward, terminated, next_obs). With
            ``alpha [B]`` given, each transition's entropy temperature is its own fixed value (the adversary of
            QARL, whose temperature is part of its input) and the learned temperature is left unchanged.
        behaviour: ``(params, obs, env_steps, hparams) -> TanhGaussian`` (broad fixed noise before learning starts).
        act: ``(params, obs, key, deterministic) -> action``.
    """

    init: Any
    learn_step: Any
    behaviour: Any
    act: Any


def sac_learner(cfg: SACConfig, obs_dim: int, action_dim: int) -> SACLearner:
    """SAC's networks, initialisation, behaviour, greedy / sampled act and learner step for one player."""
    actor, critic = sac_networks(cfg, action_dim)

    def init_learner(key, hp: SACHParams):
        key_actor, key_critic = jax.random.split(key)
        obs = jnp.zeros((1, obs_dim), jnp.float32)
        actor_params = actor.init(key_actor, obs)
        critic_params = critic.init(key_critic, obs, jnp.zeros((1, action_dim), jnp.float32))
        log_alpha = jnp.log(hp.init_alpha).astype(jnp.float32)
        params = SACParams(actor_params, critic_params, critic_params, log_alpha)
        opt = make_optimizer(hp.max_grad_norm, ADAM_EPS)
        return params, SACOptState(opt.init(actor_params), opt.init(critic_params), opt.init(log_alpha))

    def behaviour(params: SACParams, obs, env_steps, hp: SACHParams):
        dist = actor.apply(params.actor, obs)
        # Before learning starts the untrained actor is replaced by a broad fixed distribution,
        # tanh(N(0, 1)) in every dimension (SB3 and CleanRL draw uniform actions there).
        warm = env_steps < cfg.learning_starts
        return TanhGaussian(jnp.where(warm, 0.0, dist.mean), jnp.where(warm, 0.0, dist.log_std))

    def act(params: SACParams, obs, key, deterministic: bool = False):
        dist = actor.apply(params.actor, obs)
        return dist.mode() if deterministic else dist.sample(key)

    def critic_loss_fn(critic_params, batch, targets):
        q = critic.apply(critic_params, batch.obs, batch.action)  # [num_critics, B]
        loss = 0.5 * jnp.sum(jnp.mean((q - targets[None]) ** 2, axis=-1))
        return loss, jnp.mean(q)

    def actor_loss_fn(actor_params, critic_params, obs, noise, alpha):
        action, log_prob = actor.apply(actor_params, obs).sample_and_log_prob_from_noise(noise)
        q = jnp.min(critic.apply(critic_params, obs, action), axis=0)
        return jnp.mean(alpha * log_prob - q), log_prob

    def learn_step(key, params: SACParams, opt_state: SACOptState, batch, hp: SACHParams, alpha=None):
        key_next, key_pi = jax.random.split(key)
        fixed_alpha = alpha is not None
        alpha = jnp.exp(params.log_alpha) if alpha is None else alpha  # [] or [B]

        # Critics: soft clipped-double-Q target from the target critics at the actor's next action.
        noise_next = TanhGaussian.draw_noise(key_next, batch.action.shape)
        next_action, next_log_prob = actor.apply(params.actor, batch.next_obs).sample_and_log_prob_from_noise(noise_next)
        next_q = jnp.min(critic.apply(params.target_critic, batch.next_obs, next_action), axis=0)
        targets = td_target(batch.reward, batch.terminated, next_q - alpha * next_log_prob, hp.gamma)
        (critic_loss, q_mean), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(params.critic, batch, targets)
        critic_params, critic_opt, critic_grad_norm = apply_gradients(
            params.critic, opt_state.critic, critic_grads, hp.q_lr, hp.max_grad_norm, ADAM_EPS)

        # Actor: reparameterised sample, against the updated critics.
        noise = TanhGaussian.draw_noise(key_pi, batch.action.shape)
        (actor_loss, log_prob), actor_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            params.actor, critic_params, batch.obs, noise, alpha)
        actor_params, actor_opt, actor_grad_norm = apply_gradients(
            params.actor, opt_state.actor, actor_grads, hp.lr, hp.max_grad_norm, ADAM_EPS)

        # Temperature: gradient of -log_alpha * (log pi + target entropy) (SB3's form).
        log_alpha, alpha_opt = params.log_alpha, opt_state.log_alpha
        if cfg.autotune and not fixed_alpha:
            target_entropy = -hp.target_entropy_scale * action_dim
            gap = jax.lax.stop_gradient(jnp.mean(log_prob) + target_entropy)
            alpha_grad = -gap  # d/d log_alpha of -log_alpha * gap
            log_alpha, alpha_opt, _ = apply_gradients(log_alpha, alpha_opt, alpha_grad, hp.lr, hp.max_grad_norm, ADAM_EPS)

        params = SACParams(actor_params, critic_params, polyak_update(params.target_critic, critic_params, hp.tau), log_alpha)
        metrics = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "alpha": jnp.mean(alpha),
            "entropy": -jnp.mean(log_prob),
            "q_mean": q_mean,
            "critic_grad_norm": critic_grad_norm,
            "actor_grad_norm": actor_grad_norm,
        }
        return params, SACOptState(actor_opt, critic_opt, alpha_opt), metrics

    return SACLearner(init_learner, learn_step, behaviour, act)


def make_sac(cfg: SACConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16, deterministic_eval: bool = True):
    """Builds SAC for ``env`` (single, unvectorised, actions in ``[-1, 1]^A``). Returns an :class:`~jaxrl.agents.base.Agent`."""
    problem = validate_sac(cfg, env, total_timesteps)
    if problem:
        raise ValueError(problem)
    obs_dim = int(np.prod(env.observation_space(env.default_params).shape))
    learner = sac_learner(cfg, obs_dim, int(env.action_space(env.default_params).shape[0]))

    return make_off_policy_agent(
        cfg, env, total_timesteps,
        init_learner=learner.init,
        behaviour=learner.behaviour,
        learn_step=learner.learn_step,
        act=learner.act,
        num_eval_episodes=num_eval_episodes,
        deterministic_eval=deterministic_eval,
    )
