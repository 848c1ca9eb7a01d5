"""Which run defaults are fastest across the presets: XLA:CPU pool size, chunk count, in-chunk evaluation.

Runs ``experiments/train.py --config configs/<preset>.yaml`` as a user does
(the preset's seeds and settings, a shorter ``--total-timesteps`` per preset so
the study fits in minutes; per-step cost does not depend on run length), each
variant in a fresh process, the compile cache off, and reads compile seconds
and env steps/s from the run's ``summary.json`` (its run seconds include
evaluation, metrics and checkpoints, as a user's do). Variants, each changing
one default:

* ``--cpu-threads 1`` against XLA's default pool (one thread per core);
* ``--num-chunks 4`` and ``--num-chunks 100`` against the default 20;
* ``--eval-episodes 1`` against the default 16 (the cost of in-chunk evaluation).

Every ratio is to the same preset's all-defaults row of the same repeat
(round-robin, so both see the same phase of the machine's load); the
summary row is the geometric mean over presets. Results go to
``results/<out-name>.md`` and ``.json``.

Usage::

    python benchmarks/defaults_study.py                    # the committed results
    python benchmarks/defaults_study.py --presets ppo_cartpole --variants threads1 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import RESULTS, loadavg, machine_info

ROOT = Path(__file__).resolve().parent.parent
# preset -> env steps per seed for the study (shorter than the preset's own run; learning_starts kept below it)
PRESETS = {
    "ppo_cartpole": 100_000,
    "pqn_cartpole": 100_000,
    "dqn_cartpole": 30_000,
    "ppo_pendulum": 100_000,
    "sac_pendulum": 2_000,
    "ppo_breakout_minatar": 200_000,
}
VARIANTS = {
    "defaults": [],
    "threads1": ["--cpu-threads", "1"],
    "chunks4": ["--num-chunks", "4"],
    "chunks100": ["--num-chunks", "100"],
    "eval1": ["--eval-episodes", "1"],
}


def run_train(preset: str, steps: int, extra: list[str], seed: int) -> dict:
    """One train.py run in a fresh process; its summary.json figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, str(ROOT / "experiments" / "train.py"), "--config", str(ROOT / "configs" / f"{preset}.yaml"),
               "--total-timesteps", str(steps), "--seed", str(seed), "--out-dir", str(out), "--compile-cache", "off", "--quiet", *extra]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{preset} {' '.join(extra)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        summary = json.loads((out / "summary.json").read_text())
    return {"env_steps_per_second": summary["env_steps_per_second"], "compile_seconds": summary["compile_seconds"],
            "run_seconds": summary["run_seconds"], "wall_seconds": wall, "num_seeds": summary["num_seeds"],
            "cpu_intra_op_threads": summary.get("cpu_intra_op_threads"), "final_return_mean": summary["final_return_mean"]}


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated presets from: {', '.join(PRESETS)}")
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "defaults"),
                   help=f"comma-separated variants from: {', '.join(v for v in VARIANTS if v != 'defaults')}")
    p.add_argument("--repeats", type=int, default=1, help="round-robin repeats; ratios are per repeat, the table shows their median")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-name", default="defaults_study_cpu")
    args = p.parse_args()
    presets = [x for x in args.presets.split(",") if x]
    variants = ["defaults"] + [x for x in args.variants.split(",") if x]
    bad = [x for x in presets if x not in PRESETS] + [x for x in variants if x not in VARIANTS]
    if bad:
        p.error(f"unknown preset or variant: {', '.join(bad)}")

    info = machine_info()
    load_before = loadavg()
    print(f"machine: {info['cpu_model']}, {info['cpu_count']} cores; load {load_before}", flush=True)
    results: dict = {(pr, v): [] for pr in presets for v in variants}
    for repeat in range(args.repeats):
        for preset in presets:
            for variant in variants:
                r = run_train(preset, PRESETS[preset], VARIANTS[variant], args.seed)
                r["load_end"] = loadavg()
                results[(preset, variant)].append(r)
                print(f"{preset} {variant}: {r['env_steps_per_second']:,.0f} env steps/s, compile {r['compile_seconds']:.1f}s, "
                      f"run {r['run_seconds']:.1f}s, load {r['load_end']}", flush=True)

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])

    ratios = {(pr, v): median([r["env_steps_per_second"] / d["env_steps_per_second"]
                               for r, d in zip(results[(pr, v)], results[(pr, "defaults")])]) for pr in presets for v in variants}
    lines = [
        "# Run defaults across presets (train.py as a user runs it, CPU)",
        "",
        f"- date: {info['date']}; git commit: {info['git_commit']}",
        f"- machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['cpus_usable']} usable), {info['memory_gib']} GiB RAM",
        f"- versions: jax {info['versions']['jax']}, flax {info['versions']['flax']}, gymnax {info['versions']['gymnax']}",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {loadavg()[0]:.2f}; repeats: {args.repeats} (round-robin)",
        f"- command: `python benchmarks/defaults_study.py{''.join(' ' + a for a in sys.argv[1:])}`",
        "- each run: `experiments/train.py --config configs/<preset>.yaml --total-timesteps T --compile-cache off --quiet [variant]`, "
        "the preset's own seeds; env steps/s and compile s from its summary.json (run seconds include evaluation, metrics and checkpoints).",
        "- ratio: env steps/s of the variant / the same preset's all-defaults run in the same repeat (> 1: the variant is faster).",
        "",
        "| preset | seeds | steps per seed | defaults env steps/s | compile s | " + " | ".join(f"{v}" for v in variants[1:]) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * (len(variants) - 1),
    ]
    for pr in presets:
        d = results[(pr, "defaults")][0]
        cells = " | ".join(f"{ratios[(pr, v)]:.2f}x" for v in variants[1:])
        lines.append(f"| {pr} | {d['num_seeds']} | {PRESETS[pr]:,} | {median([r['env_steps_per_second'] for r in results[(pr, 'defaults')]]):,.0f} | "
                     f"{d['compile_seconds']:.1f} | {cells} |")
    lines.append("| **geometric mean** | | | | | " + " | ".join(f"**{geomean([ratios[(pr, v)] for pr in presets]):.2f}x**" for v in variants[1:]) + " |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.md").write_text(text)
    payload = {"machine": info, "presets": {pr: PRESETS[pr] for pr in presets}, "variants": {v: VARIANTS[v] for v in variants},
               "runs": [{"preset": pr, "variant": v, "repeats": results[(pr, v)], "ratio_to_defaults": ratios[(pr, v)]}
                        for pr in presets for v in variants]}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS / (args.out_name + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
