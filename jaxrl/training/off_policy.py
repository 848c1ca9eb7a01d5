"""The off-policy iteration, written once for every replay-based agent (DQN, SAC).

One ``update`` of an off-policy agent:

1. collect ``steps_per_update`` vectorised env steps with the shared
   :func:`~jaxrl.training.rollout.collect_rollout`, acting with the agent's
   behaviour distribution (epsilon-greedy, squashed Gaussian ...);
2. add the ``num_envs * steps_per_update`` transitions to the on-device replay
   buffer (obs, action, reward, terminated, and the true final observation as
   the next observation: ``terminated`` alone stops the bootstrap, a time-limit
   truncation bootstraps from the real last state);
3. once ``learning_starts`` env steps are done, run ``gradient_steps`` learner
   steps, each on a fresh batch of distinct uniformly sampled transitions, then
   the agent's end-of-iteration hook (e.g. DQN's periodic target copy).

The agent supplies only what is specific to it (its parameters and
optimisers, behaviour distribution, one learner step, greedy/stochastic act).

The learning gate is a ``lax.cond``: a real branch in an un-vmapped program;
under ``vmap`` (seeds, sweeps) its predicate is batched, so both branches run
and the results are selected, i.e. before ``learning_starts`` the learner
steps are computed and discarded (the parameters and optimiser state stay
exactly unchanged).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.buffers import ReplayBuffer, add, can_sample, init_buffer, sample
from jaxrl.config import option
from jaxrl.envs import Discrete, make_vec_env
from jaxrl.envs.core import Env
from jaxrl.evaluation import make_evaluate
from jaxrl.training.rollout import collect_rollout


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig:
    """Options every replay-based agent has (all static: they fix shapes or the program).

    Agents subclass it and may redeclare a field to change its default.
    """

    num_envs: int = option(1, "parallel environments per seed", minimum=1)
    steps_per_update: int = option(1, "vectorised env steps per iteration (each adds num_envs transitions)", minimum=1)
    gradient_steps: int = option(1, "learner steps per iteration, each on a fresh replay batch", minimum=1)
    batch_size: int = option(256, "transitions per learner step (distinct, uniform from the replay buffer)", minimum=1)
    buffer_size: int = option(1_000_000, "replay buffer capacity in transitions (per seed, on device)", minimum=1)
    learning_starts: int = option(5_000, "env steps per seed collected before learning starts", minimum=0)


class ReplayItem(NamedTuple):
    """One stored transition (leaves ``[...]``; ``[capacity, ...]`` in the buffer)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap (truncation is not stored: it bootstraps)
    next_obs: jax.Array  # the observation the step led to, before any auto-reset


class OffPolicyState(NamedTuple):
    """Attributes:
    params: everything the agent learns (online and target networks, temperature ...),
        what ``act`` takes and the divergence guard checks.
    opt_state: optimiser state(s).
    buffer: the replay buffer.
    env_state, obs: where the last iteration's collection stopped (``obs [num_envs, obs_dim]``).
    update_step: int32, iterations done.
    context: what decides the env params of the next collection (QARL's teacher over the adversary's
        temperature); ``()`` for an agent on fixed env params.
    """

    params: Any
    opt_state: Any
    buffer: ReplayBuffer
    env_state: Any
    obs: jax.Array
    update_step: jax.Array
    context: Any = ()


class Context(NamedTuple):
    """A curriculum over the env params of an off-policy agent's collection, run inside its iteration.

    Attributes:
        init: ``hparams -> context`` (a pytree).
        env_params: ``(context, env_steps, hparams) -> env_params`` of the next collection (``env_steps``: int32
            env steps per seed done before it).
        update: ``(context, traj [T, B], env_steps_after, hparams) -> (context, metrics)``, after the collection.
    """

    init: Callable
    env_params: Callable
    update: Callable


def example_item(env: Env, env_params) -> ReplayItem:
    """A zero :class:`ReplayItem` with the shapes and dtypes of ``env``'s transitions."""
    obs = jnp.zeros(env.observation_space(env_params).shape, jnp.float32)
    space = env.action_space(env_params)
    action = jnp.zeros((), jnp.int32) if isinstance(space, Discrete) else jnp.zeros(space.shape, jnp.float32)
    return ReplayItem(obs, action, jnp.zeros((), jnp.float32), jnp.zeros((), bool), obs)


def rollout_items(traj) -> ReplayItem:
    """``[T, B]`` transitions -> ``[T*B]`` replay items (time-major order)."""
    items = ReplayItem(traj.obs, traj.action, traj.reward, traj.terminated, traj.final_obs)
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), items)


def hparams_from_config(cfg, hparams_cls):
    """``hparams_cls`` (a NamedTuple of traced scalars) filled from the same-named fields of ``cfg``, as float32."""
    return hparams_cls(**{name: jnp.asarray(getattr(cfg, name), jnp.float32) for name in hparams_cls._fields})


def config_problem(cfg: OffPolicyConfig) -> str | None:
    """Host-side check of the replay options: an error message naming the flag, or None."""
    per_update = cfg.num_envs * cfg.steps_per_update
    if cfg.batch_size > cfg.buffer_size:
        return f"--batch-size: {cfg.batch_size} is larger than the replay buffer (--buffer-size {cfg.buffer_size})"
    if per_update > cfg.buffer_size:
        return f"--buffer-size: {cfg.buffer_size} cannot hold one iteration's {per_update} transitions (num_envs * steps_per_update)"
    return None


def make_off_policy_agent(
    cfg: OffPolicyConfig,
    env: Env,
    total_timesteps: int,
    *,
    init_learner: Callable,
    behaviour: Callable,
    learn_step: Callable,
    act: Callable,
    end_of_learning: Callable | None = None,
    iteration_metrics: Callable | None = None,
    num_eval_episodes: int = 16,
    deterministic_eval: bool = True,
    context: Context | None = None,
):
    """Builds a replay-based agent on the shared loop.

    Args:
        cfg: the agent's config (an :class:`OffPolicyConfig`).
        env: single, unvectorised env (:func:`jaxrl.envs.make`).
        total_timesteps: env steps per seed; fixes ``num_updates = total // (num_envs * steps_per_update)``.
        init_learner: ``(key, hparams) -> (params, opt_state)``.
        behaviour: ``(params, obs [B, ...], env_steps, hparams) -> dist``, the
            exploration distribution (``env_steps``: int32 env steps per seed done before this iteration).
        learn_step: ``(key, params, opt_state, batch: ReplayItem [batch_size], hparams)
            -> (params, opt_state, metrics)``, one gradient step.
        act: ``(params, obs, key, deterministic) -> action``.
        end_of_learning: optional ``(params, env_steps_before, env_steps_after, hparams) -> params``,
            run after an iteration's learner steps (not before ``learning_starts``).
        iteration_metrics: optional ``(env_steps, hparams) -> dict`` of scalars (e.g. the current epsilon).
        context: optional :class:`Context`: the env params of each collection come from it instead of the
            ``env_params`` the loop passes (which evaluation still uses).
    """
    from jaxrl.agents.base import Agent  # here: the agents package imports this module

    env_params = env.default_params
    vec_env = make_vec_env(env, cfg.num_envs)
    steps_per_iteration = cfg.num_envs * cfg.steps_per_update
    num_updates = max(1, int(total_timesteps) // steps_per_iteration)
    item = example_item(env, env_params)

    def init(key, hp) -> OffPolicyState:
        key_learner, key_env = jax.random.split(key)
        params, opt_state = init_learner(key_learner, hp)
        context_state = () if context is None else context.init(hp)
        first_params = env_params if context is None else context.env_params(context_state, jnp.zeros((), jnp.int32), hp)
        env_state, obs = vec_env.reset(key_env, first_params)
        buffer = init_buffer(item, cfg.buffer_size)
        return OffPolicyState(params, opt_state, buffer, env_state, obs, jnp.zeros((), jnp.int32), context_state)

    def learn(key, params, opt_state, buffer, hp):
        def one_step(carry, step_key):
            params, opt_state = carry
            key_sample, key_step = jax.random.split(step_key)
            batch = sample(key_sample, buffer, cfg.batch_size)
            params, opt_state, metrics = learn_step(key_step, params, opt_state, batch, hp)
            return (params, opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(one_step, (params, opt_state), jax.random.split(key, cfg.gradient_steps))
        return params, opt_state, jax.tree.map(jnp.mean, metrics)

    def update(key, state: OffPolicyState, env_params_, hp):
        key_rollout, key_learn = jax.random.split(key)
        steps_before = state.update_step * steps_per_iteration  # int32: exact below 2^31 env steps per seed
        steps_after = steps_before + steps_per_iteration

        def policy_dist(obs):
            return behaviour(state.params, obs, steps_before, hp)

        if context is not None:
            env_params_ = context.env_params(state.context, steps_before, hp)
        env_state, obs, traj, _ = collect_rollout(key_rollout, policy_dist, vec_env, env_params_, state.env_state, state.obs, cfg.steps_per_update)
        buffer = add(state.buffer, rollout_items(traj))
        context_state, context_metrics = state.context, {}
        if context is not None:
            context_state, context_metrics = context.update(state.context, traj, steps_after, hp)

        learning = (steps_after >= cfg.learning_starts) & can_sample(buffer, cfg.batch_size)
        # Under vmap both branches run; while not learning, the discarded learner steps sample from the
        # whole capacity instead of the few stored items (distinct sampling from barely more than
        # batch_size items takes many redraw rounds).
        sample_from = buffer._replace(size=jnp.where(learning, buffer.size, buffer.capacity).astype(jnp.int32))

        def do_learn(operand):
            params, opt_state = operand
            params, opt_state, metrics = learn(key_learn, params, opt_state, sample_from, hp)
            if end_of_learning is not None:
                params = end_of_learning(params, steps_before, steps_after, hp)
            return params, opt_state, metrics

        def skip(operand):
            params, opt_state = operand
            shapes = jax.eval_shape(do_learn, operand)[2]
            return params, opt_state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        params, opt_state, metrics = jax.lax.cond(learning, do_learn, skip, (state.params, state.opt_state))
        metrics = dict(metrics, **context_metrics)
        if iteration_metrics is not None:
            metrics.update(iteration_metrics(steps_before, hp))
        metrics["learning"] = learning.astype(jnp.float32)
        metrics["train_return"] = jnp.mean(traj.info["episode_return"])
        metrics["episodes_done"] = jnp.sum(traj.info["episode_done"]).astype(jnp.float32)
        return OffPolicyState(params, opt_state, buffer, env_state, obs, state.update_step + 1, context_state), metrics

    return Agent(
        init=init,
        update=update,
        evaluate=make_evaluate(env, act, num_eval_episodes, deterministic_eval),
        act=act,
        num_updates=num_updates,
        env_steps_per_update=steps_per_iteration,
        env=vec_env,
    )
