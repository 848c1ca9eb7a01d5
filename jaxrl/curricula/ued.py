"""Unsupervised environment design: a curriculum and PPO in one compiled update.

One UED iteration (an :class:`~jaxrl.agents.base.Agent` ``update``, so it runs
on the shared chunked runner of :mod:`jaxrl.training.loop`, vmapped over
seeds):

1. the curriculum samples ``num_levels`` levels (new, replayed or mutated);
2. every training env is reset to its level and PPO collects one rollout
   (``rollout_len`` steps; envs auto-reset to the same level);
3. each level is scored from its env's rollout (positive value loss of the GAE
   advantages, or MaxMC with the best return kept in the level buffer);
4. PPO learns from the rollout unless the curriculum says not to (robust PLR
   and ACCEL: no gradient step on new or mutated levels; the step is computed
   and discarded, as any branch under ``vmap`` would be);
5. the curriculum takes the scores (buffer insertion, replay statistics).

PPO's update is used as its two halves (:class:`~jaxrl.agents.ppo.PPOPieces`),
so nothing of PPO is copied here. Evaluation plays each held-out level.

The hyperparameters are one :class:`UEDHParams` pytree: PPO's traced options and
the curriculum's (replay probability, temperature, staleness coefficient,
minimum fill), so either can be swept as a ``vmap`` of one compiled program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent
from jaxrl.agents.ppo import PPOConfig, PPOHParams, PPORollout, build_ppo, hparams_from_config
from jaxrl.curricula.curriculum import level_score_name
from jaxrl.curricula import (MUTATE, REPLAY, CurriculumConfig, CurriculumHParams, CurriculumState, LevelScores,
                             curriculum_hparams, make_curriculum)
from jaxrl.curricula.buffer import fill_ratio
from jaxrl.curricula.scores import best_returns, rollout_score
from jaxrl.envs.core import Env, select_tree
from jaxrl.evaluation import make_evaluate


class UEDHParams(NamedTuple):
    """Traced hyperparameters of a curriculum program (UED and PAIRED): PPO's and the curriculum's.

    PAIRED takes the same type (its curriculum part unused), so every curriculum program has one hparams type.
    """

    ppo: PPOHParams
    curriculum: CurriculumHParams


def ued_hparams(ppo_cfg: PPOConfig, curriculum_cfg: CurriculumConfig) -> UEDHParams:
    """The traced options of ``ppo_cfg`` and ``curriculum_cfg`` (float32 scalars, PPO's objective parameters)."""
    return UEDHParams(hparams_from_config(ppo_cfg), curriculum_hparams(curriculum_cfg))


class UEDState(NamedTuple):
    """The agent's PPO state and the curriculum's state (its level buffer included)."""

    agent: Any
    curriculum: CurriculumState


def ppo_policy(state: UEDState):
    """``(params, env_state)`` of the PPO policy a UED run trains (the agent's ``policy_of``)."""
    return state.agent.params, state.agent.env_state


def level_scores(score: str, rollout: PPORollout, stored_max_returns: jax.Array, unfinished: str = "unscored") -> LevelScores:
    """Scores ``[B]`` of the levels played in ``rollout`` (one level per env) and their best returns.

    Args:
        score: ``"pvl"`` (positive value loss ``max(A_t, 0)``), ``"maxmc"`` (``best return - V(s_t)``) or
            ``"grounded_l1"`` (DRED's grounded value loss: ``|G_t - V(s_t)|`` with ``G_t`` the GAE return,
            on levels whose best return is positive, i.e. solved at least once; 0 on the others).
        rollout: PPO's rollout: ``batch["advantages"]``, ``batch["values"]`` ``[T, B]`` and the
            episode statistics in ``traj.info``.
        stored_max_returns: ``[B]`` best return the buffer kept for each level (``-inf`` if new).
        unfinished: :data:`~jaxrl.curricula.scores.UNFINISHED`: how steps of unfinished episodes count
            (``unscored``: not at all; a level with no finished episode scores ``-inf``).
    """
    info = rollout.traj.info
    best = best_returns(stored_max_returns, info["episode_return"], info["episode_done"])
    if score == "pvl":
        per_step = jnp.maximum(rollout.batch["advantages"], 0.0)
    elif score == "grounded_l1":
        per_step = jnp.where(best > 0.0, jnp.abs(rollout.batch["returns"] - rollout.batch["values"]), 0.0)
    else:
        # MaxMC of a level never finished (best = -inf) is 0 under rollout_mean: nothing is known of what is achievable.
        per_step = jnp.where(jnp.isfinite(best), best, 0.0) - jnp.where(jnp.isfinite(best), rollout.batch["values"], 0.0)
    return LevelScores(rollout_score(per_step, info["episode_done"], unfinished), best)


def finite_mean(x: jax.Array) -> jax.Array:
    """Mean of the finite entries of ``x`` (0 if none): unscored levels (``-inf``) are left out."""
    finite = jnp.isfinite(x)
    return jnp.sum(jnp.where(finite, x, 0.0)) / jnp.maximum(jnp.sum(finite), 1)


def held_out_evaluator(agent: Agent, eval_levels, extra_eval: tuple, num_eval_episodes: int, deterministic_eval: bool):
    """``(key, agent_state, ppo_hparams) -> returns [(L + sum L_i) * E]``, level-major: ``agent``'s policy on the
    held-out ``eval_levels [L, ...]`` (in the agent's own env) and on each extra set ``(env, levels [L_i, ...])``
    in that env, ``num_eval_episodes`` (E) episodes per level."""
    evaluators = [(agent.evaluate, eval_levels)] + [
        (make_evaluate(env, agent.act, num_eval_episodes, deterministic_eval, False, agent.initial_policy_state), levels)
        for env, levels in extra_eval]

    def evaluate(key, agent_state, hp_ppo):
        return jnp.concatenate([jax.vmap(fn, in_axes=(None, None, 0, None))(key, agent_state, levels, hp_ppo).reshape(-1)
                                for fn, levels in evaluators])

    return evaluate


def make_ued(ppo_cfg: PPOConfig, curriculum_cfg: CurriculumConfig, env: Env, total_timesteps: int, generate: Callable,
             mutate: Callable | None, eval_levels, num_eval_episodes: int = 8, deterministic_eval: bool = False,
             solved_return: float = 0.0, extra_eval: tuple = (), dataset=None, interpolate: Callable | None = None) -> Agent:
    """PPO trained on a curriculum's levels; ``num_envs`` is the curriculum's ``num_levels``.

    One agent update is one curriculum iteration, or, for a curriculum with a ``refresh`` (SFL), its
    refresh followed by ``refresh_period`` iterations (``num_updates`` and ``env_steps_per_update``
    count such blocks).

    Args:
        env: the single env whose params are levels (e.g. ``envs.make("Maze")``).
        generate, mutate: the level generator ``key -> level`` and mutator ``(key, level) -> level``.
        eval_levels: held-out levels, leaves ``[L, ...]``.
        solved_return: an episode with a higher return solved its level (the ``train_solve_rate`` metric).
        extra_eval: more held-out sets ``(env, levels [L_i, ...])`` played in their own env (e.g. larger mazes:
            the policy sees an egocentric view, so it runs on any maze size).
        dataset, interpolate: the target levels and the generative model's sampler of a dataset method (dred).

    Returns:
        an :class:`Agent` whose state is a :class:`UEDState`, whose hparams are a :class:`UEDHParams`
        and whose ``evaluate`` returns ``[(L + sum L_i) * num_eval_episodes]`` returns, level-major (reshape to
        ``[L + sum L_i, E]``).
    """
    if ppo_cfg.normalize_obs:
        # Every iteration resets the envs to new levels, which would restart the running statistics.
        raise ValueError("--normalize-obs is not supported with curricula")
    ppo_cfg = dataclasses.replace(ppo_cfg, num_envs=curriculum_cfg.num_levels)
    ppo, pieces = build_ppo(ppo_cfg, env, total_timesteps, num_eval_episodes, deterministic_eval, batched_env_params=True)
    curriculum = make_curriculum(curriculum_cfg, generate, mutate, dataset=dataset, interpolate=interpolate,
                                 num_iterations=ppo.num_updates)
    period = curriculum.refresh_period
    num_iterations = max(ppo.num_updates // period, 1) * period  # whole blocks of a refreshing curriculum
    num_levels = curriculum_cfg.num_levels
    held_out = held_out_evaluator(ppo, eval_levels, extra_eval, num_eval_episodes, deterministic_eval)

    def init(key, hp: UEDHParams) -> UEDState:
        key_agent, key_curriculum = jax.random.split(key)
        return UEDState(ppo.init(key_agent, hp.ppo), curriculum.init(key_curriculum))

    def iteration(key, state: UEDState, hp: UEDHParams):
        key_sample, key_reset, key_rollout, key_learn = jax.random.split(key, 4)
        curriculum_state, levels, info = curriculum.sample(key_sample, state.curriculum, hp.curriculum)
        env_state, obs = pieces.vec_env.reset(key_reset, levels)
        agent_state = state.agent._replace(env_state=env_state, obs=obs)
        if ppo.initial_policy_state is not None:  # a new level starts a new episode: fresh recurrent state
            agent_state = agent_state._replace(core_state=ppo.initial_policy_state(num_levels))
        rollout = pieces.collect(key_rollout, agent_state, levels, hp.ppo)
        scores = level_scores(level_score_name(curriculum_cfg), rollout, info.max_returns, curriculum_cfg.unfinished)
        learned, metrics = pieces.learn(key_learn, rollout, hp.ppo)
        # A batch without a gradient step leaves the optimiser's step count (PPO's update_step, which drives the
        # learning-rate schedule) where it was: the reference implementations count optimiser steps only, so robust
        # PLR's schedule is not spent on the iterations that only score levels.
        agent_state = select_tree(info.train, learned, rollout.state)
        curriculum_state = curriculum.update(curriculum_state, levels, scores, info)
        solved = jnp.any(rollout.traj.info["episode_done"] & (rollout.traj.info["episode_return"] > solved_return), axis=0)
        metrics.update(
            gradient_updates=agent_state.update_step.astype(jnp.float32),
            level_score=finite_mean(scores.score),
            scored_levels=jnp.mean(jnp.isfinite(scores.score).astype(jnp.float32)),
            train_solve_rate=jnp.mean(solved.astype(jnp.float32)),
            trained=info.train.astype(jnp.float32),
            replayed=(info.kind == REPLAY).astype(jnp.float32),
            mutated=(info.kind == MUTATE).astype(jnp.float32),
            mean_walls=jnp.mean(jnp.sum(levels.wall_map, axis=(-2, -1)).astype(jnp.float32)) if hasattr(levels, "wall_map") else 0.0,
        )
        if curriculum_cfg.method != "dr":
            metrics["buffer_fill"] = fill_ratio(curriculum_state.buffer)
        return UEDState(agent_state, curriculum_state), metrics

    probe = None
    if curriculum.refresh is not None:
        probe = make_evaluate(env, ppo.act, curriculum_cfg.sfl_episodes, False, False, ppo.initial_policy_state)

    def success_rates(agent_state, hp_ppo):
        """``(key, levels [N, ...]) -> [N]``: the stochastic policy's solve rate over fresh episodes of each level."""

        def rates(key, levels):
            returns = jax.vmap(probe, in_axes=(None, None, 0, None))(key, agent_state, levels, hp_ppo)  # [N, E]
            return jnp.mean((returns > solved_return).astype(jnp.float32), axis=-1)

        return rates

    def update(key, state: UEDState, env_params, hp: UEDHParams):
        if curriculum.refresh is None:
            return iteration(key, state, hp)
        key_refresh, key_block = jax.random.split(key)
        state = state._replace(curriculum=curriculum.refresh(key_refresh, state.curriculum, success_rates(state.agent, hp.ppo)))
        state, metrics = jax.lax.scan(lambda s, k: iteration(k, s, hp), state, jax.random.split(key_block, period))
        last = metrics["gradient_updates"][-1]
        metrics = jax.tree.map(lambda x: jnp.mean(x, axis=0), metrics)
        metrics["gradient_updates"] = last
        return state, metrics

    def evaluate(key, state: UEDState, env_params, hp: UEDHParams):
        return held_out(key, state.agent, hp.ppo)

    return Agent(init=init, update=update, evaluate=evaluate, act=ppo.act, num_updates=num_iterations // period,
                 env_steps_per_update=ppo.env_steps_per_update * period, env=pieces.vec_env,
                 initial_policy_state=ppo.initial_policy_state, policy_of=ppo_policy)
