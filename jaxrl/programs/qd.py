"""The quality-diversity program: MAP-Elites, PGA-ME and DCG-ME, seeds in one compiled program.

``python experiments/qd.py --emitter dcg_me --task DeceptiveMaze-v0 --iterations 20 --num-seeds 2``;
``from jaxrl import qd``. An iteration (emit, evaluate the batch in vmapped rollouts, insert, train the
critic and actor) is one update of the shared loop (:mod:`jaxrl.qd.search`); the repertoire and replay
buffer are part of the state, so checkpoints and ``--resume`` carry them. The variation spreads, step
sizes and DCG-ME's length scale are traced: ``--sweep iso_sigma=0.005,0.01`` is one compiled program.

What it writes beside the driver's outputs: ``summary.json`` with ``qd_score``, ``coverage``,
``max_fitness`` and ``mean_fitness`` (per seed and mean) and, for DCG-ME, the distilled actor's
archive (``distilled_*``: the actor conditioned on every cell's centroid, evaluated and inserted into
an empty repertoire); ``curves.npz`` (per-iteration metrics ``[N, G, S]`` and ``evaluations [N]``);
``qd_curves.png``; ``archive.png`` (seed 0's final repertoire) and ``archives/chunk_NNN.png`` at every
checkpoint. ``jaxrl.io.load_policy(run, cell=i)`` / ``(run, descriptor=d)`` / ``(run, distilled=d)`` open
an elite or the distilled policy; without them, the best elite.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import ConfigError, option
from jaxrl.io.plots import plot_archive, plot_qd_curves
from jaxrl.parallel import first_seed_to_host
from jaxrl.programs.driver import Built, entries, program_from_module
from jaxrl.qd.repertoire import cell_indices, qd_metrics
from jaxrl.qd.search import (GRADIENT_EMITTERS, OFFSPRING_KINDS, QDConfig, distillation_scores, distilled_policy,
                             grid_shape, make_qd, qd_hparams, resolved, split_problem)
from jaxrl.qd.tasks import QD_TASKS, make_task
from jaxrl.training.loop import make_runner

CURVE_METRICS = ("qd_score", "coverage", "max_fitness", "mean_fitness")  # per iteration: rows, curves, summary
DESCRIPTOR_NAMES = {"position": ("final x", "final y"), "torso_xy": ("final x", "final y"),
                    "feet_contact": ("foot contact proportion", "second foot contact proportion")}


@dataclasses.dataclass(frozen=True)
class QDProblem:
    """The task and the budget."""

    task: str = option("DeceptiveMaze-v0", "task with a behaviour descriptor", choices=tuple(QD_TASKS))
    iterations: int = option(1000, "iterations per seed (each evaluates --batch-size offspring)", minimum=1)
    episode_length: int = option(0, "steps of every evaluation episode (0: the task's, 100 for the maze, 1000 for brax)",
                                 minimum=0)
    backend: str = option("spring", "brax physics pipeline of brax tasks", choices=("spring", "positional", "generalized"))


def groups(raw: dict):
    return (("problem", "problem", QDProblem), ("qd", "quality diversity", QDConfig))


def check(cfg) -> None:
    problem, qd = cfg.problem, cfg.qd
    dim = len(QD_TASKS[problem.task].minval)
    if qd.archive == "grid" and grid_shape(qd.cells, dim) is None:
        side = round(qd.cells ** (1.0 / dim))
        raise ConfigError(f"{cfg.where('cells')}: a grid over {problem.task}'s {dim}-D descriptor needs a perfect "
                          f"{dim}-th power of cells (e.g. {max(side, 1) ** dim}), got {qd.cells}")
    if qd.archive == "cvt" and qd.cvt_samples < qd.cells:
        raise ConfigError(f"{cfg.where('cvt_samples')}: a CVT of {qd.cells} cells needs at least as many samples, "
                          f"got {qd.cvt_samples}")
    problem_text = split_problem(qd)
    if problem_text:
        raise ConfigError(problem_text)
    if qd.emitter in GRADIENT_EMITTERS:
        full = resolved(qd)
        length = problem.episode_length or QD_TASKS[problem.task].episode_length
        if qd.replay_size < qd.batch_size * length:
            raise ConfigError(f"{cfg.where('replay_size')}: must hold one iteration's transitions (--batch-size x "
                              f"episode length = {qd.batch_size * length}), got {qd.replay_size}")
        if full.critic_batch_size * (full.policy_delay + 1) > qd.batch_size * length:
            raise ConfigError(f"{cfg.where('critic_batch_size')}: {full.critic_batch_size} x (policy delay + 1) "
                              f"transitions exceed one iteration's {qd.batch_size * length}")


def build(cfg) -> Built:
    problem = cfg.problem
    task = make_task(problem.task, problem.episode_length, problem.backend)
    agent, pieces = make_qd(cfg.qd, task, problem.iterations, cfg.run.eval_episodes)
    return Built(task.env, make_runner(agent, task.env.default_params, cfg.run.num_chunks), qd_hparams(cfg.qd),
                 {"pieces": pieces})


def update_fields(ctx, metrics: dict) -> dict:
    """One grid point's row: seed means of the repertoire's metrics and of the emitter's."""
    names = [*CURVE_METRICS, *(f"added_{k}" for k in OFFSPRING_KINDS)]
    names += [k for k in ("critic_loss", "actor_loss") if k in metrics]
    row = {name: float(np.mean(metrics[name])) for name in names}
    row["evaluations"] = int(np.asarray(metrics["evaluations"]).reshape(-1)[0])
    return row


def eval_fields(ctx, eval_returns) -> dict:
    """``eval_return_mean``: the best elite replayed from ``--eval-episodes`` random start states, mean over seeds."""
    e = eval_returns.reshape(eval_returns.shape[0], -1).mean(-1)  # [S]
    return dict(eval_return_mean=float(e.mean()))


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    if not last:
        return {}
    return {"qd": float(np.mean(last["qd_score"])), "cov": float(np.mean(last["coverage"]))}


def curves(ctx, history: dict) -> dict:
    """``iteration [N]``, ``evaluations [N]`` (per seed), the repertoire metrics ``[N, G, S]``, ``eval_returns``."""
    n = history["qd_score"].shape[0]
    batch = ctx.cfg.qd.batch_size
    return dict(iteration=np.arange(n) + 1, evaluations=(np.arange(n) + 2) * batch,
                **{k: history[k] for k in CURVE_METRICS},
                eval_returns=history["eval_returns"])


def figures(ctx, curves: dict) -> None:
    flat = {k: curves[k].reshape(curves[k].shape[0], -1) for k in ("qd_score", "coverage", "max_fitness")}
    plot_qd_curves(ctx.run_dir.path / "qd_curves.png", curves["evaluations"], flat, title(ctx.cfg))


def title(cfg) -> str:
    return f"{cfg.qd.emitter} on {cfg.problem.task}"


def seed_zero(tree):
    """Seed 0's slice of ``tree`` (leaves ``[S, ...]``) on the host, leaves ``[...]``; a collective (every process)."""
    return jax.tree.map(lambda x: np.asarray(x[0]), first_seed_to_host(tree))


def draw_archive(ctx, repertoire, path, label: str) -> None:
    task = ctx.built.extra["pieces"].task
    names = DESCRIPTOR_NAMES[QD_TASKS[task.name].descriptor]
    plot_archive(path, repertoire.fitnesses, repertoire.centroids, task.minval, task.maxval,
                 f"{title(ctx.cfg)}, seed 0, {label}", names)


def on_chunk(ctx, chunks_done: int, states, eval_returns, checkpointed: bool) -> None:
    """At every checkpoint, seed 0's repertoire as ``archives/chunk_NNN.png`` (gathered on every process, drawn where the
    run writes)."""
    if not checkpointed:
        return
    repertoire = seed_zero(states[0].agent_state.repertoire)  # seed 0 is in the first batch
    if ctx.run_dir is None:
        return
    (ctx.run_dir.path / "archives").mkdir(exist_ok=True)
    draw_archive(ctx, repertoire, ctx.run_dir.path / "archives" / f"chunk_{chunks_done:03d}.png",
                 f"after chunk {chunks_done}")


def distilled_metrics(ctx, state) -> dict:
    """DCG-ME: per-seed metrics of the repertoire the distilled actor fills, conditioned on every centroid."""
    pieces = ctx.built.extra["pieces"]

    def one(s):
        evaluation, repertoire = distillation_scores(s, pieces)
        target = jnp.asarray(pieces.centroids)
        error = jnp.linalg.norm(pieces.task.normalize(evaluation.descriptor) - pieces.task.normalize(target), axis=-1)
        return qd_metrics(repertoire, pieces.task.fitness_offset), jnp.mean(error)

    metrics, error = jax.jit(jax.vmap(one))(state.agent_state)
    return {**{k: np.asarray(v) for k, v in metrics._asdict().items()}, "descriptor_error": np.asarray(error)}


def summary(ctx, history: dict, state) -> dict:
    cfg, pieces = ctx.cfg, ctx.built.extra["pieces"]
    final = {name: history[name][-1].reshape(-1) for name in CURVE_METRICS}  # the last iteration's, per member [M]
    out = {"task": cfg.problem.task, "emitter": cfg.qd.emitter, "archive": cfg.qd.archive, "cells": cfg.qd.cells,
           "fitness_offset": pieces.task.fitness_offset, "episode_length": pieces.task.episode_length,
           "batch": pieces.split._asdict(), "evaluations_per_seed": int(np.asarray(state.agent_state.evaluations)[0]),
           "resolved": {k: getattr(resolved(cfg.qd), k) for k in ("critic_steps", "pg_steps", "critic_batch_size")}}
    for name in CURVE_METRICS:
        out[name] = float(np.mean(final[name]))
        out[f"{name}_per_seed"] = [float(x) for x in final[name]]
    if cfg.qd.emitter == "dcg_me":
        distilled = distilled_metrics(ctx, state)
        for name in ("qd_score", "coverage", "max_fitness", "descriptor_error"):
            out[f"distilled_{name}"] = float(np.mean(distilled[name]))
            out[f"distilled_{name}_per_seed"] = [float(x) for x in distilled[name]]
        out["distilled_qd_score_fraction"] = float(np.mean(distilled["qd_score"] / np.maximum(final["qd_score"], 1e-9)))
    return out


def artifacts(ctx, state) -> None:
    repertoire = seed_zero(state.agent_state.repertoire)  # every process takes part in the gather
    if ctx.run_dir is not None:
        draw_archive(ctx, repertoire, ctx.run_dir.path / "archive.png", "final")


def select_policy(run, agent_state, cell: int | None = None, descriptor=None, distilled=None):
    """An elite or the distilled policy of one member's state (``load_policy``'s ``cell`` / ``descriptor`` /
    ``distilled``): the elite in cell ``cell``, the elite of the cell ``descriptor`` falls in, or DCG-ME's actor
    conditioned on ``distilled`` (task units)."""
    given = [name for name, value in (("cell", cell), ("descriptor", descriptor), ("distilled", distilled))
             if value is not None]
    if len(given) != 1:
        raise ValueError(f"give one of cell, descriptor, distilled (got {', '.join(given) or 'none'})")
    pieces = run.extra["pieces"]
    repertoire = agent_state.repertoire
    if distilled is not None:
        if run.config.qd.emitter != "dcg_me":
            raise ValueError(f"distilled: only a dcg_me run has a distilled policy; this run's emitter is "
                             f"{run.config.qd.emitter}")
        return distilled_policy(agent_state, pieces.task, jnp.asarray(distilled, jnp.float32).reshape(-1))
    num_cells = repertoire.fitnesses.shape[0]
    if descriptor is not None:
        d = jnp.asarray(descriptor, jnp.float32).reshape(1, -1)
        if d.shape[1] != pieces.task.descriptor_dim:
            raise ValueError(f"descriptor: {pieces.task.name} has {pieces.task.descriptor_dim}-D descriptors, got {d.shape[1]}")
        cell = int(cell_indices(d, repertoire.centroids)[0])
    if not 0 <= int(cell) < num_cells:
        raise ValueError(f"cell must be in [0, {num_cells}), got {cell}")
    if not np.isfinite(float(repertoire.fitnesses[cell])):
        raise ValueError(f"cell {cell} is empty")
    return jax.tree.map(lambda x: x[cell], repertoire.genotypes)


def report(s: dict, cfg) -> str:
    per_seed = ", ".join(f"{x:.1f}" for x in s["qd_score_per_seed"])
    distilled = (f" | distilled QD-score {s['distilled_qd_score']:.1f} ({100 * s['distilled_qd_score_fraction']:.0f}%)"
                 if "distilled_qd_score" in s else "")
    return (f"QD-score {s['qd_score']:.1f} (per seed: {per_seed}) | coverage {s['coverage']:.1f}% | max fitness "
            f"{s['max_fitness']:.2f}{distilled} | {s['iterations_per_second']:.2f} iterations/s | "
            f"compile {s['compile_seconds']:.1f}s{' (cache)' if s.get('compile_from_cache') else ''} | run dir {cfg.run.out_dir}")


def default_out_dir(cfg) -> str:
    return f"runs/qd_{cfg.qd.emitter}_{cfg.problem.task}"


PROGRAM = program_from_module(
    __name__, name="qd", description="Quality-diversity search (MAP-Elites, PGA-ME, DCG-ME): the whole loop in one "
    "compiled program.", step_name="iteration", curve_metrics=CURVE_METRICS,
    guard_metrics=None, run_defaults={"num_chunks": 10, "eval_episodes": 4})
qd, resolve, run, main = entries(PROGRAM)
