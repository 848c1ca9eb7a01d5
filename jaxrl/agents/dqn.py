"""DQN (Mnih et al. 2015) with optional double Q-learning (van Hasselt et al. 2016) on the shared off-policy loop.

What is specific to DQN lives here: its config, the Q-network parameters
(online and target), epsilon-greedy behaviour, the TD loss (MSE, Huber, or the
HL-Gauss classification loss of a categorical Q head) and the periodic target
update. Collection, replay, learning gate, evaluation, seeds and sweeps are
shared (:mod:`jaxrl.training.off_policy`, :mod:`jaxrl.training.loop`).

Defaults follow CleanRL's ``dqn_jax.py`` on CartPole-v1: one env, a learner
step every 10 env steps on 128 transitions, a 10k replay buffer, learning from
10k steps, target copy every 500 steps, epsilon 1 -> 0.05 over half the run,
Adam 2.5e-4 (eps 1e-8), 120-84 ReLU.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.config import option
from jaxrl.envs import Discrete
from jaxrl.envs.core import Env
from jaxrl.losses.hl_gauss import categorical_value, hl_gauss_loss, hl_gauss_sigma
from jaxrl.losses.td import greedy_next_value, polyak_update, regression_loss, td_target
from jaxrl.networks import EpsilonGreedy, QNetwork
from jaxrl.training.off_policy import OffPolicyConfig, config_problem, hparams_from_config, make_off_policy_agent
from jaxrl.training.optim import apply_gradients, make_optimizer
from jaxrl.training.schedules import linear_schedule

ADAM_EPS = 1e-8  # torch's and optax.adam's default, as in CleanRL's and SB3's DQN


@dataclasses.dataclass(frozen=True)
class DQNConfig(OffPolicyConfig):
    """DQN options. Traced ones can be swept with ``--sweep name=v1,v2``."""

    steps_per_update: int = option(10, "vectorised env steps per iteration, i.e. the train frequency (each adds num_envs transitions)", minimum=1)
    batch_size: int = option(128, "transitions per learner step (distinct, uniform from the replay buffer)", minimum=1)
    buffer_size: int = option(10_000, "replay buffer capacity in transitions (per seed, on device)", minimum=1)
    learning_starts: int = option(10_000, "env steps per seed collected before learning starts", minimum=0)
    target_update_interval: int = option(500, "env steps per seed between target-network updates (by Polyak tau; tau=1 copies)", minimum=1)
    hidden_sizes: tuple = option((120, 84), "hidden layer sizes of the Q-network")
    activation: str = option("relu", "hidden activation", choices=("tanh", "relu", "gelu", "silu"))
    layer_norm: bool = option(False, "LayerNorm after every hidden layer")
    double_q: bool = option(False, "double Q-learning: the online network picks the next action, the target network values it")
    value_loss: str = option("mse", "TD loss: squared error, Huber (delta 1), or HL-Gauss cross-entropy of a categorical Q head",
                             choices=("mse", "huber", "hl_gauss"))
    value_bins: int = option(51, "bins of the categorical Q head (--value-loss hl_gauss)", minimum=2)
    value_min: float = option(0.0, "lower end of the categorical Q support (must cover the returns; targets are clipped into it)")
    value_max: float = option(100.0, "upper end of the categorical Q support")
    eval_epsilon: float = option(0.05, "epsilon of the stochastic evaluation policy (--eval-stochastic)", minimum=0.0)
    lr: float = option(2.5e-4, "Adam learning rate", traced=True, minimum=0.0)
    gamma: float = option(0.99, "discount factor", traced=True, minimum=0.0)
    tau: float = option(1.0, "target update rate at each target update (1: copy the online network)", traced=True, minimum=0.0)
    start_epsilon: float = option(1.0, "exploration epsilon at the start", traced=True, minimum=0.0)
    end_epsilon: float = option(0.05, "exploration epsilon after the decay", traced=True, minimum=0.0)
    exploration_fraction: float = option(0.5, "fraction of total_timesteps over which epsilon decays linearly", traced=True, minimum=0.0)
    max_grad_norm: float = option(10.0, "global gradient-norm clip", traced=True, minimum=0.0)
    value_sigma_ratio: float = option(0.75, "HL-Gauss target width in bin widths (--value-loss hl_gauss)", traced=True, minimum=0.0)


class DQNHParams(NamedTuple):
    """Traced hyperparameters: every leaf is a float scalar (``[G*S]`` when vmapped)."""

    lr: jax.Array
    gamma: jax.Array
    tau: jax.Array
    start_epsilon: jax.Array
    end_epsilon: jax.Array
    exploration_fraction: jax.Array
    max_grad_norm: jax.Array
    value_sigma_ratio: jax.Array


class DQNParams(NamedTuple):
    online: Any
    target: Any


def dqn_hparams(cfg: DQNConfig) -> DQNHParams:
    return hparams_from_config(cfg, DQNHParams)


def make_q_network(cfg: DQNConfig, env: Env) -> QNetwork:
    space = env.action_space(env.default_params)
    num_bins = cfg.value_bins if cfg.value_loss == "hl_gauss" else 0
    return QNetwork(action_dim=space.n, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                    layer_norm=cfg.layer_norm, num_bins=num_bins)


def validate_dqn(cfg: DQNConfig, env: Env, total_timesteps: int) -> str | None:
    """Host-side checks needing the env: an error message naming the flag, or None."""
    space = env.action_space(env.default_params)
    if not isinstance(space, Discrete):
        return f"--algo: dqn needs a discrete action space; {env.name} has continuous actions (use sac)"
    return config_problem(cfg)


def q_values(cfg: DQNConfig, out):
    """``[..., A]`` action values from the network output (the expected value of a categorical head)."""
    if cfg.value_loss == "hl_gauss":
        return categorical_value(out, cfg.value_min, cfg.value_max)
    return out


def target_update_due(steps_before, steps_after, interval: int):
    """True when an iteration crosses a multiple of ``interval`` env steps (int32 scalars)."""
    return (steps_after // interval) > (steps_before // interval)


def make_dqn(cfg: DQNConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16, deterministic_eval: bool = True):
    """Builds DQN for ``env`` (single, unvectorised, discrete actions). Returns an :class:`~jaxrl.agents.base.Agent`."""
    problem = validate_dqn(cfg, env, total_timesteps)
    if problem:
        raise ValueError(problem)
    network = make_q_network(cfg, env)
    obs_shape = tuple(env.observation_space(env.default_params).shape)
    decay_steps = float(total_timesteps)

    def init_learner(key, hp: DQNHParams):
        online = network.init(key, jnp.zeros((1,) + obs_shape, jnp.float32))
        # The target starts as a copy of the online network.
        return DQNParams(online, online), make_optimizer(hp.max_grad_norm, ADAM_EPS).init(online)

    def epsilon(env_steps, hp: DQNHParams):
        return linear_schedule(hp.start_epsilon, hp.end_epsilon, hp.exploration_fraction * decay_steps, env_steps)

    def behaviour(params: DQNParams, obs, env_steps, hp: DQNHParams):
        return EpsilonGreedy(q_values(cfg, network.apply(params.online, obs)), epsilon(env_steps, hp))

    def act(params: DQNParams, obs, key, deterministic: bool = False):
        dist = EpsilonGreedy(q_values(cfg, network.apply(params.online, obs)), jnp.float32(cfg.eval_epsilon))
        return dist.mode() if deterministic else dist.sample(key)

    def loss_fn(online, target, batch, hp: DQNHParams):
        batch_size = batch.reward.shape[0]
        if cfg.double_q:  # one forward pass of the online network on obs and next obs
            out_both = network.apply(online, jnp.concatenate([batch.obs, batch.next_obs], axis=0))
            out, next_out_online = out_both[:batch_size], out_both[batch_size:]
            next_q_online = q_values(cfg, next_out_online)
        else:
            out = network.apply(online, batch.obs)
            next_q_online = None
        next_q_target = q_values(cfg, network.apply(target, batch.next_obs))
        next_value = greedy_next_value(next_q_target, next_q_online, cfg.double_q)
        targets = td_target(batch.reward, batch.terminated, next_value, hp.gamma)
        taken = jnp.take_along_axis(out, batch.action.reshape((batch_size, 1) + (1,) * (out.ndim - 2)), axis=1)[:, 0]
        if cfg.value_loss == "hl_gauss":
            sigma = hl_gauss_sigma(cfg.value_min, cfg.value_max, cfg.value_bins, hp.value_sigma_ratio)
            loss = jnp.mean(hl_gauss_loss(taken, targets, cfg.value_min, cfg.value_max, sigma))
            q_taken = categorical_value(taken, cfg.value_min, cfg.value_max)
        else:
            loss = regression_loss(taken, targets, cfg.value_loss)
            q_taken = taken
        return loss, {"td_loss": loss, "q_mean": jnp.mean(q_taken), "target_mean": jnp.mean(targets)}

    def learn_step(key, params: DQNParams, opt_state, batch, hp: DQNHParams):
        grads, aux = jax.grad(loss_fn, has_aux=True)(params.online, params.target, batch, hp)
        online, opt_state, grad_norm = apply_gradients(params.online, opt_state, grads, hp.lr, hp.max_grad_norm, ADAM_EPS)
        return params._replace(online=online), opt_state, {**aux, "grad_norm": grad_norm}

    def end_of_learning(params: DQNParams, steps_before, steps_after, hp: DQNHParams):
        due = target_update_due(steps_before, steps_after, cfg.target_update_interval)
        updated = polyak_update(params.target, params.online, hp.tau)
        return params._replace(target=jax.tree.map(lambda u, t: jnp.where(due, u, t), updated, params.target))

    return make_off_policy_agent(
        cfg, env, total_timesteps,
        init_learner=init_learner,
        behaviour=behaviour,
        learn_step=learn_step,
        act=act,
        end_of_learning=end_of_learning,
        iteration_metrics=lambda env_steps, hp: {"epsilon": epsilon(env_steps, hp)},
        num_eval_episodes=num_eval_episodes,
        deterministic_eval=deterministic_eval,
    )
