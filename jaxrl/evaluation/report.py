"""From run directories to a comparison report: tables, CSVs and figures with intervals.

Runs are grouped by method and environment. A run directory contributes one
group per grid point (sweeps), and several directories of the same method and
environment pool their seeds. The final evaluation return of each seed is its
score; scores are normalised per environment with the score table
(:mod:`jaxrl.evaluation.scores`), then aggregated across environments with
the estimators of :mod:`jaxrl.evaluation.stats` and stratified bootstrap
intervals.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from jaxrl.evaluation import stats
from jaxrl.evaluation.scores import load_score_table
from jaxrl.training.sweep import expand_grid, grid_label

REPORT_FILES = (
    "report.md",
    "aggregates.csv",
    "per_task.csv",
    "probability_of_improvement.csv",
    "performance_profile.csv",
    "sample_efficiency.csv",
    "aggregates.png",
    "performance_profile.png",
    "probability_of_improvement.png",
    "sample_efficiency.png",
)
AGGREGATE_LABELS = {"median": "Median", "iqm": "IQM", "mean": "Mean", "optimality_gap": "Optimality gap"}


class ReportError(Exception):
    """A user mistake (bad run directory, missing normalisation scores); the message says what to do."""


@dataclasses.dataclass
class RunGroup:
    """The runs of one method on one environment.

    Attributes:
        scores: ``[R]`` final evaluation return per run (NaN: the run diverged).
        curve_steps: per contributing directory, ``[C]`` env steps per seed at each evaluation.
        curves: per contributing directory, ``[C, S]`` mean evaluation return per seed.
        solve_rates: the scores and curves are a held-out level's solve rates (curriculum runs).
    """

    method: str
    env: str
    scores: np.ndarray
    curve_steps: list
    curves: list
    sources: list
    solve_rates: bool = False  # scores are held-out solve rates of a curriculum run (already in [0, 1])


def method_label(config: dict, run_dir: Path, method_from: str) -> str:
    """The method name of a run: its algorithm (and policy objective when not PPO's clip),
    or its directory name."""
    if method_from == "dirname":
        return run_dir.name
    label = str(config.get("algo", "?"))
    objective = config.get("objective")
    if objective and objective != "ppo_clip":
        label += f"+{objective}"
    return label


def load_groups(run_dirs, method_from: str = "config", labels: dict | None = None, log=print) -> list[RunGroup]:
    """Reads ``config.yaml``, ``summary.json`` and ``curves.npz`` of each run directory.

    Args:
        run_dirs: paths of training run directories.
        method_from: ``config`` (algorithm [+objective]) or ``dirname``.
        labels: optional ``{run_dir: method name}`` overrides.
    """
    labels = {str(Path(k)): v for k, v in (labels or {}).items()}
    groups: dict[tuple, RunGroup] = {}
    for raw in run_dirs:
        path = Path(raw)
        missing = [f for f in ("config.yaml", "summary.json", "curves.npz") if not (path / f).is_file()]
        if missing:
            raise ReportError(f"{raw}: not a finished run directory (missing {', '.join(missing)})")
        config = yaml.safe_load((path / "config.yaml").read_text())
        summary = json.loads((path / "summary.json").read_text())
        curves = np.load(path / "curves.npz")
        if summary.get("status") != "completed":
            log(f"note: {raw} has status {summary.get('status')!r}; its final scores are used as they are")
        label = labels.get(str(path))
        if "held_out_solve_rates" in summary:  # a curriculum run (experiments/ued.py)
            found = _level_groups(path, config, summary, curves, label, method_from)
        else:
            found = _training_groups(path, config, summary, curves, label, method_from)
        for group in found:
            merged = groups.setdefault((group.method, group.env), dataclasses.replace(group, scores=np.zeros(0), curve_steps=[],
                                                                                     curves=[], sources=[]))
            merged.scores = np.concatenate([merged.scores, group.scores])
            merged.curve_steps += group.curve_steps
            merged.curves += group.curves
            merged.sources += group.sources
    return list(groups.values())


def _training_groups(path: Path, config: dict, summary: dict, curves, label: str | None, method_from: str) -> list[RunGroup]:
    """One group per grid point of a training run; a seed's score is its final evaluation return."""
    grid = expand_grid(config.get("sweep") or {})
    num_seeds = int(summary["num_seeds"])
    finals = np.asarray(summary["final_returns"], np.float64).reshape(len(grid), num_seeds)
    eval_means = np.asarray(curves["eval_returns"], np.float64).mean(-1)  # [C, G, S]
    steps = np.asarray(curves["eval_env_steps"], np.float64)
    base = label or method_label(config, path, method_from)
    return [RunGroup(base if len(grid) == 1 else f"{base} [{grid_label(point)}]", config["env"], finals[g], [steps],
                     [eval_means[:, g, :]], [str(path)]) for g, point in enumerate(grid)]


def _level_groups(path: Path, config: dict, summary: dict, curves, label: str | None, method_from: str) -> list[RunGroup]:
    """One group per held-out level of a curriculum run: ``env`` is ``<env>/<level>`` and a seed's
    score is its final solve rate of that level (a fraction in [0, 1]); the curves are the solve
    rates after each chunk."""
    from jaxrl.envs.levels.spaces import LEVEL_SPACES

    method = label or (path.name if method_from == "dirname" else str(config["method"]))
    solved = LEVEL_SPACES[config["env"]].solved_return
    solve = (np.asarray(curves["eval_returns"], np.float64) > solved).mean(-1)  # [C, S, L] or [C, G, S, L]
    if solve.ndim == 4:  # written by the ued program: grid points and seeds as one run axis
        solve = solve.reshape(solve.shape[0], -1, solve.shape[-1])
    steps = np.asarray(curves["eval_env_steps"], np.float64)
    return [RunGroup(method, level_task(config["env"], name), np.asarray(rates, np.float64), [steps], [solve[:, :, j]], [str(path)], solve_rates=True)
            for j, (name, rates) in enumerate(summary["held_out_solve_rates"].items())]


def level_task(env: str, level: str) -> str:
    """The report's task name of one held-out level of a curriculum run."""
    return f"{env}/{level}"


def solve_rate_refs(groups) -> dict:
    """Score-table rows for held-out-level tasks: a solve rate is already a normalised score (0 never, 1 always)."""
    from jaxrl.evaluation.scores import ScoreRef

    return {g.env: ScoreRef(0.0, 1.0, "solve rate") for g in groups if g.solve_rates}


def choose_normalisation(envs, mode: str, table: dict) -> bool:
    """Whether scores are normalised; raises :class:`ReportError` when they must be and cannot."""
    missing = [e for e in envs if e not in table]
    if mode == "none":
        return False
    if mode == "table" or len(envs) > 1:
        if missing:
            raise ReportError(
                f"--normalize: no random/reference score for {', '.join(missing)}; add rows to a CSV "
                "(columns env,random,reference,source) passed with --score-table, or pass --normalize none"
            )
        return True
    return not missing  # auto, one environment: normalise when the table knows it


def score_matrix(groups: list[RunGroup], methods: list[str], envs: list[str], normalise: bool, table: dict, log=print):
    """``{method: [R, T]}`` of (normalised) final scores; diverged runs dropped, each method
    cut to its smallest run count across environments (the estimators need a matrix)."""
    by_key = {(g.method, g.env): g for g in groups}
    matrices = {}
    for method in methods:
        columns = []
        for env in envs:
            scores = by_key[(method, env)].scores
            finite = scores[np.isfinite(scores)]
            if finite.size < scores.size:
                log(f"note: {method} on {env}: {scores.size - finite.size} diverged run(s) left out")
            if finite.size == 0:
                raise ReportError(f"{method} on {env}: every run diverged; nothing to aggregate")
            columns.append(_normalise(finite, env, normalise, table))
        runs = min(c.size for c in columns)
        if any(c.size > runs for c in columns):
            log(f"note: {method}: run counts differ across environments; the first {runs} of each are aggregated")
        matrices[method] = np.stack([c[:runs] for c in columns], axis=1)
    return matrices


def _normalise(values, env, normalise: bool, table: dict):
    if not normalise:
        return np.asarray(values, np.float64)
    ref = table[env]
    return stats.normalize_scores(values, ref.random, ref.reference)


def sample_efficiency(groups, methods, envs, normalise, table, num_points: int = 50):
    """``{method: (steps [K], scores [R, T, K])}``: evaluation curves on one grid of env steps.

    Curves of a method's environments may have different evaluation points and
    lengths: each run is linearly interpolated onto ``num_points`` points from the
    latest first evaluation to the earliest last evaluation over that method's runs.
    """
    by_key = {(g.method, g.env): g for g in groups}
    out = {}
    for method in methods:
        runs_per_env = []
        lo, hi = -np.inf, np.inf
        for env in envs:
            g = by_key[(method, env)]
            for steps in g.curve_steps:
                lo, hi = max(lo, steps[0]), min(hi, steps[-1])
        grid = np.linspace(lo, hi, num_points) if hi > lo else np.array([hi])
        for env in envs:
            g = by_key[(method, env)]
            curves = [np.interp(grid, steps, curve[:, s]) for steps, curve in zip(g.curve_steps, g.curves) for s in range(curve.shape[1])]
            curves = [c for c in curves if np.all(np.isfinite(c))]
            runs_per_env.append(_normalise(np.stack(curves), env, normalise, table))
        runs = min(c.shape[0] for c in runs_per_env)
        out[method] = (grid, np.stack([c[:runs] for c in runs_per_env], axis=1))
    return out


def _fmt(est: stats.Interval, i=None) -> str:
    p, lo, hi = (np.ravel(x)[i] if i is not None else float(x) for x in est)
    return f"{p:.3f} [{lo:.3f}, {hi:.3f}]"


def write_report(run_dirs, out_dir, method_from: str = "config", labels: dict | None = None, normalize: str = "auto",
                 score_tables=(), reps: int = 2000, confidence: float = 0.95, seed: int = 0, log=print) -> dict:
    """Computes every statistic and writes ``REPORT_FILES`` into ``out_dir``.

    Returns:
        ``{"methods", "envs", "normalised", "aggregates": {method: {metric: (point, low, high)}}}``.
    """
    from jaxrl.io import plots  # matplotlib only when drawing

    groups = load_groups(run_dirs, method_from, labels, log)
    table = load_score_table(*score_tables)
    methods = sorted({g.method for g in groups})
    table.update(solve_rate_refs(groups))
    all_envs = sorted({g.env for g in groups})
    present = {(g.method, g.env) for g in groups}
    envs = [e for e in all_envs if all((m, e) in present for m in methods)]
    if len(envs) < len(all_envs):
        log(f"note: aggregates use the environments every method ran ({', '.join(envs) or 'none'}); "
            f"{', '.join(e for e in all_envs if e not in envs)} appear in the per-environment table only")
    if not envs:
        raise ReportError("no environment is shared by every method; compare runs on common environments")
    normalise = choose_normalisation(envs, normalize, table)
    matrices = score_matrix(groups, methods, envs, normalise, table, log)
    key = jax.random.PRNGKey(seed)
    kw = dict(reps=reps, confidence=confidence)

    aggregates = {m: stats.interval_estimate(jax.random.fold_in(key, i), stats.all_aggregates, matrices[m], **kw) for i, m in enumerate(methods)}
    if not normalise:  # the optimality gap's threshold 1 only means something for normalised scores
        for est in aggregates.values():
            for arr in est:
                arr[3] = np.nan
    pairs = list(itertools.permutations(methods, 2))
    poi = {(x, y): stats.interval_estimate(jax.random.fold_in(key, 1000 + i), stats.probability_of_improvement, matrices[x], matrices[y], **kw)
           for i, (x, y) in enumerate(pairs)}
    pooled = np.concatenate([x.ravel() for x in matrices.values()])
    taus = np.linspace(min(0.0, pooled.min()) if normalise else pooled.min(), max(1.0, pooled.max()) if normalise else pooled.max(), 81)
    profiles = {m: stats.interval_estimate(jax.random.fold_in(key, 2000 + i), lambda s: stats.score_distribution(s, taus), matrices[m], **kw)
                for i, m in enumerate(methods)}
    curves = sample_efficiency(groups, methods, envs, normalise, table)
    iqm_over_time = jax.vmap(stats.aggregate_iqm, in_axes=2)
    efficiency = {m: (steps, stats.interval_estimate(jax.random.fold_in(key, 3000 + i), iqm_over_time, x, **kw))
                  for i, (m, (steps, x)) in enumerate(curves.items())}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric_names = list(stats.AGGREGATES)
    with open(out / "aggregates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "metric", "estimate", "ci_low", "ci_high", "num_runs", "num_envs", "normalised"])
        for m in methods:
            for i, name in enumerate(metric_names):
                est = aggregates[m]
                w.writerow([m, name, est.point[i], est.low[i], est.high[i], matrices[m].shape[0], len(envs), normalise])
    per_task_rows = _per_task_rows(groups, table)
    with open(out / "per_task.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(per_task_rows[0]))
        w.writeheader()
        w.writerows(per_task_rows)
    with open(out / "probability_of_improvement.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method_x", "method_y", "p_x_better", "ci_low", "ci_high"])
        for (x, y), est in poi.items():
            w.writerow([x, y, float(est.point), float(est.low), float(est.high)])
    with open(out / "performance_profile.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "tau", "fraction_above", "ci_low", "ci_high"])
        for m, est in profiles.items():
            for j, tau in enumerate(taus):
                w.writerow([m, tau, est.point[j], est.low[j], est.high[j]])
    with open(out / "sample_efficiency.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "env_steps", "iqm", "ci_low", "ci_high"])
        for m, (steps, est) in efficiency.items():
            for j, step in enumerate(steps):
                w.writerow([m, step, est.point[j], est.low[j], est.high[j]])

    score_name = "normalised score" if normalise else "return"
    plots.plot_aggregate_intervals(out / "aggregates.png", methods, [AGGREGATE_LABELS[n] for n in metric_names],
                                   {m: aggregates[m] for m in methods}, score_name)
    plots.plot_performance_profiles(out / "performance_profile.png", taus, profiles, score_name)
    plots.plot_probability_of_improvement(out / "probability_of_improvement.png", poi)
    plots.plot_sample_efficiency(out / "sample_efficiency.png", efficiency, f"IQM {score_name}")

    conf = f"{100 * confidence:g}%"
    lines = [
        "# Comparison report",
        "",
        f"- runs: {', '.join(str(r) for r in run_dirs)}",
        f"- methods: {', '.join(methods)}; environments aggregated: {', '.join(envs)}",
        f"- scores: final evaluation return per seed{' (held-out solve rate per seed for curriculum runs)' if any(g.solve_rates for g in groups) else ''}, {'normalised per environment with the score table ((return - random) / (reference - random))' if normalise else 'raw returns (not normalised)'}",
        *(["- curriculum runs: each held-out level is a task (`<env>/<level>`) and a seed's score is its solve rate of "
           "that level (the fraction of evaluation episodes solved), a normalised score as it is"]
          if any(g.solve_rates for g in groups) else []),
        f"- intervals: {conf} percentile intervals of a stratified bootstrap over runs ({reps} replications, key {seed})",
        "",
        f"## Aggregates ({score_name})",
        "",
        "| method | runs x envs | " + " | ".join(AGGREGATE_LABELS[n] for n in metric_names) + " |",
        "|---|---:|" + "---:|" * len(metric_names),
    ]
    for m in methods:
        r, t = matrices[m].shape
        cells = [_fmt(aggregates[m], i) if np.isfinite(aggregates[m].point[i]) else "n/a" for i in range(len(metric_names))]
        lines.append(f"| {m} | {r} x {t} | " + " | ".join(cells) + " |")
    lines += ["", "Optimality gap: 1 - mean(min(score, 1)); lower is better." if normalise else
              "Optimality gap needs normalised scores (n/a for raw returns).", "", "![aggregates](aggregates.png)", ""]
    if pairs:
        lines += ["## Probability of improvement", "", "P(X > Y): chance a run of X beats a run of Y on the same environment.", "",
                  "| X | Y | P(X > Y) |", "|---|---|---:|"]
        lines += [f"| {x} | {y} | {_fmt(est)} |" for (x, y), est in poi.items()]
        lines += ["", "![probability of improvement](probability_of_improvement.png)", ""]
    lines += ["## Per environment (raw scores)", "", "| method | env | runs | mean | median | IQM | min | max | normalised mean |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in per_task_rows:
        nm = f"{row['normalised_mean']:.3f}" if np.isfinite(row["normalised_mean"]) else "-"
        lines.append(f"| {row['method']} | {row['env']} | {row['runs']} | {row['mean']:.2f} | {row['median']:.2f} | "
                     f"{row['iqm']:.2f} | {row['min']:.2f} | {row['max']:.2f} | {nm} |")
    lines += ["", "## Performance profiles", "", "![performance profiles](performance_profile.png)", "",
              "## Sample efficiency", "", f"IQM of the evaluation {score_name} over training, with {conf} bands.", "",
              "![sample efficiency](sample_efficiency.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    return {
        "methods": methods,
        "envs": envs,
        "normalised": normalise,
        "aggregates": {m: {n: tuple(float(a[i]) for a in aggregates[m]) for i, n in enumerate(metric_names)} for m in methods},
        "probability_of_improvement": {f"{x} > {y}": tuple(float(a) for a in est) for (x, y), est in poi.items()},
    }


def _per_task_rows(groups, table):
    rows = []
    for g in sorted(groups, key=lambda g: (g.method, g.env)):
        finite = g.scores[np.isfinite(g.scores)]
        ref = table.get(g.env)
        rows.append({
            "method": g.method,
            "env": g.env,
            "runs": int(finite.size),
            "diverged": int(g.scores.size - finite.size),
            "mean": float(finite.mean()) if finite.size else float("nan"),
            "std": float(finite.std()) if finite.size else float("nan"),
            "median": float(np.median(finite)) if finite.size else float("nan"),
            "iqm": float(stats.aggregate_iqm(jnp.asarray(finite)[:, None])) if finite.size else float("nan"),
            "min": float(finite.min()) if finite.size else float("nan"),
            "max": float(finite.max()) if finite.size else float("nan"),
            "normalised_mean": float(stats.normalize_scores(finite, ref.random, ref.reference).mean()) if ref and finite.size else float("nan"),
            "sources": ";".join(g.sources),
        })
    return rows
