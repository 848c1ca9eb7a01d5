"""Sampling For Learnability (SFL; Rutherford et al. 2024, "No Regrets: Investigating and Improving
Regret Approximations for Curriculum Discovery").

Every ``sfl_period`` iterations the curriculum draws ``sfl_sample_levels`` random levels, measures
the current policy's success rate ``p`` on each (``sfl_episodes`` episodes, stochastic policy),
and keeps the ``sfl_keep`` levels of highest learnability ``p (1 - p)``: levels the agent solves
sometimes, neither always nor never. Until the next refresh, each training batch holds
``round(sfl_buffer_fraction * num_levels)`` levels drawn uniformly (with replacement) from that
set and random levels for the rest. The agent learns on every batch (nothing is skipped). As in
the reference, the sampling rollouts are not counted as training env steps.

The learnable set is a :class:`~jaxrl.curricula.buffer.LevelBuffer` (scores = learnability) so
the run's buffer images show it. Deviations from the reference (``sampling-for-learnability``,
``minigrid_sfl.py``): the success rate comes from ``sfl_episodes`` fresh episodes per level
rather than the first 10 episodes of one 2000-step rollout, and the defaults are sized for a CPU
(1000 levels sampled, 100 kept, refresh every 20 iterations; reference: 25000, 1000, 100).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.curricula.buffer import LevelBuffer, empty_buffer
from jaxrl.curricula.curriculum import NEW, Curriculum, CurriculumConfig, CurriculumState, LevelInfo, LevelSources


def learnability(success_rate: jax.Array) -> jax.Array:
    """``p (1 - p)`` of success rates ``p [N]`` in ``[0, 1]``: 0 for levels always or never solved, 1/4 at ``p = 1/2``."""
    return success_rate * (1.0 - success_rate)


def most_learnable(levels, success_rate: jax.Array, keep: int, time) -> LevelBuffer:
    """The ``keep`` levels of highest learnability among ``levels [N, ...]`` as a full buffer of capacity ``keep``."""
    scores = learnability(success_rate)
    top = jnp.argsort(-scores)[:keep]
    return LevelBuffer(levels=jax.tree.map(lambda x: x[top], levels), scores=scores[top],
                       max_returns=jnp.full(keep, -jnp.inf, jnp.float32), last_sampled=jnp.full(keep, time, jnp.int32),
                       filled=jnp.ones(keep, bool), time=jnp.asarray(time, jnp.int32))


def make_sfl(cfg: CurriculumConfig, sources: LevelSources) -> Curriculum:
    """SFL over ``sources.generate``; its ``refresh`` needs the policy's success rates (the UED iteration passes them)."""
    num = cfg.num_levels
    from_set = int(round(cfg.sfl_buffer_fraction * num))

    def generate_batch(key, count):
        return jax.vmap(sources.generate)(jax.random.split(key, count))

    def init(key) -> CurriculumState:
        # Empty until the first refresh, which runs before the first training iteration.
        return CurriculumState(empty_buffer(sources.generate(key), cfg.sfl_keep), (), jnp.zeros((), bool))

    def refresh(key, state: CurriculumState, success_rates) -> CurriculumState:
        key_levels, key_eval = jax.random.split(key)
        candidates = generate_batch(key_levels, cfg.sfl_sample_levels)
        rates = success_rates(key_eval, candidates)
        return state._replace(buffer=most_learnable(candidates, rates, cfg.sfl_keep, state.buffer.time))

    def sample(key, state: CurriculumState, hp):
        key_new, key_pick = jax.random.split(key)
        new = generate_batch(key_new, num - from_set)
        picks = jax.random.randint(key_pick, (from_set,), 0, cfg.sfl_keep)
        chosen = jax.tree.map(lambda x: x[picks], state.buffer.levels)
        levels = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), chosen, new)
        info = LevelInfo(kind=jnp.asarray(NEW, jnp.int32), indices=jnp.zeros(num, jnp.int32), train=jnp.asarray(True),
                         max_returns=jnp.full(num, -jnp.inf))
        return state, levels, info

    def update(state: CurriculumState, levels, scores, info) -> CurriculumState:
        return state._replace(buffer=state.buffer._replace(time=state.buffer.time + num))

    return Curriculum(init, sample, update, cfg, refresh=refresh, refresh_period=cfg.sfl_period)
