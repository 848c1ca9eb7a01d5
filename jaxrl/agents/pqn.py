"""PQN (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning").

Q-learning without a replay buffer and without a target network: many
vectorised environments collect a short epsilon-greedy rollout, Q(lambda)
targets are computed backwards over it with the current network's greedy
values, and the network regresses on them for a few epochs of shuffled
minibatches, as PPO does. LayerNorm after every hidden layer is what keeps
this stable without a target network. ``--value-loss hl_gauss`` trains a
categorical Q head with the HL-Gauss cross-entropy (Farebrother et al. 2024).

What is specific to PQN lives here: its config, the Q head, the targets and
the loss. The rollout, the epoch x minibatch update, evaluation and the outer
loop are shared (:mod:`jaxrl.training`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent
from jaxrl.config import option
from jaxrl.envs import Discrete, make_vec_env
from jaxrl.envs.core import Env
from jaxrl.evaluation import make_evaluate
from jaxrl.losses.hl_gauss import categorical_value, hl_gauss_loss, hl_gauss_sigma
from jaxrl.losses.q_lambda import q_lambda_returns
from jaxrl.networks.distributions import EpsilonGreedy
from jaxrl.networks.q import QNetwork
from jaxrl.training.epochs import minibatch_epochs
from jaxrl.training.optim import linear_anneal, make_optimizer
from jaxrl.training.rollout import collect_rollout
from jaxrl.training.schedules import linear_schedule


@dataclasses.dataclass(frozen=True)
class PQNConfig:
    """PQN options. Traced ones can be swept with ``--sweep name=v1,v2``."""

    num_envs: int = option(32, "parallel environments per seed", minimum=1)
    rollout_len: int = option(64, "steps per environment per update", minimum=1)
    num_epochs: int = option(4, "passes over each rollout", minimum=1)
    num_minibatches: int = option(16, "minibatches per epoch (must divide num_envs * rollout_len)", minimum=1)
    hidden_sizes: tuple = option((128, 128), "hidden layer sizes of the Q network")
    activation: str = option("relu", "hidden activation", choices=("tanh", "relu", "gelu", "silu"))
    layer_norm: bool = option(True, "LayerNorm after every hidden layer (PQN's stabiliser in place of a target network)")
    anneal_lr: bool = option(True, "linearly anneal the learning rate to 0 over training")
    normalize_obs: bool = option(False, "running observation normalisation")
    eval_epsilon: float = option(0.05, "epsilon of the stochastic evaluation policy (--eval-stochastic) and of stochastic saved policies", minimum=0.0)
    value_loss: str = option("mse", "Q loss: squared error, or HL-Gauss cross-entropy of a categorical Q head", choices=("mse", "hl_gauss"))
    value_bins: int = option(51, "bins of the categorical Q head (--value-loss hl_gauss)", minimum=2)
    value_min: float = option(-10.0, "lower end of the categorical Q head's support (must cover the scaled returns; targets are clipped into it)")
    value_max: float = option(10.0, "upper end of the categorical Q head's support")
    lr: float = option(1e-4, "Adam learning rate", traced=True, minimum=0.0)
    gamma: float = option(0.99, "discount factor", traced=True, minimum=0.0)
    q_lambda: float = option(0.95, "lambda of the Q(lambda) targets (0: one-step Q-learning, 1: Monte-Carlo-like)", traced=True, minimum=0.0)
    start_epsilon: float = option(1.0, "exploration epsilon at the start", traced=True, minimum=0.0)
    end_epsilon: float = option(0.05, "exploration epsilon after the decay", traced=True, minimum=0.0)
    exploration_fraction: float = option(0.2, "fraction of the updates over which epsilon decays linearly", traced=True, minimum=0.0)
    reward_scale: float = option(1.0, "rewards are multiplied by this before the targets are computed", traced=True)
    max_grad_norm: float = option(10.0, "global gradient-norm clip", traced=True, minimum=0.0)
    value_sigma_ratio: float = option(0.75, "HL-Gauss target width in bin widths (--value-loss hl_gauss)", traced=True, minimum=0.0)


class PQNHParams(NamedTuple):
    """Traced hyperparameters: every leaf is a float scalar (``[G*S]`` when vmapped)."""

    lr: jax.Array
    gamma: jax.Array
    q_lambda: jax.Array
    start_epsilon: jax.Array
    end_epsilon: jax.Array
    exploration_fraction: jax.Array
    reward_scale: jax.Array
    max_grad_norm: jax.Array
    value_sigma_ratio: jax.Array


class PQNState(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # [num_envs, obs_dim], observation to act on next
    update_step: jax.Array  # int32, updates done so far


def pqn_hparams(cfg: PQNConfig) -> PQNHParams:
    return PQNHParams(**{f: jnp.asarray(getattr(cfg, f), jnp.float32) for f in PQNHParams._fields})


def validate_pqn(cfg: PQNConfig, env: Env, total_timesteps: int) -> str | None:
    """Host-side checks needing the env: an error message naming the flag, or None."""
    if not isinstance(env.action_space(env.default_params), Discrete):
        return f"--algo: pqn needs a discrete action space; {env.name} has continuous actions (use ppo or sac)"
    return None


def make_network(cfg: PQNConfig, env: Env, env_params) -> QNetwork:
    space = env.action_space(env_params)
    num_bins = cfg.value_bins if cfg.value_loss == "hl_gauss" else 0
    return QNetwork(action_dim=space.n, hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation,
                    layer_norm=cfg.layer_norm, num_bins=num_bins)


def q_from_output(cfg: PQNConfig, out):
    """Action values ``[..., A]`` from the network's output (logits ``[..., A, bins]`` of a categorical head)."""
    if cfg.value_loss == "hl_gauss":
        return categorical_value(out, cfg.value_min, cfg.value_max)
    return out


def q_loss(cfg: PQNConfig, out, actions, targets, value_sigma_ratio):
    """Scalar loss of a minibatch and the predicted ``Q(s, a)`` ``[N]``.

    Args:
        out: ``[N, A]`` action values, or ``[N, A, bins]`` logits with ``--value-loss hl_gauss``.
        actions: ``[N]`` int actions taken.
        targets: ``[N]`` Q(lambda) targets (no gradient flows into them).
    """
    chosen = jnp.take_along_axis(out, actions.astype(jnp.int32).reshape((-1,) + (1,) * (out.ndim - 1)), axis=1)[:, 0]
    if cfg.value_loss == "hl_gauss":
        sigma = hl_gauss_sigma(cfg.value_min, cfg.value_max, cfg.value_bins, value_sigma_ratio)
        loss = jnp.mean(hl_gauss_loss(chosen, targets, cfg.value_min, cfg.value_max, sigma))
        return loss, categorical_value(chosen, cfg.value_min, cfg.value_max)
    return 0.5 * jnp.mean(jnp.square(chosen - targets)), chosen


def make_pqn(cfg: PQNConfig, env: Env, total_timesteps: int, num_eval_episodes: int = 16, deterministic_eval: bool = True) -> Agent:
    """Builds PQN for ``env`` (a single, unvectorised :class:`Env` with discrete actions).

    ``total_timesteps`` fixes the number of updates: ``total // (num_envs * rollout_len)``.
    Evaluation is greedy (``deterministic_eval``) or epsilon-greedy with ``cfg.eval_epsilon``.
    """
    problem = validate_pqn(cfg, env, total_timesteps)
    if problem:
        raise ValueError(problem)
    env_params = env.default_params
    vec_env = make_vec_env(env, cfg.num_envs, normalize_obs=cfg.normalize_obs)
    network = make_network(cfg, env, env_params)
    batch_size = cfg.num_envs * cfg.rollout_len
    num_updates = max(1, int(total_timesteps) // batch_size)
    obs_dim = env.observation_space(env_params).shape

    def q_values(params, obs):
        return q_from_output(cfg, network.apply(params, obs))

    def act(params, obs, key, deterministic: bool = False):
        dist = EpsilonGreedy(q_values(params, obs), jnp.float32(cfg.eval_epsilon))
        return dist.mode() if deterministic else dist.sample(key)

    def init(key, hp: PQNHParams) -> PQNState:
        key_net, key_env = jax.random.split(key)
        params = network.init(key_net, jnp.zeros((1,) + tuple(obs_dim), jnp.float32))
        opt_state = make_optimizer(hp.max_grad_norm).init(params)
        env_state, obs = vec_env.reset(key_env, env_params)
        return PQNState(params, opt_state, env_state, obs, jnp.zeros((), jnp.int32))

    def loss_fn(params, batch, hp: PQNHParams):
        loss, chosen_q = q_loss(cfg, network.apply(params, batch["obs"]), batch["action"], batch["target"], hp.value_sigma_ratio)
        return loss, {"td_loss": loss, "q_value": jnp.mean(chosen_q)}

    def update(key, state: PQNState, env_params_, hp: PQNHParams):
        key_rollout, key_epochs = jax.random.split(key)
        step = state.update_step.astype(jnp.float32)
        epsilon = linear_schedule(hp.start_epsilon, hp.end_epsilon, hp.exploration_fraction * num_updates, step)

        def policy_dist(obs):
            return EpsilonGreedy(q_values(state.params, obs), epsilon)

        env_state, obs, traj, _ = collect_rollout(key_rollout, policy_dist, vec_env, env_params_, state.env_state, state.obs, cfg.rollout_len)
        # Greedy values of every true next observation in one batched call: at an episode end this is the
        # final observation before the auto-reset, so truncation bootstraps from it and never from the next
        # episode's first observation.
        next_values = jnp.max(q_values(state.params, traj.final_obs), axis=-1)
        targets = q_lambda_returns(
            hp.reward_scale * traj.reward, next_values, traj.terminated, traj.terminated | traj.truncated, hp.gamma, hp.q_lambda
        )
        lr = linear_anneal(hp.lr, step, num_updates) if cfg.anneal_lr else hp.lr

        flat = {"obs": traj.obs, "action": traj.action, "target": targets}
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), flat)
        params, opt_state, losses = minibatch_epochs(
            key_epochs, state.params, state.opt_state, flat, lambda p, mb: loss_fn(p, mb, hp),
            cfg.num_epochs, cfg.num_minibatches, lr, hp.max_grad_norm,
        )
        metrics = jax.tree.map(jnp.mean, losses)
        metrics["target_mean"] = jnp.mean(targets)
        metrics["epsilon"] = epsilon
        metrics["learning_rate"] = lr
        metrics["train_return"] = jnp.mean(traj.info["episode_return"])
        metrics["episodes_done"] = jnp.sum(traj.info["episode_done"]).astype(jnp.float32)
        return PQNState(params, opt_state, env_state, obs, state.update_step + 1), metrics

    return Agent(
        init=init,
        update=update,
        evaluate=make_evaluate(env, act, num_eval_episodes, deterministic_eval, cfg.normalize_obs),
        act=act,
        num_updates=num_updates,
        env_steps_per_update=batch_size,
        env=vec_env,
    )
