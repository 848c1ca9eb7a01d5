"""Curriculum methods on held-out mazes at equal PPO gradient updates and at equal env steps.

Every method runs from its maze preset (``configs/ued_maze_<method>.yaml``: JaxUED's PPO settings)
with the same seeds, level batch and rollout, and is evaluated on the extended held-out set
(``--held-out extended``: the seven hand-designed mazes, 10 perfect mazes of 13 x 13, 10 of
25 x 25 and 10 caves) every ``budget / evals`` DR iterations. The two axes:

* **equal env steps**: each method's evaluation at DR's env-step budget ``B = U * levels * rollout``
  (PAIRED's steps include its antagonist's and adversary's);
* **equal gradient updates**: each seed's first evaluation at which it has made at least ``U``
  PPO gradient updates (robust PLR and ACCEL take none on new and mutated batches, so they run
  longer; the run lengths below are sized from their expected share of gradient steps with a
  margin, and a seed that falls short is reported with its count).

Solve rates are aggregated over seeds x levels with IQM and 95% stratified-bootstrap intervals
(``jaxrl.evaluation``), per held-out group. Runs go to ``--out-dir`` (one per method; a method
whose ``summary.json`` exists is not rerun), the tables to ``--results`` (markdown and JSON).

    python benchmarks/ued_protocol.py --seeds 10 --budget-iterations 80 --evals 8 --policy flags   # the README's CPU table
    python benchmarks/ued_protocol.py --seeds 10 --budget-iterations 30000 --policy published --evals 30   # JaxUED's budget (GPU)
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_common import machine_info  # noqa: E402

# run name -> (preset method, extra ued.py flags). The order is the order they run in.
RUNS = {
    "dr": ("dr", []),
    "robust_plr": ("robust_plr", []),
    "accel": ("accel", []),
    "sfl": ("sfl", []),
    "dred": ("dred", []),
    "dr_dataset": ("dr", ["--generator", "dataset"]),  # DR over DRED's dataset
    "plr": ("plr", []),
    "paired": ("paired", []),
    "dred_edit": ("dred", ["--method", "dred_edit"]),
}
GROUPS = {"hand-designed": "", "perfect 13x13": "PerfectMaze13-", "perfect 25x25": "PerfectMaze25-", "caves": "Cave13-"}


def gradient_share(method: str, replay_prob: float) -> float:
    """Expected fraction of iterations with a gradient step once the buffer is filled (PAIRED: protagonist updates per
    DR-iteration's worth of env steps, about 1 / 2.1 with 32 levels x 256 steps and a 27-step adversary)."""
    if method in ("robust_plr", "dred", "dred_edit"):
        return replay_prob
    if method == "accel":  # replay -> mutate (no step) -> replay w.p. p: stationary share of replays p / (1 + p)
        return replay_prob / (1.0 + replay_prob)
    if method == "paired":
        return 1.0 / 2.11
    return 1.0


def run_length(method: str, preset: dict, budget: int, chunk: int) -> int:
    """Iterations (a multiple of ``chunk``) for ``method`` to reach ``budget`` gradient updates: the budget when every
    iteration learns, else the expected number with a 15% margin."""
    fill = 0
    if method in ("robust_plr", "accel"):
        fill = math.ceil(preset.get("capacity", 4000) * preset.get("min_fill", 0.5) / preset["num_levels"])
    share = gradient_share(method, preset.get("replay_prob", 0.8))
    if share == 1.0 and not fill:
        return budget  # a gradient step every iteration: the budget exactly
    return max(budget, math.ceil(1.15 * (fill + budget / share) / chunk) * chunk)


def load_preset(method: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "configs" / f"ued_maze_{method}.yaml").read_text())


def launch(name: str, args, out: Path) -> None:
    preset_method, extra = RUNS[name]
    method = extra[extra.index("--method") + 1] if "--method" in extra else preset_method
    preset = load_preset(preset_method)
    chunk = args.budget_iterations // args.evals
    per_iteration = preset["num_levels"] * preset["rollout_len"]
    if method == "paired":
        # Its env steps per iteration count all three agents' rollouts: evaluate every chunk * (DR's steps / PAIRED's)
        # iterations so that one evaluation falls near DR's env-step budget.
        per_update = 2 * per_iteration + preset["num_levels"] * (preset["num_walls"] + 2)
        chunk = max(1, round(chunk * per_iteration / per_update))
        per_iteration = per_update
    iterations = run_length(method, preset, args.budget_iterations, chunk)
    steps, chunks = iterations * per_iteration, iterations // chunk
    extra = list(extra)
    if method == "sfl":  # one refresh per evaluation interval, as the reference (EVAL_FREQ updates per refresh)
        extra += ["--sfl-period", str(chunk), *args.sfl]
    argv = [sys.executable, str(ROOT / "experiments" / "ued.py"), "--config", str(ROOT / "configs" / f"ued_maze_{preset_method}.yaml"),
            "--num-seeds", str(args.seeds), "--total-timesteps", str(steps), "--num-chunks", str(chunks),
            "--held-out", "extended", "--eval-episodes", str(args.eval_episodes), "--policy", args.policy,
            "--seed", str(args.seed), "--out-dir", str(out), "--overwrite", "--quiet", *extra, *args.extra]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {iterations} iterations, {steps} env steps per seed, {chunks} evaluations",
          flush=True)
    t = time.perf_counter()
    subprocess.run(argv, check=True)
    (out / "wall_seconds.txt").write_text(f"{time.perf_counter() - t:.1f}\n")


def pick(curves, budget_steps: int, budget_updates: int):
    """Per seed, the evaluation index at equal env steps and at equal gradient updates (and the updates made there)."""
    steps = curves["eval_env_steps"]
    at_steps = int(np.argmin(np.abs(steps - budget_steps)))  # the evaluation nearest the budget (exact but for PAIRED)
    updates = curves["eval_gradient_updates"][:, 0]  # [C, S] (no sweep grid)
    reached = updates >= budget_updates
    at_updates = np.where(reached.any(0), reached.argmax(0), len(steps) - 1)  # [S]
    return at_steps, at_updates, updates[at_updates, np.arange(updates.shape[1])], updates[at_steps]


def solve_rates(curves, index, solved: float = 0.0) -> np.ndarray:
    """``[S, L]`` solve rates at evaluation ``index`` (an int, or ``[S]`` per seed)."""
    returns = curves["eval_returns"][:, 0]  # [C, S, L, E]
    index = np.broadcast_to(np.asarray(index), (returns.shape[1],))
    return (returns[index, np.arange(returns.shape[1])] > solved).mean(-1)


def aggregate(rates: np.ndarray, names: list[str], seed: int = 0) -> dict:
    """IQM / mean with 95% stratified-bootstrap intervals of ``rates [S, L]`` per held-out group."""
    from jaxrl.evaluation import iqm_and_mean

    out = {}
    for group, prefix in GROUPS.items():
        cols = group_columns(names, prefix)
        if cols:
            out[group] = iqm_and_mean(rates[:, cols], seed)
    return out


def fmt(x) -> str:
    return f"{x[0]:.2f} [{x[1]:.2f}, {x[2]:.2f}]"


def report(args, out_root: Path) -> dict:
    dr = np.load(out_root / "dr" / "curves.npz")
    budget_steps = int(dr["eval_env_steps"][args.evals - 1])
    budget_updates = args.budget_iterations
    table = {"budget_env_steps": budget_steps, "budget_gradient_updates": budget_updates, "methods": {}}
    for method in args.methods:
        path = out_root / method / "curves.npz"
        if not path.exists():
            continue
        curves = np.load(path)
        names = [str(n) for n in curves["level_names"]]
        at_steps, at_updates, updates_reached, updates_at_steps = pick(curves, budget_steps, budget_updates)
        metrics = [json.loads(line) for line in (out_root / method / "metrics.jsonl").read_text().splitlines()]
        entry = {
            "equal_steps": aggregate(solve_rates(curves, at_steps), names),
            "equal_updates": aggregate(solve_rates(curves, at_updates), names),
            "env_steps_at_equal_steps": int(curves["eval_env_steps"][at_steps]),
            "gradient_updates_at_equal_steps": [float(u) for u in updates_at_steps],
            "env_steps_at_equal_updates": [int(curves["eval_env_steps"][i]) for i in at_updates],
            "gradient_updates_at_equal_updates": [float(u) for u in updates_reached],
            "wall_seconds": float((out_root / method / "wall_seconds.txt").read_text()) if (out_root / method / "wall_seconds.txt").exists() else None,
            "replayed_share": float(np.mean([m.get("replayed", 0.0) for m in metrics if "replayed" in m] or [0.0])),
            "final_train_solve_rate": float(np.mean(curves["train_solve_rate"][-10:])),
        }
        table["methods"][method] = entry
    return table


def group_columns(names: list[str], prefix: str) -> list[int]:
    """Indices of the levels of a held-out group (``""``: the hand-designed ones)."""
    if prefix:
        return [i for i, n in enumerate(names) if n.startswith(prefix)]
    return [i for i, n in enumerate(names) if not any(n.startswith(p) for p in list(GROUPS.values())[1:])]


def learning_curves(out_root: Path, methods: list[str], path: Path) -> None:
    """Mean held-out solve rate (over seeds and a group's levels) against env steps and against gradient updates."""
    from matplotlib.figure import Figure

    shown = ("hand-designed", "caves")
    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for method in methods:
        file = out_root / method / "curves.npz"
        if not file.exists():
            continue
        curves = np.load(file)
        names = [str(n) for n in curves["level_names"]]
        solved = (curves["eval_returns"][:, 0] > 0).mean(-1)  # [C, S, L]
        for row, group in enumerate(shown):
            y = solved[:, :, group_columns(names, GROUPS[group])].mean(axis=(1, 2))
            axes[row, 0].plot(curves["eval_env_steps"] / 1e6, y, marker=".", label=method)
            axes[row, 1].plot(curves["eval_gradient_updates"][:, 0].mean(-1), y, marker=".", label=method)
            axes[row, 0].set_ylabel(f"{group}: mean solve rate")
    for row in range(len(shown)):
        axes[row, 0].set_xlabel("env steps per seed (M)")
        axes[row, 1].set_xlabel("PPO gradient updates")
    axes[0, 1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def markdown(table: dict, args) -> str:
    lines = [f"# Curriculum methods on held-out mazes: equal env steps and equal gradient updates",
             "", f"Machine: {json.dumps(machine_info())}", "",
             f"Command: `python benchmarks/ued_protocol.py {' '.join(sys.argv[1:])}`", "",
             f"Budget: {table['budget_env_steps']} env steps = {table['budget_gradient_updates']} DR iterations "
             f"(= gradient updates) per seed; {args.seeds} seeds; held-out solve rates over {args.eval_episodes} "
             "stochastic episodes per level; IQM [95% stratified-bootstrap interval] over seeds x levels (mean in "
             "parentheses); gradient updates and env steps: means over seeds at the evaluation used.", ""]
    for axis, title in (("equal_steps", "Equal env steps"), ("equal_updates", "Equal gradient updates")):
        lines += [f"## {title}", "", "| method | " + " | ".join(GROUPS) + " | gradient updates | env steps |",
                  "|---|" + "---:|" * (len(GROUPS) + 2)]
        for method, e in table["methods"].items():
            cells = [f"{fmt(e[axis][g]['iqm'])} ({e[axis][g]['mean'][0]:.2f})" if g in e[axis] else "-" for g in GROUPS]
            if axis == "equal_steps":
                upd, steps = np.mean(e["gradient_updates_at_equal_steps"]), e["env_steps_at_equal_steps"]
            else:
                upd, steps = np.mean(e["gradient_updates_at_equal_updates"]), np.mean(e["env_steps_at_equal_updates"])
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {upd:.0f} | {steps / 1e6:.2f}M |")
        lines.append("")
    lines += ["## Runs", "", "| method | wall s | replayed share | final training solve rate |", "|---|---:|---:|---:|"]
    for method, e in table["methods"].items():
        lines.append(f"| {method} | {e['wall_seconds'] or 0:.0f} | {e['replayed_share']:.2f} | {e['final_train_solve_rate']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(RUNS), help=f"comma-separated runs of {', '.join(RUNS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget-iterations", type=int, default=150, help="DR iterations = the gradient-update budget U")
    parser.add_argument("--evals", type=int, default=10, help="evaluations within the budget (must divide it)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--policy", default="flags", choices=("flags", "published"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/ued_protocol")
    parser.add_argument("--results", default=str(HERE / "results" / "ued_protocol_cpu"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--sfl", default="--sfl-sample-levels=128,--sfl-keep=32,--sfl-episodes=4",
                        help="SFL's sampling flags, comma-separated (default sized for a CPU; the preset's: 1000, 100, 10)")
    parser.add_argument("extra", nargs="*", help="more ued.py flags after --")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.sfl = [f for f in args.sfl.split(",") if f]
    unknown = [m for m in args.methods if m not in RUNS]
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} not among {', '.join(RUNS)}")
    if args.budget_iterations % args.evals:
        parser.error(f"--evals ({args.evals}) must divide --budget-iterations ({args.budget_iterations})")
    out_root = Path(args.out_dir)
    if not args.report_only:
        for method in ["dr"] + [m for m in RUNS if m in args.methods and m != "dr"]:
            if not (out_root / method / "summary.json").exists():
                launch(method, args, out_root / method)
    table = report(args, out_root)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".json").write_text(json.dumps(table, indent=1))
    results.with_suffix(".md").write_text(markdown(table, args))
    learning_curves(out_root, args.methods, results.parent / (results.name + "_curves.png"))
    print(markdown(table, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
