"""Environment-design curricula behind one interface: ``Curriculum(init, sample, update)``.

* ``dr``: domain randomisation, every batch is freshly generated.
* ``plr``: Prioritized Level Replay (Jiang et al. 2021): with probability
  ``replay_prob`` (once the buffer is at least ``min_fill`` full) the batch is
  replayed from the level buffer, else generated; new levels are scored and
  inserted. The agent trains on both.
* ``robust_plr``: the same, but the agent takes no gradient step on new levels,
  only on replayed ones (Jiang et al. 2021, "Replay-Guided Adversarial
  Environment Design").
* ``accel``: robust PLR whose step after every replay edits the replayed levels
  (``num_edits`` mutations each) and scores the children for insertion, without
  a gradient step on them (Parker-Holder et al. 2022).

A batch has one kind (new, replayed or mutated) for all its ``num_levels``
levels, as in minimax and JaxUED. Every function is pure and jittable; the
state is a pytree, so it is vmapped over seeds and checkpointed with the agent.

Methods are registered in :data:`CURRICULA` (name -> ``"module:builder"``, imported on use):
a new method is one module with a ``builder(cfg, sources) -> Curriculum`` and one entry
there. Besides the four above: ``sfl`` (:mod:`jaxrl.curricula.sfl`, learnability sampling) and
``dred`` / ``dred_edit`` (:mod:`jaxrl.curricula.dred`, data-regularised design).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.config import option
from jaxrl.curricula.buffer import (
    PRIORITIZATIONS,
    LevelBuffer,
    advance_time,
    empty_buffer,
    fill_ratio,
    insert_levels,
    replay_distribution,
    sample_indices,
    update_replayed,
)
from jaxrl.curricula.scores import SCORES, UNFINISHED
from jaxrl.envs.core import select_tree

# Level-sampling curricula: name -> "module:builder", the builder ``(CurriculumConfig, LevelSources) -> Curriculum``.
CURRICULA: dict[str, str] = {
    "dr": "jaxrl.curricula.curriculum:make_plr_family",
    "plr": "jaxrl.curricula.curriculum:make_plr_family",
    "robust_plr": "jaxrl.curricula.curriculum:make_plr_family",
    "accel": "jaxrl.curricula.curriculum:make_plr_family",
    "sfl": "jaxrl.curricula.sfl:make_sfl",
    "dred": "jaxrl.curricula.dred:make_dred",
    "dred_edit": "jaxrl.curricula.dred:make_dred",
}
METHODS = tuple(CURRICULA)
BUFFER_METHODS = tuple(m for m in METHODS if m != "dr")  # the methods whose state.buffer is a LevelBuffer (drawn)
DATASET_METHODS = ("dred", "dred_edit")  # the methods that need a dataset of levels (and dred a level model)
# The methods that replay a prioritised buffer: the traced replay settings and --capacity apply to these only.
PRIORITISED_METHODS = ("plr", "robust_plr", "accel") + DATASET_METHODS
UED_METHODS = METHODS + ("paired",)  # PAIRED designs levels with a trained adversary: jaxrl.curricula.paired
NEW, REPLAY, MUTATE = 0, 1, 2  # LevelInfo.kind


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """Options of a curriculum. ``replay_prob``, ``min_fill``, ``temperature`` and ``staleness_coef`` are traced
    (:class:`CurriculumHParams`, sweepable); the rest are static (they fix shapes, loop lengths or structure)."""

    method: str = option("robust_plr", "curriculum (paired: adversary, protagonist and antagonist)", choices=UED_METHODS)
    num_levels: int = option(16, "levels per batch (one per training env)", minimum=1)
    capacity: int = option(4000, "level buffer capacity", minimum=1)
    replay_prob: float = option(0.8, "probability of replaying from the buffer once it is min_fill full", traced=True,
                                minimum=0.0, maximum=1.0)
    min_fill: float = option(0.5, "fraction of the buffer to fill before replaying", traced=True, minimum=0.0, maximum=1.0)
    prioritization: str = option("rank", "replay prioritisation of scores", choices=PRIORITIZATIONS)
    temperature: float = option(0.3, "prioritisation temperature beta", traced=True, minimum=1e-6)
    staleness_coef: float = option(0.3, "weight rho of the staleness distribution in the replay mix", traced=True,
                                   minimum=0.0, maximum=1.0)
    score: str = option("auto", "level score: positive value loss (pvl), MaxMC, DRED's grounded value loss (grounded_l1), "
                        "or auto (grounded_l1 for dred and dred_edit, else maxmc as JaxUED)", choices=("auto",) + SCORES)
    num_edits: int = option(8, "edits per mutated level (accel)", minimum=1)
    sfl_sample_levels: int = option(1000, "sfl: random levels whose learnability is measured at each refresh "
                                    "(No Regrets' minigrid runs: 25000)", minimum=1)
    sfl_episodes: int = option(10, "sfl: episodes per sampled level to estimate the success rate p", minimum=1)
    sfl_keep: int = option(100, "sfl: levels of highest learnability p (1 - p) kept (No Regrets: 1000)", minimum=1)
    sfl_period: int = option(20, "sfl: curriculum iterations between refreshes of the learnable set (No Regrets: 100)",
                             minimum=1)
    sfl_buffer_fraction: float = option(0.5, "sfl: fraction of each batch drawn from the learnable set, the rest random "
                                        "(No Regrets: 0.5)", minimum=0.0, maximum=1.0)
    dataset_size: int = option(1024, "dred, dred_edit and --generator dataset: levels in the dataset of the target "
                               "distribution (Maze: cellular-automaton caves, drawn from a fixed seed)", minimum=1)
    level_model: str = option("runs/level_models/maze_caves", "dred: directory of the level VAE (trained by "
                              "experiments/level_model.py; trained there first if missing)")
    level_model_steps: int = option(2000, "dred: VAE training steps when the level model is built", minimum=1)
    unfinished: str = option("unscored", "levels on which no episode finished in the rollout: unscored (never enter the "
                             "buffer; scores average finished episodes only, as JaxUED / minimax) or rollout_mean "
                             "(the score averages every step of the rollout)", choices=UNFINISHED)


class CurriculumHParams(NamedTuple):
    """The traced options of a curriculum: float32 scalars (``[M]`` when vmapped over members).

    Attributes:
        replay_prob: probability that a batch is replayed once the buffer is ``min_fill`` full.
        temperature: prioritisation temperature ``beta > 0``.
        staleness_coef: weight ``rho`` in ``[0, 1]`` of the staleness distribution.
        min_fill: fraction of the buffer that must be filled before replaying.
    """

    replay_prob: jax.Array
    temperature: jax.Array
    staleness_coef: jax.Array
    min_fill: jax.Array


def curriculum_hparams(cfg: CurriculumConfig) -> CurriculumHParams:
    """The traced options of ``cfg`` as float32 scalars."""
    return CurriculumHParams(**{name: jnp.asarray(getattr(cfg, name), jnp.float32) for name in CurriculumHParams._fields})


class CurriculumState(NamedTuple):
    """``buffer``: the level buffer (``()`` for dr); ``parents``: last replayed batch (accel's
    next parents, leaves ``[num_levels, ...]``); ``mutate_next``: ``[]`` bool, the next batch is mutated."""

    buffer: Any
    parents: Any
    mutate_next: jax.Array


class LevelInfo(NamedTuple):
    """What ``sample`` says about its batch.

    Attributes:
        kind: ``[]`` int32, ``NEW``, ``REPLAY`` or ``MUTATE``.
        indices: ``[B]`` int32 buffer slots of replayed levels (0 otherwise).
        train: ``[]`` bool, the agent takes a gradient step on this batch.
        max_returns: ``[B]`` float32 best return stored for each level (``-inf`` if new), for MaxMC.
    """

    kind: jax.Array
    indices: jax.Array
    train: jax.Array
    max_returns: jax.Array


class LevelScores(NamedTuple):
    """``score [B]`` (regret estimate) and ``max_return [B]`` (best return now known) per level."""

    score: jax.Array
    max_return: jax.Array


class Curriculum(NamedTuple):
    """Pure functions of a curriculum.

    Attributes:
        init: ``key -> state`` (a pytree; its ``buffer`` a :class:`LevelBuffer` for :data:`BUFFER_METHODS`).
        sample: ``(key, state, hp: CurriculumHParams) -> (state, levels [B, ...], LevelInfo)``.
        update: ``(state, levels, LevelScores, LevelInfo) -> state``.
        config: the :class:`CurriculumConfig`.
        refresh: None, or ``(key, state, success_rates) -> state`` run before every ``refresh_period``
            iterations, where ``success_rates(key, levels [N, ...]) -> [N]`` is the current policy's
            solve rate on each level (SFL rebuilds its learnable set with it).
        refresh_period: iterations between refreshes (1 without ``refresh``).
    """

    init: Callable
    sample: Callable
    update: Callable
    config: CurriculumConfig
    refresh: Callable | None = None
    refresh_period: int = 1


class LevelSources(NamedTuple):
    """Where a curriculum's levels come from (a builder takes what it needs).

    Attributes:
        generate: ``key -> level``, the level space's random generator.
        mutate: ``(key, level) -> level`` (ACCEL's editor), or None.
        dataset: levels of a target distribution, leaves ``[N, ...]`` (DRED), or None.
        interpolate: ``key -> level`` from a generative model of the dataset (DRED), or None.
        num_iterations: curriculum iterations of the whole run (schedules over training).
    """

    generate: Callable
    mutate: Callable | None = None
    dataset: Any = None
    interpolate: Callable | None = None
    num_iterations: int = 1


def level_score_name(cfg: CurriculumConfig) -> str:
    """The score ``cfg`` uses: ``cfg.score``, with ``auto`` resolved by method (DRED's grounded score for its methods)."""
    if cfg.score != "auto":
        return cfg.score
    return "grounded_l1" if cfg.method in DATASET_METHODS else "maxmc"


def validate_curriculum(cfg: CurriculumConfig) -> str | None:
    """Host-side checks of ``cfg`` (the message names the flag), None if fine. The traced options are checked at
    their configured values; swept values are checked against the options' bounds by the CLI."""
    if cfg.method not in UED_METHODS:
        return f"--method: {cfg.method!r} is not one of {', '.join(UED_METHODS)}"
    if not 0.0 <= cfg.replay_prob <= 1.0:
        return f"--replay-prob must be in [0, 1], got {cfg.replay_prob}"
    if not 0.0 <= cfg.min_fill <= 1.0:
        return f"--min-fill must be in [0, 1], got {cfg.min_fill}"
    if not 0.0 <= cfg.staleness_coef <= 1.0:
        return f"--staleness-coef must be in [0, 1], got {cfg.staleness_coef}"
    if cfg.method in PRIORITISED_METHODS and cfg.capacity < cfg.num_levels:
        return f"--capacity ({cfg.capacity}) must hold at least one batch of {cfg.num_levels} levels"
    if cfg.method in DATASET_METHODS and cfg.capacity < cfg.dataset_size + cfg.num_levels:
        return (f"--capacity ({cfg.capacity}) must hold the --dataset-size ({cfg.dataset_size}) dataset levels "
                f"and a batch of {cfg.num_levels}")
    if cfg.method == "sfl":
        if cfg.sfl_keep > cfg.sfl_sample_levels:
            return f"--sfl-keep ({cfg.sfl_keep}) must be at most --sfl-sample-levels ({cfg.sfl_sample_levels})"
    return None


def make_curriculum(cfg: CurriculumConfig, generate: Callable, mutate: Callable | None = None, **sources) -> Curriculum:
    """Builds ``cfg.method`` (an entry of :data:`CURRICULA`) over a level generator and the other
    :class:`LevelSources` (``mutate`` for accel; ``dataset``, ``interpolate`` for dred).

    Args:
        generate: ``key -> level`` (one unbatched level, e.g. :func:`jaxrl.envs.levels.generate_level`).
        mutate: ``(key, level) -> level`` (accel, dred_edit).
    """
    error = validate_curriculum(cfg)
    if error:
        raise ValueError(error)
    if cfg.method not in METHODS:
        raise ValueError(f"{cfg.method} is not a level-sampling curriculum; see jaxrl.curricula.paired.make_paired")
    module, builder = CURRICULA[cfg.method].split(":")
    return getattr(importlib.import_module(module), builder)(cfg, LevelSources(generate, mutate, **sources))


def make_plr_family(cfg: CurriculumConfig, sources: LevelSources) -> Curriculum:
    """``dr``, ``plr``, ``robust_plr`` and ``accel`` (see the module docstring)."""
    generate, mutate = sources.generate, sources.mutate
    if cfg.method == "accel" and mutate is None:
        raise ValueError("accel needs a level mutator")
    num = cfg.num_levels
    robust = cfg.method in ("robust_plr", "accel")
    accel = cfg.method == "accel"

    def generate_batch(key):
        return jax.vmap(generate)(jax.random.split(key, num))

    def init(key) -> CurriculumState:
        example = generate(key)
        batch = jax.tree.map(lambda x: jnp.zeros((num,) + x.shape, x.dtype), example)
        buffer = () if cfg.method == "dr" else empty_buffer(example, cfg.capacity)
        return CurriculumState(buffer, batch if accel else (), jnp.zeros((), bool))

    def sample(key, state: CurriculumState, hp: CurriculumHParams):
        key_new, key_index, key_replay, key_mutate = jax.random.split(key, 4)
        new = generate_batch(key_new)
        no_slots = jnp.zeros(num, jnp.int32)
        if cfg.method == "dr":
            return state, new, LevelInfo(jnp.asarray(NEW), no_slots, jnp.asarray(True), jnp.full(num, -jnp.inf))
        buffer: LevelBuffer = state.buffer
        probs = replay_distribution(buffer, cfg.prioritization, hp.temperature, hp.staleness_coef)
        indices = sample_indices(key_index, probs, num)
        # An empty buffer holds only zero placeholders (a start on the goal, weightless physics), so it is never
        # replayed, whatever min_fill says (min_fill = 0 would otherwise replay them on the first batch).
        replay = jnp.any(buffer.filled) & (fill_ratio(buffer) >= hp.min_fill) & jax.random.bernoulli(key_replay, hp.replay_prob)
        kind = jnp.where(replay, REPLAY, NEW)
        levels = select_tree(replay, jax.tree.map(lambda x: x[indices], buffer.levels), new)
        if accel:
            children = jax.vmap(mutate)(jax.random.split(key_mutate, num), state.parents)
            kind = jnp.where(state.mutate_next, MUTATE, kind)
            levels = select_tree(state.mutate_next, children, levels)
        is_replay = kind == REPLAY
        info = LevelInfo(
            kind=kind.astype(jnp.int32),
            indices=jnp.where(is_replay, indices, 0).astype(jnp.int32),
            train=is_replay if robust else jnp.asarray(True),
            max_returns=jnp.where(is_replay, buffer.max_returns[indices], -jnp.inf),
        )
        return state, levels, info

    def update(state: CurriculumState, levels, scores: LevelScores, info: LevelInfo) -> CurriculumState:
        if cfg.method == "dr":
            return state
        buffer = advance_time(state.buffer, num)
        is_replay = info.kind == REPLAY
        replayed = update_replayed(buffer, info.indices, scores.score, scores.max_return)
        inserted = insert_levels(buffer, levels, scores.score, scores.max_return)
        buffer = select_tree(is_replay, replayed, inserted)
        if accel:
            # The replayed batch becomes the parents of the next (mutated) batch.
            return CurriculumState(buffer, select_tree(is_replay, levels, state.parents), is_replay)
        return state._replace(buffer=buffer)

    return Curriculum(init, sample, update, cfg)
