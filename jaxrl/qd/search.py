"""One quality-diversity iteration as an ``Agent`` update, so MAP-Elites, PGA-ME and DCG-ME run on the shared loop.

An iteration: emit a batch of offspring from the repertoire, evaluate them in
vmapped rollouts, insert them, and (gradient emitters) add their transitions
to the replay buffer and train the critic and actor. Everything is one
compiled step; the driver scans iterations in chunks, vmaps seeds, checkpoints
the repertoire with the replay buffer and resumes bit-exactly.

Emitters (a batch of ``B`` offspring each iteration):

* ``map_elites``: ``B`` Iso+Line-DD offspring of uniformly drawn elites (Vassiliades & Mouret 2018).
* ``pga_me`` (Nilsson & Cully 2021): ``ga_proportion * B`` Iso+Line-DD offspring, ``pg_steps`` of TD3
  policy-gradient variation for the rest but one, and the greedy TD3 actor itself (actor injection).
* ``dcg_me`` (Faldor et al. 2023): Iso+Line-DD offspring, descriptor-conditioned gradient variation of
  elites towards their own descriptor, and the descriptor-conditioned actor folded at the descriptors of
  uniformly drawn elites (actor injection). The actor, trained on the archive's experience, is the archive
  distilled into one network (:func:`distilled_policy`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent
from jaxrl.buffers.replay import add_masked
from jaxrl.config import option
from jaxrl.envs import Box
from jaxrl.networks import ACTIVATIONS
from jaxrl.networks.continuous import DeterministicActor, TwinQNetwork, fold_conditioning
from jaxrl.qd.gradients import (ActorCritic, QDTransition, TD3Settings, init_actor_critic, make_pg_variation,
                                make_train_actor_critic)
from jaxrl.qd.repertoire import Repertoire, cvt_centroids, empty_repertoire, grid_centroids, insert, qd_metrics, select_uniform
from jaxrl.qd.tasks import Evaluation, QDTask, make_evaluate_batch
from jaxrl.qd.variation import iso_line_dd

EMITTERS = ("map_elites", "pga_me", "dcg_me")
GRADIENT_EMITTERS = ("pga_me", "dcg_me")
ARCHIVES = ("grid", "cvt")
# The published values of the settings whose default is 0 ("the emitter's own"): PGA-ME (QDax's PGAMEConfig)
# and DCG-ME (QDax's DCRLMEConfig, the paper's settings).
EMITTER_DEFAULTS = {
    "pga_me": dict(critic_steps=300, pg_steps=100, critic_batch_size=256),
    "dcg_me": dict(critic_steps=3000, pg_steps=150, critic_batch_size=100),
}
OFFSPRING_KINDS = ("ga", "pg", "injected")


@dataclasses.dataclass(frozen=True)
class QDConfig:
    """Options of a quality-diversity search. Step sizes, variation spreads and DCG-ME's length scale are traced
    (:class:`QDHParams`, sweepable); the rest fix shapes or the program."""

    emitter: str = option("map_elites", "how offspring are made", choices=EMITTERS)
    archive: str = option("cvt", "repertoire cells: a regular grid or a CVT of the descriptor box", choices=ARCHIVES)
    cells: int = option(1024, "cells of the repertoire (grid: a perfect D-th power, D the descriptor dimension)",
                        minimum=1)
    cvt_samples: int = option(50_000, "uniform descriptor samples the CVT centroids are fitted to", minimum=1)
    cvt_seed: int = option(0, "seed of the CVT (one tessellation for every seed of a run, so archives compare)")
    batch_size: int = option(256, "offspring evaluated per iteration (also the random initial population)", minimum=1)
    iso_sigma: float = option(0.005, "Iso+Line-DD isotropic spread", traced=True, minimum=0.0)
    line_sigma: float = option(0.05, "Iso+Line-DD spread along the line to another elite", traced=True, minimum=0.0)
    ga_proportion: float = option(0.5, "pga_me / dcg_me: share of the batch made by Iso+Line-DD", minimum=0.0, maximum=1.0)
    injections: int = option(-1, "pga_me / dcg_me: actor-injected offspring per iteration (-1: 1 for pga_me, half "
                             "of the gradient share for dcg_me)", minimum=-1)
    hidden_sizes: tuple = option((64, 64), "policy (genotype) MLP layer sizes")
    activation: str = option("relu", "policy hidden activation (the output is tanh)", choices=tuple(ACTIVATIONS))
    critic_hidden_sizes: tuple = option((256, 256), "critic MLP layer sizes")
    critic_steps: int = option(0, "critic steps per iteration (0: 300 for pga_me, 3000 for dcg_me)", minimum=0)
    pg_steps: int = option(0, "policy-gradient steps of each varied elite (0: 100 pga_me, 150 dcg_me)", minimum=0)
    critic_batch_size: int = option(0, "minibatch of critic, actor and gradient variation (0: 256 pga_me, 100 "
                                    "dcg_me)", minimum=0)
    replay_size: int = option(1_000_000, "replay buffer capacity (transitions of every evaluated policy)", minimum=1)
    critic_lr: float = option(3e-4, "critic Adam step size", traced=True, positive=True)
    actor_lr: float = option(3e-4, "greedy / descriptor-conditioned actor Adam step size", traced=True, positive=True)
    policy_lr: float = option(1e-3, "Adam step size of policy-gradient variation", traced=True, positive=True)
    discount: float = option(0.99, "discount of the critic", minimum=0.0, maximum=1.0)
    reward_scaling: float = option(1.0, "reward scale in the critic's target", positive=True)
    policy_noise: float = option(0.2, "TD3 target-policy smoothing noise", minimum=0.0)
    noise_clip: float = option(0.5, "clip of that noise", minimum=0.0)
    tau: float = option(0.005, "Polyak step of the target networks", positive=True, maximum=1.0)
    policy_delay: int = option(2, "critic steps per actor step", minimum=1)
    lengthscale: float = option(0.1, "dcg_me: l of the similarity exp(-||d - d'|| / l) that rescales rewards "
                                "(normalised descriptors)", traced=True, positive=True)


class QDHParams(NamedTuple):
    """Traced settings (float32 scalars; ``[M]`` when vmapped over members)."""

    iso_sigma: jax.Array
    line_sigma: jax.Array
    critic_lr: jax.Array
    actor_lr: jax.Array
    policy_lr: jax.Array
    lengthscale: jax.Array


def qd_hparams(cfg: QDConfig) -> QDHParams:
    return QDHParams(*(jnp.float32(getattr(cfg, name)) for name in QDHParams._fields))


def resolved(cfg: QDConfig) -> QDConfig:
    """``cfg`` with its 0 ("the emitter's own") settings replaced by the emitter's published values."""
    defaults = EMITTER_DEFAULTS.get(cfg.emitter, {})
    return dataclasses.replace(cfg, **{k: v for k, v in defaults.items() if getattr(cfg, k) == 0})


class BatchSplit(NamedTuple):
    """How an iteration's ``B`` offspring are made: ``ga + pg + injected = B``."""

    ga: int
    pg: int
    injected: int


def batch_split(cfg: QDConfig) -> BatchSplit:
    if cfg.emitter == "map_elites":
        return BatchSplit(cfg.batch_size, 0, 0)
    ga = int(cfg.ga_proportion * cfg.batch_size)
    rest = cfg.batch_size - ga
    injected = cfg.injections if cfg.injections >= 0 else (1 if cfg.emitter == "pga_me" else rest // 2)
    return BatchSplit(ga, rest - injected, injected)


def split_problem(cfg: QDConfig) -> str | None:
    """Why the batch cannot be split as asked, or None."""
    split = batch_split(cfg)
    if cfg.emitter != "map_elites" and split.pg < 0:
        return (f"--injections: {split.injected} injected offspring do not fit the gradient share "
                f"({cfg.batch_size - split.ga} of --batch-size {cfg.batch_size})")
    return None


def grid_shape(cells: int, dim: int) -> tuple | None:
    """Cells per dimension of a grid of ``cells`` cells in ``dim`` dimensions, or None if not a perfect power."""
    side = round(cells ** (1.0 / dim))
    return (side,) * dim if side**dim == cells else None


def make_centroids(cfg: QDConfig, task: QDTask) -> jax.Array:
    """``[C, D]`` centroids of the repertoire's cells."""
    if cfg.archive == "grid":
        return jnp.asarray(grid_centroids(grid_shape(cfg.cells, task.descriptor_dim), task.minval, task.maxval))
    return jax.jit(cvt_centroids, static_argnums=(1, 2))(jax.random.PRNGKey(cfg.cvt_seed), cfg.cells, cfg.cvt_samples,
                                                         task.minval, task.maxval)


class QDState(NamedTuple):
    """One seed's search.

    Attributes:
        repertoire: the archive.
        learner: the critic, actor and replay buffer of a gradient emitter (``()`` for MAP-Elites).
        reset_key: the key every fitness evaluation resets the environment with (a fixed start state).
        evaluations: int32, policies evaluated so far (the initial population included).
    """

    repertoire: Repertoire
    learner: Any
    reset_key: jax.Array
    evaluations: jax.Array


class QDPieces(NamedTuple):
    """Static pieces of a search, for callers beyond the loop (distillation, ``load_policy``)."""

    task: QDTask
    policy_net: DeterministicActor
    centroids: jax.Array
    evaluate_batch: Callable
    split: BatchSplit


def best_elite(repertoire: Repertoire):
    """The fittest elite's genotype; works on repertoires with leading member axes (``policy_of``)."""
    lead = repertoire.fitnesses.ndim - 1
    best = jnp.argmax(repertoire.fitnesses, axis=-1)

    def take(x):
        idx = best.reshape(best.shape + (1,) * (x.ndim - lead))
        return jnp.take_along_axis(x, idx, axis=lead).squeeze(lead)

    return jax.tree.map(take, repertoire.genotypes)


def distilled_policy(state: QDState, task: QDTask, descriptor: jax.Array):
    """DCG-ME's descriptor-conditioned actor as an ordinary policy for a target ``descriptor [D]`` (task units)."""
    return fold_conditioning(state.learner.actor, task.normalize(descriptor))


def transitions_for_replay(evaluation: Evaluation, targets: jax.Array, task: QDTask, conditioned: bool):
    """Flattened ``[N * T]`` replay items of an evaluated batch and the mask of the steps to keep (first
    episodes); ``targets [N, K]`` are the normalised descriptors the policies were meant for."""
    tr = evaluation.transitions
    n, t = tr.reward.shape
    if conditioned:
        desc = jnp.broadcast_to(task.normalize(evaluation.descriptor)[:, None], (n, t, task.descriptor_dim))
        desc_prime = jnp.broadcast_to(targets[:, None], (n, t, task.descriptor_dim))
    else:
        desc = desc_prime = jnp.zeros((n, t, 0))
    items = QDTransition(tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminated, desc, desc_prime)
    return jax.tree.map(lambda x: x.reshape(n * t, *x.shape[2:]), items), tr.alive.reshape(n * t)


def make_qd(cfg: QDConfig, task: QDTask, iterations: int, eval_episodes: int) -> tuple[Agent, QDPieces]:
    """The search as an :class:`Agent` (``update`` is one iteration) and its static pieces.

    Metrics of an update: ``qd_score``, ``coverage`` (% of cells), ``max_fitness``, ``mean_fitness``,
    ``evaluations``, ``added_{ga,pg,injected}`` (offspring of each kind that entered the repertoire) and, for
    gradient emitters, ``critic_loss`` and ``actor_loss``. ``evaluate`` replays the best elite from
    ``eval_episodes`` random start states.
    """
    cfg = resolved(cfg)
    env = task.env
    space = env.action_space(env.default_params)
    if not isinstance(space, Box):
        raise ValueError(f"quality-diversity policies are continuous; {task.name} has {type(space).__name__} actions")
    obs_dim, action_dim = env.observation_space(env.default_params).shape[0], int(space.shape[0])
    policy_net = DeterministicActor(action_dim, tuple(cfg.hidden_sizes), cfg.activation)
    evaluate_batch = make_evaluate_batch(task, policy_net.apply)
    centroids = make_centroids(cfg, task)
    split = batch_split(cfg)
    gradient = cfg.emitter in GRADIENT_EMITTERS
    conditioned = cfg.emitter == "dcg_me"
    cond_dim = task.descriptor_dim if conditioned else 0
    critic_net = TwinQNetwork(tuple(cfg.critic_hidden_sizes), "relu")
    settings = TD3Settings(cfg.discount, cfg.reward_scaling, cfg.policy_noise, cfg.noise_clip, cfg.tau,
                           cfg.policy_delay, cfg.critic_steps, cfg.critic_batch_size, cfg.pg_steps, cfg.critic_batch_size)
    train_actor_critic = make_train_actor_critic(policy_net, critic_net, settings)
    pg_variation = make_pg_variation(policy_net, critic_net, settings)

    def record(learner: ActorCritic, evaluation: Evaluation, targets):
        items, keep = transitions_for_replay(evaluation, targets, task, conditioned)
        return learner._replace(buffer=add_masked(learner.buffer, items, keep))

    def init(key, hp: QDHParams) -> QDState:
        key_pop, key_reset, key_learner = jax.random.split(key, 3)
        population = jax.vmap(policy_net.init, in_axes=(0, None))(jax.random.split(key_pop, cfg.batch_size),
                                                                     jnp.zeros((obs_dim,)))
        evaluation = evaluate_batch(key_reset, population)
        example = jax.tree.map(lambda x: x[0], population)
        repertoire, _ = insert(empty_repertoire(example, centroids), population, evaluation.descriptor,
                               evaluation.fitness)
        learner = ()
        if gradient:
            learner = init_actor_critic(key_learner, policy_net, critic_net, obs_dim, action_dim, cond_dim,
                                        cfg.replay_size, hp)
            learner = record(learner, evaluation, task.normalize(evaluation.descriptor)[:, :cond_dim])
        return QDState(repertoire, learner, key_reset, jnp.int32(cfg.batch_size))

    def emit(key, state: QDState, hp: QDHParams):
        """``(offspring [B, ...], targets [B, K] or None, kinds [B])``."""
        key_x, key_y, key_var, key_pg, key_pg_vary, key_inj = jax.random.split(key, 6)
        rep = state.repertoire
        x, _, _ = select_uniform(key_x, rep, split.ga)
        y, _, _ = select_uniform(key_y, rep, split.ga)
        parts = [iso_line_dd(key_var, x, y, hp.iso_sigma, hp.line_sigma)]
        kinds = [jnp.full((split.ga,), 0)]
        targets = [jnp.full((split.ga, cond_dim), jnp.nan)]  # Iso+Line-DD offspring aim at where they land
        if gradient:
            parents, parent_desc, _ = select_uniform(key_pg, rep, split.pg)
            parent_targets = task.normalize(parent_desc)[:, :cond_dim]
            parts.append(pg_variation(key_pg_vary, parents, parent_targets, state.learner, hp))
            kinds.append(jnp.full((split.pg,), 1))
            targets.append(parent_targets)
            if conditioned:
                _, inj_desc, _ = select_uniform(key_inj, rep, split.injected)
                inj_targets = task.normalize(inj_desc)
                parts.append(jax.vmap(fold_conditioning, in_axes=(None, 0))(state.learner.actor, inj_targets))
            else:  # PGA-ME injects the greedy actor itself
                inj_targets = jnp.zeros((split.injected, 0))
                parts.append(jax.tree.map(lambda a: jnp.broadcast_to(a, (split.injected,) + a.shape), state.learner.actor))
            kinds.append(jnp.full((split.injected,), 2))
            targets.append(inj_targets)
        offspring = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
        return offspring, jnp.concatenate(targets), jnp.concatenate(kinds)

    def update(key, state: QDState, env_params, hp: QDHParams):
        del env_params  # a task's environment has fixed parameters
        key_emit, key_train = jax.random.split(key)
        offspring, targets, kinds = emit(key_emit, state, hp)
        evaluation = evaluate_batch(state.reset_key, offspring)
        repertoire, added = insert(state.repertoire, offspring, evaluation.descriptor, evaluation.fitness)
        learner, losses = state.learner, {}
        if gradient:
            achieved = task.normalize(evaluation.descriptor)[:, :cond_dim]
            targets = jnp.where(jnp.isnan(targets), achieved, targets)
            learner, losses = train_actor_critic(key_train, record(learner, evaluation, targets), hp)
        state = QDState(repertoire, learner, state.reset_key, state.evaluations + cfg.batch_size)
        m = qd_metrics(repertoire, task.fitness_offset)
        metrics = {**m._asdict(), "evaluations": state.evaluations, **losses,
                   **{f"added_{name}": jnp.sum(added & (kinds == i)) for i, name in enumerate(OFFSPRING_KINDS)}}
        return state, metrics

    def act(params, obs, key, deterministic=True):
        del key, deterministic  # elites are deterministic policies
        return policy_net.apply(params, obs)

    def evaluate(key, state: QDState, env_params, hp):
        best = jax.tree.map(lambda x: x[None], best_elite(state.repertoire))
        return jax.vmap(lambda k: evaluate_batch(k, best).fitness[0])(jax.random.split(key, eval_episodes))

    def policy_of(state: QDState):
        return best_elite(state.repertoire), ()

    agent = Agent(init, update, evaluate, act, int(iterations), cfg.batch_size * task.episode_length, env,
                  policy_of=policy_of)
    return agent, QDPieces(task, policy_net, centroids, evaluate_batch, split)


def distillation_scores(state: QDState, pieces: QDPieces) -> tuple[Evaluation, Repertoire]:
    """DCG-ME's actor conditioned on every cell's centroid, evaluated, and the repertoire those policies fill
    (one seed; no leading member axis). How much of the archive's QD-score one network reproduces."""
    task = pieces.task
    policies = jax.vmap(lambda c: distilled_policy(state, task, c))(pieces.centroids)
    evaluation = pieces.evaluate_batch(state.reset_key, policies)
    example = jax.tree.map(lambda x: x[0], policies)
    repertoire, _ = insert(empty_repertoire(example, pieces.centroids), policies, evaluation.descriptor,
                           evaluation.fitness)
    return evaluation, repertoire

