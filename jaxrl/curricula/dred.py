"""DRED: data-regularised environment design (Garcin et al. 2024, "DRED: Zero-Shot Transfer in
Reinforcement Learning via Data-Regularised Environment Design").

The level buffer starts with a dataset of levels from the target distribution, which are never
evicted. New levels come from a generative model of the dataset (``dred``: interpolations in a
VAE's latent space, :mod:`jaxrl.curricula.level_model`) or from edits of dataset levels
(``dred_edit``, EL-DRED); the agent takes no gradient step on them (as robust PLR), and they enter
the buffer only with a positive *grounded* score: the value loss ``|G_t - V(s_t)|`` counted only
on levels that have been solved at least once (``--score grounded_l1``), so unsolvable
generated levels never displace anything. Replay draws from
``(1 - c) P_dataset + c P_buffer``: PLR's replay distribution over the dataset slots only and over
the whole buffer, with ``c`` annealed linearly from 0 to 1 over training (the reference's
``schedule_secondary_strategy_coef``).

Deviations from the reference (``uoe-agents/dred``, built on dcd): one score for both
distributions (the grounded value loss; the reference scores the dataset distribution by the
ungrounded value loss at temperature 0.1 and the buffer by the grounded one at 1.0); new levels
come as whole batches with probability ``1 - replay_prob`` (the reference replays every step and
proposes generated levels beside); ``dred_edit`` edits uniformly drawn dataset levels (the
reference edits the "easy" ones).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.curricula.buffer import (LevelBuffer, advance_time, empty_buffer, fill_ratio, insert_levels, replay_distribution,
                                    sample_indices, update_replayed)
from jaxrl.curricula.curriculum import (MUTATE, NEW, REPLAY, Curriculum, CurriculumConfig, CurriculumHParams, LevelInfo,
                                        LevelScores, LevelSources)
from jaxrl.envs.core import select_tree


class DREDState(NamedTuple):
    """``buffer``: the level buffer, dataset levels in its first slots; ``dataset_slots [C]`` bool; ``iteration []``
    int32, iterations so far (the mixing schedule's clock)."""

    buffer: LevelBuffer
    dataset_slots: jax.Array
    iteration: jax.Array


def seeded_buffer(dataset, capacity: int) -> tuple[LevelBuffer, jax.Array]:
    """A buffer of ``capacity`` whose first ``N`` slots hold ``dataset`` (leaves ``[N, ...]``), score 0, and the
    dataset mask ``[C]``."""
    size = jax.tree.leaves(dataset)[0].shape[0]
    buffer = empty_buffer(jax.tree.map(lambda x: x[0], dataset), capacity)
    levels = jax.tree.map(lambda slots, data: slots.at[:size].set(data), buffer.levels, dataset)
    mask = jnp.arange(capacity) < size
    return buffer._replace(levels=levels, filled=mask), mask


def mixing_coefficient(iteration, num_iterations: int) -> jax.Array:
    """``c`` in ``[0, 1]``: the weight of the whole-buffer distribution, linear from 0 to 1 over the run."""
    return jnp.clip(iteration.astype(jnp.float32) / max(num_iterations - 1, 1), 0.0, 1.0)


def dred_replay_distribution(state: DREDState, cfg: CurriculumConfig, hp: CurriculumHParams, num_iterations: int):
    """``P [C] = (1 - c) P_dataset + c P_buffer`` (PLR's distribution over the dataset slots, over all slots)."""
    buffer = state.buffer
    p_dataset = replay_distribution(buffer._replace(filled=buffer.filled & state.dataset_slots), cfg.prioritization,
                                    hp.temperature, hp.staleness_coef)
    p_buffer = replay_distribution(buffer, cfg.prioritization, hp.temperature, hp.staleness_coef)
    c = mixing_coefficient(state.iteration, num_iterations)
    return (1.0 - c) * p_dataset + c * p_buffer


def make_dred(cfg: CurriculumConfig, sources: LevelSources) -> Curriculum:
    """``dred`` (new levels from ``sources.interpolate``) or ``dred_edit`` (edits of dataset levels, ``sources.mutate``)."""
    if sources.dataset is None:
        raise ValueError(f"{cfg.method} needs a dataset of levels")
    if cfg.method == "dred" and sources.interpolate is None:
        raise ValueError("dred needs a generative model of the dataset (LevelSources.interpolate)")
    if cfg.method == "dred_edit" and sources.mutate is None:
        raise ValueError("dred_edit needs a level mutator")
    size = jax.tree.leaves(sources.dataset)[0].shape[0]
    if cfg.capacity < size + cfg.num_levels:
        raise ValueError(f"--capacity ({cfg.capacity}) must hold the {size} dataset levels and a batch of {cfg.num_levels}")
    num = cfg.num_levels
    dataset = sources.dataset

    def new_levels(key):
        keys = jax.random.split(key, num)
        if cfg.method == "dred":
            return jax.vmap(sources.interpolate)(keys)
        parents = jax.vmap(lambda k: jax.tree.map(lambda x: x[jax.random.randint(k, (), 0, size)], dataset))(keys)
        return jax.vmap(sources.mutate)(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), parents)

    def init(key) -> DREDState:
        buffer, mask = seeded_buffer(dataset, cfg.capacity)
        return DREDState(buffer, mask, jnp.zeros((), jnp.int32))

    def sample(key, state: DREDState, hp: CurriculumHParams):
        key_new, key_index, key_replay = jax.random.split(key, 3)
        buffer = state.buffer
        indices = sample_indices(key_index, dred_replay_distribution(state, cfg, hp, sources.num_iterations), num)
        replay = jnp.any(buffer.filled) & (fill_ratio(buffer) >= hp.min_fill) & jax.random.bernoulli(key_replay, hp.replay_prob)
        levels = select_tree(replay, jax.tree.map(lambda x: x[indices], buffer.levels), new_levels(key_new))
        kind = jnp.where(replay, REPLAY, NEW if cfg.method == "dred" else MUTATE).astype(jnp.int32)
        info = LevelInfo(kind=kind, indices=jnp.where(replay, indices, 0).astype(jnp.int32), train=replay,
                         max_returns=jnp.where(replay, buffer.max_returns[indices], -jnp.inf))
        return state, levels, info

    def update(state: DREDState, levels, scores: LevelScores, info: LevelInfo) -> DREDState:
        buffer = advance_time(state.buffer, num)
        replayed = update_replayed(buffer, info.indices, scores.score, scores.max_return)
        # Generated / edited levels enter only with a positive grounded score, and never over a dataset level.
        admissible = jnp.where(scores.score > 0.0, scores.score, -jnp.inf)
        inserted = insert_levels(buffer, levels, admissible, scores.max_return, protected=state.dataset_slots)
        buffer = select_tree(info.kind == REPLAY, replayed, inserted)
        return DREDState(buffer, state.dataset_slots, state.iteration + 1)

    return Curriculum(init, sample, update, cfg)
