"""QDax's own MAP-Elites pipeline on a QDax brax task, for ``benchmarks/qd_study.py``'s side-by-side.

Run with an interpreter that has ``qdax==0.5.0`` (it imports nothing from jaxrl). It follows QDax's
MAP-Elites example: ``create_default_brax_task_components`` (its brax task, policy MLP with tanh
output and LeCun-uniform weights, deterministic start state, scoring and descriptor extraction),
``MixingEmitter`` with ``isoline_variation``, ``compute_cvt_centroids`` and ``default_qd_metrics`` with
the task's reward offset x episode length. Seeds run one after another, the whole search of a seed
a ``lax.scan`` of ``MAPElites.scan_update`` compiled once (the first seed's compile is timed apart).
Writes JSON: per-seed QD-score and coverage after each iteration, evaluations per second, compile time.
"""
from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import qdax
import qdax.tasks.brax.v2 as qd_brax
from qdax.core.containers.mapelites_repertoire import compute_cvt_centroids
from qdax.core.emitters.mutation_operators import isoline_variation
from qdax.core.emitters.standard_emitters import MixingEmitter
from qdax.core.map_elites import MAPElites
from qdax.tasks.brax.v2.env_creators import create_default_brax_task_components
from qdax.utils.metrics import default_qd_metrics


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="hopper_uni")
    p.add_argument("--episode-length", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--cells", type=int, default=1024)
    p.add_argument("--cvt-samples", type=int, default=50000)
    p.add_argument("--iso-sigma", type=float, default=0.005)
    p.add_argument("--line-sigma", type=float, default=0.05)
    p.add_argument("--hidden-sizes", default="64,64")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    hidden = tuple(int(h) for h in a.hidden_sizes.split(","))

    env, policy_network, scoring_fn = create_default_brax_task_components(
        a.task, jax.random.PRNGKey(0), a.episode_length, hidden, deterministic=True)
    emitter = MixingEmitter(mutation_fn=None, variation_fn=functools.partial(
        isoline_variation, iso_sigma=a.iso_sigma, line_sigma=a.line_sigma), variation_percentage=1.0,
        batch_size=a.batch_size)
    metrics_fn = functools.partial(default_qd_metrics, qd_offset=qd_brax.reward_offset[a.task] * a.episode_length)
    map_elites = MAPElites(scoring_function=scoring_fn, emitter=emitter, metrics_function=metrics_fn)
    centroids = compute_cvt_centroids(env.descriptor_length, a.cvt_samples, a.cells, env.descriptor_limits[0],
                                      env.descriptor_limits[1], jax.random.PRNGKey(0))

    @jax.jit
    def search(key):
        key_init, key_pop, key_run = jax.random.split(key, 3)
        params = jax.vmap(policy_network.init)(jax.random.split(key_pop, a.batch_size),
                                               jnp.zeros((a.batch_size, env.observation_size)))
        repertoire, emitter_state, _ = map_elites.init(params, centroids, key_init)
        _, metrics = jax.lax.scan(map_elites.scan_update, (repertoire, emitter_state, key_run), (), length=a.iterations)
        return metrics

    t = time.perf_counter()
    compiled = search.lower(jax.random.PRNGKey(0)).compile()
    compile_seconds = time.perf_counter() - t
    qd_scores, coverages, t = [], [], time.perf_counter()
    for seed in range(a.seeds):
        metrics = jax.block_until_ready(compiled(jax.random.PRNGKey(seed)))
        qd_scores.append([float(x) for x in metrics["qd_score"]])
        coverages.append([float(x) for x in metrics["coverage"]])
    run_seconds = time.perf_counter() - t
    evaluations = a.batch_size * (a.iterations + 1)  # the initial population, then one batch an iteration
    out = {"version": qdax.__version__, "task": a.task, "seeds": a.seeds, "compile_seconds": compile_seconds,
           "run_seconds": run_seconds, "evaluations_per_second": evaluations * a.seeds / run_seconds,
           "evaluations": [a.batch_size * (i + 2) for i in range(a.iterations)],
           "qd_score": qd_scores, "coverage": coverages}
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"QDax {qdax.__version__} map_elites {a.task}: QD-score {sum(q[-1] for q in qd_scores) / a.seeds:.1f}, "
          f"{out['evaluations_per_second']:.0f} evaluations/s, compile {compile_seconds:.1f} s")


if __name__ == "__main__":
    main()
