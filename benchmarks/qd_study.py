"""MAP-Elites, PGA-ME and DCG-ME at equal evaluations, seeds together, and MAP-Elites beside QDax's own pipeline.

    python benchmarks/qd_study.py --task maze --out benchmarks/results/qd_maze_cpu
    python benchmarks/qd_study.py --task hopper_uni --out benchmarks/results/qd_hopper_uni_cpu \\
        --qdax-python /path/to/venv-with-qdax/bin/python

Each method runs from its preset (``configs/qd_<method>_maze.yaml`` or ``..._hopper_uni_cpu.yaml``; ``--gpu``:
``..._hopper_uni_gpu.yaml``) through ``experiments/qd.py`` (a child process each, without checkpoints so the
time is the search's), every seed in one compiled program. The methods evaluate the same number of
policies per iteration, so equal iterations are equal evaluations. Reported, from ``jaxrl.evaluation``:
the IQM and mean of the final QD-score and coverage over seeds with 95% stratified-bootstrap intervals,
DCG-ME's distilled actor, throughput (evaluations per second) and compile time, and a figure of QD-score and
coverage against evaluations.

``--qdax-python`` names an interpreter with QDax installed (``qdax==0.5.0`` installs beside jax 0.10,
flax 0.12 and brax 0.14; its policy-gradient emitters import brax's removed v1 API, its MAP-Elites does
not): ``benchmarks/reference/qdax_map_elites.py`` then runs QDax's MAP-Elites with its own brax task,
scoring and containers at the same settings, seeds one after another as its examples do, and the
table puts it beside jaxrl's MAP-Elites run of this invocation (QD-score at equal evaluations,
evaluations per second). Completed runs are kept: rerunning the command only reports.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_common import machine_info  # noqa: E402

METHODS = ("map_elites", "pga_me", "dcg_me")
PRESET_SUFFIX = {"maze": "maze", "hopper_uni": "hopper_uni_cpu"}
TASK_NAME = {"maze": "DeceptiveMaze-v0", "hopper_uni": "hopper_uni"}


def preset(method: str, task: str, gpu: bool) -> Path:
    return ROOT / "configs" / f"qd_{method}_{'hopper_uni_gpu' if gpu else PRESET_SUFFIX[task]}.yaml"


def run_method(method: str, args, out: Path) -> None:
    """``experiments/qd.py`` from the method's preset (seeds and iterations as asked); skipped when done."""
    if (out / "summary.json").exists():
        print(f"{method}: done before, kept", flush=True)
        return
    cmd = [sys.executable, str(ROOT / "experiments" / "qd.py"), "--config", str(preset(method, args.task, args.gpu)),
           "--out-dir", str(out), "--checkpoint-every", "0", "--overwrite", "--quiet"]
    if args.seeds:
        cmd += ["--num-seeds", str(args.seeds)]
    if args.iterations:
        cmd += ["--iterations", str(args.iterations)]
    print(" ".join(cmd[1:]), flush=True)
    t = time.time()
    subprocess.run(cmd, check=True)
    print(f"{method}: {time.time() - t:.0f} s", flush=True)


def run_qdax(args, jaxrl_summary: dict, out: Path) -> dict:
    """QDax's MAP-Elites at the settings of jaxrl's MAP-Elites run (read from its ``config.yaml``)."""
    path = out / "qdax_map_elites.json"
    if path.exists():
        return json.loads(path.read_text())
    import yaml

    cfg = yaml.safe_load((out / "map_elites" / "config.yaml").read_text())
    cmd = [args.qdax_python, str(HERE / "reference" / "qdax_map_elites.py"), "--task", jaxrl_summary["task"],
           "--episode-length", str(jaxrl_summary["episode_length"]), "--batch-size", str(cfg["batch_size"]),
           "--iterations", str(cfg["iterations"]), "--seeds", str(cfg["num_seeds"]), "--cells", str(cfg["cells"]),
           "--cvt-samples", str(cfg["cvt_samples"]), "--iso-sigma", str(cfg["iso_sigma"]),
           "--line-sigma", str(cfg["line_sigma"]), "--hidden-sizes", ",".join(str(h) for h in cfg["hidden_sizes"]),
           "--out", str(path)]
    print(" ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(path.read_text())


def method_row(out: Path, seed: int) -> dict:
    from jaxrl.evaluation import iqm_and_mean

    s = json.loads((out / "summary.json").read_text())
    row = {"seeds": s["num_seeds"], "evaluations_per_seed": s["evaluations_per_seed"],
           "evaluations_per_second": s["evaluations_per_seed"] * s["num_seeds"] / s["run_seconds"],
           "compile_seconds": s["compile_seconds"], "run_seconds": s["run_seconds"]}
    for name in ("qd_score", "coverage", "max_fitness"):
        row[name] = iqm_and_mean(np.asarray(s[f"{name}_per_seed"])[:, None], seed)
        row[f"{name}_per_seed"] = s[f"{name}_per_seed"]
    if "distilled_qd_score" in s:
        row["distilled_qd_score"] = iqm_and_mean(np.asarray(s["distilled_qd_score_per_seed"])[:, None], seed)
        row["distilled_coverage"] = iqm_and_mean(np.asarray(s["distilled_coverage_per_seed"])[:, None], seed)
        row["distilled_fraction"] = s["distilled_qd_score_fraction"]
    return row


def mean_curve(values: np.ndarray):
    """Mean over seeds of ``values [N, S]`` at each iteration and its 95% bootstrap interval (``jaxrl.evaluation``)."""
    import jax
    import jax.numpy as jnp

    from jaxrl.evaluation import interval_estimate

    estimate = interval_estimate(jax.random.PRNGKey(0), lambda x: jnp.mean(x, axis=0), np.asarray(values).T)
    return estimate.point, estimate.low, estimate.high


def curves_figure(out: Path, methods: list[str], path: Path, title: str, qdax: dict | None) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for method in methods:
        c = np.load(out / method / "curves.npz")
        for ax, name in zip(axes, ("qd_score", "coverage")):
            mean, low, high = mean_curve(c[name][:, 0])  # [N, S] -> [N]
            (line,) = ax.plot(c["evaluations"], mean, label=method)
            ax.fill_between(c["evaluations"], low, high, alpha=0.25, color=line.get_color())
    if qdax is not None:
        evals = np.asarray(qdax["evaluations"])
        for ax, name in zip(axes, ("qd_score", "coverage")):
            mean, low, high = mean_curve(np.asarray(qdax[name]).T)
            (line,) = ax.plot(evals, mean, label="QDax map_elites", linestyle="--")
            ax.fill_between(evals, low, high, alpha=0.2, color=line.get_color())
    for ax, name in zip(axes, ("QD-score", "coverage (%)")):
        ax.set_title(name)
        ax.set_xlabel("evaluations per seed")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: mean over seeds, 95% stratified-bootstrap interval")
    fig.savefig(path, dpi=110)


def fmt(x) -> str:
    return f"{x[0]:.1f} [{x[1]:.1f}, {x[2]:.1f}]"


def markdown(table: dict) -> str:
    lines = [f"# Quality-diversity on {table['task']} ({table['machine'].get('cpu_model', 'cpu')}, {table['machine'].get('cpu_count')} cores)", "",
             f"Every method: {table['methods'][next(iter(table['methods']))]['seeds']} seeds, "
             f"{table['methods'][next(iter(table['methods']))]['evaluations_per_seed']} evaluations per seed.", "",
             "| method | QD-score IQM [95% CI] | QD-score mean [95% CI] | coverage % IQM [95% CI] | max fitness IQM | "
             "evaluations/s | compile s |", "|---|---|---|---|---|---|---|"]
    for method, r in table["methods"].items():
        lines.append(f"| {method} | {fmt(r['qd_score']['iqm'])} | {fmt(r['qd_score']['mean'])} | {fmt(r['coverage']['iqm'])} | "
                     f"{r['max_fitness']['iqm'][0]:.2f} | {r['evaluations_per_second']:.0f} | {r['compile_seconds']:.1f} |")
    if "dcg_me" in table["methods"] and "distilled_qd_score" in table["methods"]["dcg_me"]:
        r = table["methods"]["dcg_me"]
        lines += ["", f"DCG-ME's distilled actor, conditioned on every centroid: QD-score IQM {fmt(r['distilled_qd_score']['iqm'])}, "
                  f"coverage IQM {fmt(r['distilled_coverage']['iqm'])} %, {100 * r['distilled_fraction']:.0f}% of the "
                  "archive's QD-score (mean over seeds)."]
    if table.get("qdax"):
        q = table["qdax"]
        lines += ["", "| MAP-Elites | QD-score IQM [95% CI] | coverage % IQM [95% CI] | evaluations/s | compile s |",
                  "|---|---|---|---|---|",
                  f"| QDax {q['version']} | {fmt(q['qd_score'])} | {fmt(q['coverage'])} | {q['evaluations_per_second']:.0f} | "
                  f"{q['compile_seconds']:.1f} |"]
        me = table["methods"]["map_elites"]
        lines.append(f"| jaxrl | {fmt(me['qd_score']['iqm'])} | {fmt(me['coverage']['iqm'])} | "
                     f"{me['evaluations_per_second']:.0f} | {me['compile_seconds']:.1f} |")
        lines.append("")
        lines.append(f"jaxrl / QDax throughput: {me['evaluations_per_second'] / q['evaluations_per_second']:.2f}x "
                     "(jaxrl: seeds in one program; QDax: one run per seed, its examples' way).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=tuple(PRESET_SUFFIX), default="maze")
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=0, help="override the presets' seeds (0: keep)")
    parser.add_argument("--iterations", type=int, default=0, help="override the presets' iterations (0: keep)")
    parser.add_argument("--gpu", action="store_true", help="the published-scale GPU presets (hopper_uni)")
    parser.add_argument("--qdax-python", default="", help="interpreter with qdax installed: add QDax's MAP-Elites")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    methods = args.methods.split(",")
    for method in methods:
        run_method(method, args, out / method)
    table = {"task": TASK_NAME[args.task], "machine": machine_info(), "command": " ".join(sys.argv),
             "methods": {m: method_row(out / m, 0) for m in methods}}
    qdax = None
    if args.qdax_python and "map_elites" in methods:
        from jaxrl.evaluation import iqm_and_mean

        me_summary = json.loads((out / "map_elites" / "summary.json").read_text())
        qdax = run_qdax(args, me_summary, out)
        table["qdax"] = {"version": qdax["version"], "evaluations_per_second": qdax["evaluations_per_second"],
                         "compile_seconds": qdax["compile_seconds"],
                         "qd_score": iqm_and_mean(np.asarray(qdax["qd_score"])[:, -1:], 0)["iqm"],
                         "coverage": iqm_and_mean(np.asarray(qdax["coverage"])[:, -1:], 0)["iqm"],
                         "qd_score_per_seed": [float(x) for x in np.asarray(qdax["qd_score"])[:, -1]]}
    (out / "results.json").write_text(json.dumps(table, indent=2))
    (out / "results.md").write_text(markdown(table))
    curves_figure(out, methods, out / "qd_curves.png", TASK_NAME[args.task], qdax)
    print(markdown(table))


if __name__ == "__main__":
    main()
