"""QARL against RARL, the other temperature baselines and no adversary: nominal, worst-case-adversary and
held-out-physics returns (Reddi et al. 2024, the comparison of their Figures 3-5 on this library's tasks).

Every (task, method) is one ``experiments/adversarial.py`` run from the task's preset
(``configs/adversarial_{cartpole,pendulum}_cpu.yaml``), seeds vmapped in one program, in its own process; a
run whose ``summary.json`` exists is read, not rerun (add methods or tasks to a results folder later). Per seed
the scores are the protagonist's greedy return without an adversary (nominal), against a worst-case SAC adversary
trained from scratch against it (as long as the training), and on the held-out physics levels (their mean).
Tables give IQM and mean with 95% stratified-bootstrap intervals and the probability that QARL's seed beats the
other method's (``jaxrl.evaluation``), per task.

Usage::

    python benchmarks/adversarial_robustness.py --out benchmarks/results/adversarial_cpu
    python benchmarks/adversarial_robustness.py --out /tmp/smoke --tasks cartpole --methods qarl,none \\
        --extra=--total-timesteps=2000,--worst-case-steps=1000,--num-seeds=2
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_common import machine_info, run_experiment_once  # noqa: E402

TASKS = {"cartpole": "configs/adversarial_cartpole_cpu.yaml", "pendulum": "configs/adversarial_pendulum_cpu.yaml",
         "hopper": "configs/adversarial_hopper_cpu.yaml"}
METHODS = ("qarl", "rarl", "none", "fixed_temperature", "linear_schedule")
SCORES = ("nominal_returns", "worst_case_returns", "held_out_returns")


def run_one(out: Path, task: str, method: str, extra: list[str]) -> dict:
    run_dir = out / "runs" / f"{task}_{method}"
    result = run_experiment_once("adversarial.py", ["--config", str(ROOT / TASKS[task]), "--method", method, *extra],
                                 run_dir, f"{task} {method}")
    last = json.loads((run_dir / "metrics.jsonl").read_text().strip().splitlines()[-1])  # mean over seeds
    result["final_adversary_alpha"] = last.get("adversary_alpha")
    return result


def adversary_temperature(method: str, s: dict) -> str:
    """The adversary's entropy temperature at the end: the curriculum's mean (qarl, linear_schedule), the constant
    (fixed_temperature), SAC's learned temperature (rarl), none without an adversary."""
    if method == "none":
        return "-"
    if method == "rarl":
        return f"{s['final_adversary_alpha']:.4f} (learned)"
    return f"{np.mean(s['final_mean_temperature']):.4f}" if method != "fixed_temperature" else "fixed"


def statistics(results: dict) -> dict:
    """Per task, method and score: IQM and mean [point, low, high]; per task and score: P(QARL > method)."""
    import jax
    from jaxrl.evaluation import interval_estimate, iqm_and_mean, probability_of_improvement

    table = {}
    for task, by_method in results.items():
        table[task] = {}
        for method, s in by_method.items():
            table[task][method] = {name: iqm_and_mean(np.asarray(s[name])[:, None]) for name in SCORES}
        if "qarl" in by_method:
            for method, s in by_method.items():
                if method == "qarl":
                    continue
                for name in SCORES:
                    est = interval_estimate(jax.random.PRNGKey(0), probability_of_improvement,
                                            np.asarray(by_method["qarl"][name])[:, None], np.asarray(s[name])[:, None])
                    table[task][method][f"p_qarl_better_{name}"] = [float(est.point), float(est.low), float(est.high)]
    return table


def markdown(results: dict, table: dict, machine: dict) -> str:
    def fmt(x):
        return f"{x[0]:.1f} [{x[1]:.1f}, {x[2]:.1f}]"

    lines = [f"Machine: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} cores, CPU only.", ""]
    for task, by_method in table.items():
        any_run = next(iter(results[task].values()))
        lines += [f"### {any_run['env']} ({any_run['num_seeds']} seeds, {any_run['env_steps_per_seed']:,} steps, "
                  f"worst-case adversary {any_run['worst_case_steps']:,} steps)", "",
                  "| method | nominal IQM | worst-case IQM | held-out IQM | P(QARL better): nominal / worst / held-out | adversary temperature at the end |",
                  "|---|---|---|---|---|---|"]
        for method, row in by_method.items():
            p = " / ".join(f"{row[f'p_qarl_better_{n}'][0]:.2f}" for n in SCORES) if f"p_qarl_better_{SCORES[0]}" in row else "-"
            temperature = adversary_temperature(method, results[task][method])
            lines.append(f"| {method} | {fmt(row['nominal_returns']['iqm'])} | {fmt(row['worst_case_returns']['iqm'])} | "
                         f"{fmt(row['held_out_returns']['iqm'])} | {p} | {temperature} |")
        lines.append("")
    return "\n".join(lines)


def figure(path: Path, table: dict, results: dict) -> None:
    """One row per task, one panel per score: each method's IQM and its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(table)
    fig, axes = plt.subplots(len(tasks), len(SCORES), figsize=(4 * len(SCORES), 2.6 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        methods = list(table[task])
        for j, name in enumerate(SCORES):
            ax = axes[i, j]
            iqm = np.asarray([table[task][m][name]["iqm"] for m in methods])
            ax.errorbar(iqm[:, 0], np.arange(len(methods)), xerr=[iqm[:, 0] - iqm[:, 1], iqm[:, 2] - iqm[:, 0]],
                        fmt="o", capsize=3)
            ax.set_yticks(np.arange(len(methods)), methods)
            ax.set_title(f"{next(iter(results[task].values()))['env']}: {name.replace('_returns', '')}", fontsize=9)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default="qarl,rarl,none",
                        help="methods to run where missing; methods already run in --out are reported too")
    parser.add_argument("--extra", default="", help="comma-separated flags added to every run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [f for f in args.extra.split(",") if f]
    extra = [part for flag in extra for part in flag.split("=", 1)]
    results = {}
    for task in args.tasks.split(","):
        # the methods asked for (run where missing), and every other method already run in this folder
        asked = args.methods.split(",")
        done = [m for m in METHODS if (out / "runs" / f"{task}_{m}" / "summary.json").is_file()]
        results[task] = {m: run_one(out, task, m, extra) for m in METHODS if m in asked or m in done}
    table = statistics(results)
    machine = machine_info()
    kept = {t: {m: {k: s[k] for k in (*SCORES, "held_out_levels", "final_mean_temperature", "final_adversary_alpha", "env", "num_seeds",
                                       "env_steps_per_seed", "worst_case_steps", "run_seconds", "compile_seconds")}
                for m, s in by_m.items()} for t, by_m in results.items()}
    (out / "results.json").write_text(json.dumps({"machine": machine, "runs": kept, "statistics": table}, indent=1))
    (out / "results.md").write_text(markdown(results, table, machine))
    figure(out / "robustness.png", table, results)
    print(markdown(results, table, machine))


if __name__ == "__main__":
    main()
