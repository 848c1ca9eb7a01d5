"""PAIRED (Dennis et al. 2020): an adversary designs levels to maximise the regret of a
protagonist against an antagonist, all three trained with PPO in one compiled update.

One iteration:

1. the adversary builds ``num_levels`` mazes (one :class:`~jaxrl.envs.levels.editor.MazeEditor`
   episode per env; the levels are read from the last step's observation);
2. protagonist and antagonist each play every level for one rollout and learn from it;
3. regret per level = antagonist's best finished-episode return - protagonist's mean
   finished-episode return (0 for an agent that finished no episode);
4. the adversary's rollout gets the regret as the reward of its last step, its GAE is
   recomputed from the stored values, and it learns.

Each of the three is PPO used through its two halves (:class:`~jaxrl.agents.ppo.PPOPieces`);
evaluation plays the protagonist on the held-out levels. The hyperparameters are a
:class:`~jaxrl.curricula.ued.UEDHParams` (all three learn with ``hp.ppo``; ``hp.curriculum`` is
unused), the one hparams type of every curriculum program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent
from jaxrl.agents.ppo import PPOConfig, PPORollout, build_ppo
from jaxrl.envs import FlattenObservation
from jaxrl.envs.core import Env
from jaxrl.envs.levels.editor import MazeEditor, level_from_editor_obs
from jaxrl.losses import gae_advantages
from jaxrl.curricula.ued import UEDHParams, held_out_evaluator


class PAIREDState(NamedTuple):
    protagonist: Any
    antagonist: Any
    adversary: Any


def protagonist_policy(state: PAIREDState):
    """``(params, env_state)`` of the protagonist, the policy PAIRED evaluates and saves (the agent's ``policy_of``)."""
    return state.protagonist.params, state.protagonist.env_state


def paired_regret(antagonist_returns, antagonist_done, protagonist_returns, protagonist_done) -> jax.Array:
    """Regret estimate ``[B]``: max antagonist return - mean protagonist return over finished episodes.

    Args:
        *_returns: ``[T, B]`` return of the episode that ended at step ``t``.
        *_done: ``[T, B]`` bool, an episode ended at step ``t``.
    """
    best = jnp.max(jnp.where(antagonist_done, antagonist_returns, -jnp.inf), axis=0)
    best = jnp.where(jnp.isfinite(best), best, 0.0)
    count = jnp.sum(protagonist_done, axis=0)
    mean = jnp.sum(jnp.where(protagonist_done, protagonist_returns, 0.0), axis=0) / jnp.maximum(count, 1)
    return best - mean


def with_terminal_reward(rollout: PPORollout, final_reward: jax.Array, gamma, gae_lambda) -> PPORollout:
    """The rollout of exactly one episode per env ``[T, B]`` with reward ``final_reward [B]`` on its last
    step and 0 before, GAE recomputed from the stored values (the last step terminates)."""
    values = rollout.batch["values"]
    reward = jnp.zeros_like(values).at[-1].set(final_reward)
    next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], axis=0)
    terminated = rollout.traj.terminated
    advantages, returns = gae_advantages(reward, values, next_values, terminated, terminated | rollout.traj.truncated,
                                         gamma, gae_lambda)
    return rollout._replace(batch={**rollout.batch, "advantages": advantages, "returns": returns})


def make_paired(ppo_cfg: PPOConfig, num_levels: int, env: Env, total_timesteps: int, eval_levels, num_walls: int,
                height: int = 13, width: int = 13, num_eval_episodes: int = 8, deterministic_eval: bool = False,
                extra_eval: tuple = ()) -> Agent:
    """PAIRED with the same PPO settings for protagonist and antagonist; the adversary's rollout is
    one editor episode (``num_walls + 2`` steps) per env, learnt in one minibatch per epoch.

    Returns:
        an :class:`Agent` (state :class:`PAIREDState`, hparams :class:`~jaxrl.curricula.ued.UEDHParams`) whose
        ``evaluate`` returns the protagonist's ``[(L + sum L_i) * num_eval_episodes]`` held-out returns, level-major
        (``extra_eval``: more held-out sets ``(env, levels)``, see :func:`~jaxrl.curricula.ued.held_out_evaluator`).
    """
    if ppo_cfg.normalize_obs:
        raise ValueError("--normalize-obs is not supported with curricula")  # envs are reset to new levels every update
    student_cfg = dataclasses.replace(ppo_cfg, num_envs=num_levels)
    editor = FlattenObservation(MazeEditor(height, width, num_walls))
    # An update's env steps are both students' rollouts and the adversary's design episodes, so the budget buys
    # total_timesteps // (those steps) updates; the students are built for exactly that many (their schedules' horizon).
    student_steps = num_levels * ppo_cfg.rollout_len
    updates = max(total_timesteps // (2 * student_steps + num_levels * editor.unwrapped.num_steps), 1)
    protagonist, p_pieces = build_ppo(student_cfg, env, updates * student_steps, num_eval_episodes, deterministic_eval,
                                      batched_env_params=True)
    antagonist, a_pieces = build_ppo(student_cfg, env, updates * student_steps, num_eval_episodes, deterministic_eval,
                                     batched_env_params=True)
    adversary_cfg = dataclasses.replace(ppo_cfg, num_envs=num_levels, rollout_len=editor.unwrapped.num_steps, num_minibatches=1,
                                        recurrent="none", normalize_obs=False)
    adversary, d_pieces = build_ppo(adversary_cfg, editor, updates * num_levels * adversary_cfg.rollout_len)

    def init(key, hp: UEDHParams) -> PAIREDState:
        kp, ka, kd = jax.random.split(key, 3)
        return PAIREDState(protagonist.init(kp, hp.ppo), antagonist.init(ka, hp.ppo), adversary.init(kd, hp.ppo))

    def play(key, pieces, agent, state, levels, hp):
        """Reset every env to its level, one rollout, the rollout and the state it leads to."""
        key_reset, key_rollout = jax.random.split(key)
        env_state, obs = pieces.vec_env.reset(key_reset, levels)
        state = state._replace(env_state=env_state, obs=obs)
        if agent.initial_policy_state is not None:
            state = state._replace(core_state=agent.initial_policy_state(num_levels))
        return pieces.collect(key_rollout, state, levels, hp)

    def update(key, state: PAIREDState, env_params, hp: UEDHParams):
        ppo_hp = hp.ppo  # the curriculum's part is unused: the adversary designs the levels
        k_design, k_reset, k_p, k_a, k_lp, k_la, k_ld = jax.random.split(key, 7)
        env_state, obs = d_pieces.vec_env.reset(k_reset, None)
        design = d_pieces.collect(k_design, state.adversary._replace(env_state=env_state, obs=obs), None, ppo_hp)
        levels = jax.vmap(lambda o: level_from_editor_obs(o, height, width))(design.traj.final_obs[-1])
        p_rollout = play(k_p, p_pieces, protagonist, state.protagonist, levels, ppo_hp)
        a_rollout = play(k_a, a_pieces, antagonist, state.antagonist, levels, ppo_hp)
        p_info, a_info = p_rollout.traj.info, a_rollout.traj.info
        regret = paired_regret(a_info["episode_return"], a_info["episode_done"], p_info["episode_return"], p_info["episode_done"])
        p_state, p_metrics = p_pieces.learn(k_lp, p_rollout, ppo_hp)
        a_state, a_metrics = a_pieces.learn(k_la, a_rollout, ppo_hp)
        d_state, d_metrics = d_pieces.learn(k_ld, with_terminal_reward(design, regret, ppo_hp.gamma, ppo_hp.gae_lambda), ppo_hp)
        solved = jnp.any(p_info["episode_done"] & (p_info["episode_return"] > 0), axis=0)
        metrics = dict(p_metrics)
        metrics.update(
            gradient_updates=p_state.update_step.astype(jnp.float32),
            regret=jnp.mean(regret),
            level_score=jnp.mean(regret),
            train_solve_rate=jnp.mean(solved.astype(jnp.float32)),
            antagonist_return=a_metrics["train_return"],
            adversary_entropy=d_metrics["entropy"],
            mean_walls=jnp.mean(jnp.sum(levels.wall_map, axis=(-2, -1)).astype(jnp.float32)),
        )
        return PAIREDState(p_state, a_state, d_state), metrics

    held_out = held_out_evaluator(protagonist, eval_levels, extra_eval, num_eval_episodes, deterministic_eval)

    def evaluate(key, state: PAIREDState, env_params, hp: UEDHParams):
        return held_out(key, state.protagonist, hp.ppo)

    return Agent(init=init, update=update, evaluate=evaluate, act=protagonist.act, num_updates=updates,
                 env_steps_per_update=protagonist.env_steps_per_update * 2 + num_levels * adversary_cfg.rollout_len,
                 env=p_pieces.vec_env, initial_policy_state=protagonist.initial_policy_state, policy_of=protagonist_policy)
