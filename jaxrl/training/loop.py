"""The one training loop: a run is ``init`` then ``num_chunks`` calls of one compiled chunk.

A chunk is a ``lax.scan`` over ``chunk_len`` agent updates followed by an
in-program evaluation. The last chunk may be partly past the end of training:
those steps are skipped with a ``lax.cond`` on an unbatched counter (so it stays
a real branch under ``vmap``), which keeps every chunk the same program and
lets any number of updates be split into any number of chunks.

``make_train`` wraps the same pieces into a single pure ``train(key, hparams)``
for composition (an ES generation whose fitness is a whole training run).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent, policy_parts


class RunnerState(NamedTuple):
    agent_state: Any
    key: jax.Array


class Runner(NamedTuple):
    """Pure functions of one training run (one member; ``vmap`` them for seeds and sweeps).

    Attributes:
        init: ``(key, hparams) -> RunnerState``.
        run_chunk: ``(runner_state, hparams, first_update) -> (runner_state, metrics)``;
            ``first_update`` is an unbatched int32 (the index of the chunk's first
            update); ``metrics`` holds per-update scalars ``[chunk_len]``, a
            ``valid`` mask ``[chunk_len]``, ``params_finite`` (scalar bool: the policy's
            parameters, :func:`~jaxrl.agents.base.policy_parts`, are all finite) and
            ``eval_returns [num_eval_episodes]``.
        evaluate: ``(runner_state, hparams, key) -> returns [num_eval_episodes]``.
        chunk_len: updates per chunk.
        num_chunks: chunks in a full run.
        agent: the agent.
    """

    init: Callable
    run_chunk: Callable
    evaluate: Callable
    chunk_len: int
    num_chunks: int
    agent: Agent


EVAL_KEY_TAG = 0x5EED  # folded into the run's key to draw evaluation randomness


def all_finite(tree) -> jax.Array:
    """True if every floating-point leaf of ``tree`` is finite (the divergence guard's parameter check)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def make_runner(agent: Agent, env_params, num_chunks: int, evaluate_each_chunk: bool = True) -> Runner:
    """Splits ``agent.num_updates`` updates into ``num_chunks`` equal-length compiled chunks."""
    num_chunks = max(1, min(int(num_chunks), agent.num_updates))
    chunk_len = math.ceil(agent.num_updates / num_chunks)
    num_chunks = math.ceil(agent.num_updates / chunk_len)

    def init(key, hparams) -> RunnerState:
        key_init, key_run = jax.random.split(key)
        return RunnerState(agent.init(key_init, hparams), key_run)

    def one_update(runner: RunnerState, hparams):
        key, key_update = jax.random.split(runner.key)
        agent_state, metrics = agent.update(key_update, runner.agent_state, env_params, hparams)
        return RunnerState(agent_state, key), metrics

    def run_chunk(runner: RunnerState, hparams, first_update):
        metrics_shape = jax.eval_shape(one_update, runner, hparams)[1]

        def body(runner, index):
            valid = index < agent.num_updates

            def skip(runner):
                return runner, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape)

            runner, metrics = jax.lax.cond(valid, lambda r: one_update(r, hparams), skip, runner)
            return runner, {**metrics, "valid": valid}

        runner, metrics = jax.lax.scan(body, runner, first_update + jnp.arange(chunk_len))
        metrics["params_finite"] = all_finite(policy_parts(agent, runner.agent_state)[0])
        if evaluate_each_chunk:
            # Derived without advancing the run's key: training is the same whatever the chunking.
            key_eval = jax.random.fold_in(runner.key, EVAL_KEY_TAG)
            metrics["eval_returns"] = agent.evaluate(key_eval, runner.agent_state, env_params, hparams)
        return runner, metrics

    def evaluate(runner: RunnerState, hparams, key):
        return agent.evaluate(key, runner.agent_state, env_params, hparams)

    return Runner(init, run_chunk, evaluate, chunk_len, num_chunks, agent)


def map_members(fn: Callable, in_axes: tuple) -> Callable:
    """``jax.vmap(fn, in_axes)`` over the leading member axis; with one member, ``fn`` on the squeezed arguments.

    Arguments mapped with axis 0 carry the member axis ``[M, ...]``; outputs
    always get it (``[M, ...]``, ``M = 1`` included), so states, checkpoints and
    metrics have the same shapes either way. With ``M = 1`` the vmap only adds
    a size-1 axis, yet XLA:CPU runs the batched program slower on small
    per-step work (DQN CartPole at one seed: about 15% more env steps per
    CPU-second without it), and a ``lax.cond`` whose predicate becomes batched
    turns into a select that runs both branches. The single-member program computes the same thing (equal to
    float32 rounding, as any member of a vmapped run is, tested); which one
    runs is decided when tracing, from the static member count.
    """
    batched = jax.vmap(fn, in_axes=in_axes)

    def run(*args):
        members = {leaf.shape[0] for arg, axis in zip(args, in_axes) if axis == 0 for leaf in jax.tree.leaves(arg)}
        if members != {1}:
            return batched(*args)
        squeezed = [jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg for arg, axis in zip(args, in_axes)]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*squeezed))

    return run


def make_train(agent: Agent, env_params, num_chunks: int = 1, evaluate_each_chunk: bool = False) -> Callable:
    """``train(key, hparams) -> (runner_state, metrics)``: a whole run as one pure function.

    ``metrics`` leaves have a leading ``[num_chunks, chunk_len]`` (or ``[num_chunks, E]``).
    """
    runner = make_runner(agent, env_params, num_chunks, evaluate_each_chunk)

    def train(key, hparams):
        state = runner.init(key, hparams)

        def chunk(state, chunk_index):
            return runner.run_chunk(state, hparams, chunk_index * runner.chunk_len)

        return jax.lax.scan(chunk, state, jnp.arange(runner.num_chunks))

    return train
