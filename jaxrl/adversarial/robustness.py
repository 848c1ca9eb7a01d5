"""Robustness of a trained protagonist, inside one compiled program (vmapped over members by the caller).

* nominal: the protagonist's greedy policy without an adversary (zero force), temperature feature 0;
* worst case: a fresh SAC adversary (learned temperature, temperature feature 0, QARL's evaluation) trained
  from scratch against the frozen protagonist for ``steps`` env steps; then the protagonist's return against
  that adversary's greedy force;
* held-out physics: the protagonist's greedy policy without an adversary on each held-out physics level.
"""
from __future__ import annotations

from typing import Callable

import jax

from jaxrl.adversarial.players import make_two_player_sac
from jaxrl.agents.sac import SACConfig
from jaxrl.envs import make_vec_env
from jaxrl.envs.adversarial import fixed_temperature
from jaxrl.evaluation.rollout import bind_policy, evaluate_episodes


def make_robustness_evaluation(cfg: SACConfig, env, steps: int, num_episodes: int, held_out_levels) -> Callable:
    """``(key, params: TwoPlayerParams, hp: TwoPlayerHParams) -> dict``: ``nominal [E]``, ``worst_case [E]``,
    ``held_out [L, E]`` undiscounted returns (``E = num_episodes``, ``L`` held-out levels, first axis of
    ``held_out_levels``' leaves), and ``worst_case_adversary_return [U]``, the worst-case adversary's training
    return per iteration (the protagonist's return under it: it should fall)."""
    nominal_params = env.with_temperature(fixed_temperature(0.0))
    trainer, joint_act = make_two_player_sac(cfg, env, steps, adversary="autotuned", learn_protagonist=False)
    eval_env = make_vec_env(env, num_episodes)
    horizon = env.max_episode_steps(env.default_params)
    level_params = jax.vmap(lambda level: env.with_temperature(fixed_temperature(0.0), level))(held_out_levels)

    def play(key, act, params, env_params):
        act_fn, _ = bind_policy(act, params, True, None, num_episodes)
        return evaluate_episodes(key, act_fn, eval_env, env_params, horizon)

    def evaluate(key, params, hp):
        key_init, key_train, key_nominal, key_worst, key_held = jax.random.split(key, 5)
        state = trainer.init(key_init, hp)
        state = state._replace(params=state.params._replace(protagonist=params.protagonist))

        def one_update(state, k):
            state, metrics = trainer.update(k, state, nominal_params, hp)
            return state, metrics["train_return"]

        state, adversary_training = jax.lax.scan(one_update, state, jax.random.split(key_train, trainer.num_updates))
        held_keys = jax.random.split(key_held, jax.tree.leaves(level_params)[0].shape[0])
        return {
            "nominal": play(key_nominal, trainer.act, params, nominal_params),
            "worst_case": play(key_worst, joint_act, state.params, nominal_params),
            "held_out": jax.vmap(lambda k, p: play(k, trainer.act, params, p))(held_keys, level_params),
            "worst_case_adversary_return": adversary_training,
        }

    return evaluate


def robustness_keys(keys: jax.Array) -> jax.Array:
    """Per-member keys of the robustness evaluation, derived from the members' run keys ``[M]`` (independent of
    the training's own streams)."""
    return jax.vmap(lambda k: jax.random.fold_in(k, 0xAD5))(keys)

