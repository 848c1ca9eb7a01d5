"""Bootstrap intervals: jaxrl's JAX estimator against the reference rliable package, side by side.

    python benchmarks/stats_speed.py            # runs 10, 100, 1000, 10000 x 5 tasks, 2000 replications

For each number of runs (per task) it times the stratified-bootstrap 95% interval of the
four aggregates (median, IQM, mean, optimality gap) with ``jaxrl.evaluation.stats.interval_estimate``
(first call = compile + run, then the steady call) and with ``rliable.library.get_interval_estimates``
on the same scores, and the probability of improvement between two such methods. Writes
``benchmarks/results/stats_speed_cpu.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from bench_common import RESULTS, loadavg, machine_info
from jaxrl.evaluation import stats


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return time.perf_counter() - start, out


def _rliable_aggregates(scores):
    from rliable import metrics

    return np.array([metrics.aggregate_median(scores), metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                     metrics.aggregate_optimality_gap(scores)])


def measure(runs: int, tasks: int, reps: int, rliable_max_runs: int) -> dict:
    from rliable import library, metrics

    rng = np.random.default_rng(runs)
    x, y = rng.gamma(2.0, 0.5, (runs, tasks)), rng.gamma(2.0, 0.45, (runs, tasks))
    row = {"runs": runs, "tasks": tasks, "reps": reps}
    key = jax.random.PRNGKey(0)
    row["jaxrl_aggregates_first_s"], _ = _timed(lambda: stats.interval_estimate(key, stats.all_aggregates, x, reps=reps))
    row["jaxrl_aggregates_s"], ours = _timed(lambda: stats.interval_estimate(jax.random.PRNGKey(1), stats.all_aggregates, x, reps=reps))
    row["jaxrl_poi_first_s"], _ = _timed(lambda: stats.interval_estimate(key, stats.probability_of_improvement, x, y, reps=reps))
    row["jaxrl_poi_s"], _ = _timed(lambda: stats.interval_estimate(jax.random.PRNGKey(1), stats.probability_of_improvement, x, y, reps=reps))
    if runs <= rliable_max_runs:
        np.random.seed(0)
        row["rliable_aggregates_s"], (points, cis) = _timed(lambda: library.get_interval_estimates({"m": x}, _rliable_aggregates, reps=reps))
        row["rliable_poi_s"], _ = _timed(lambda: library.get_interval_estimates({"x,y": [x, y]}, metrics.probability_of_improvement, reps=reps))
        row["aggregates_speedup"] = row["rliable_aggregates_s"] / row["jaxrl_aggregates_s"]
        row["poi_speedup"] = row["rliable_poi_s"] / row["jaxrl_poi_s"]
        width = cis["m"][1] - cis["m"][0]
        row["max_ci_end_difference_over_width"] = float(np.max(np.abs(np.concatenate([ours.low - cis["m"][0], ours.high - cis["m"][1]])) / np.concatenate([width, width])))
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, nargs="+", default=[10, 100, 1000, 10000])
    p.add_argument("--tasks", type=int, default=5)
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--rliable-max-runs", type=int, default=1000, help="skip rliable above this many runs (it takes minutes)")
    args = p.parse_args()
    rows = []
    for runs in args.runs:
        row = measure(runs, args.tasks, args.reps, args.rliable_max_runs)
        print(json.dumps(row), flush=True)
        rows.append(row)
    record = {"machine": machine_info(), "loadavg_end": loadavg(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stats_speed_cpu.json").write_text(json.dumps(record, indent=2))
    lines = [f"Stratified bootstrap, 95% intervals, {args.reps} replications, {args.tasks} tasks. "
             f"Machine: {record['machine']['cpu_model']} ({record['machine']['cpus_usable']} cores), jax {jax.__version__}.", "",
             "| runs per task | jaxrl 4 aggregates (compile+run / run) | rliable 4 aggregates | speed-up | jaxrl P(X>Y) (compile+run / run) | rliable P(X>Y) | speed-up |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rl = lambda k: f"{r[k]:.2f} s" if k in r else "not run"
        sp = lambda k: (f"{r[k]:.0f}x" if r[k] >= 10 else f"{r[k]:.1f}x") if k in r else "-"
        lines.append(f"| {r['runs']} | {r['jaxrl_aggregates_first_s']:.2f} s / {r['jaxrl_aggregates_s']:.3f} s | {rl('rliable_aggregates_s')} | "
                     f"{sp('aggregates_speedup')} | {r['jaxrl_poi_first_s']:.2f} s / {r['jaxrl_poi_s']:.3f} s | {rl('rliable_poi_s')} | {sp('poi_speedup')} |")
    (RESULTS / "stats_speed_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
