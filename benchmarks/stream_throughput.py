"""Streaming-agent throughput: jaxrl's stream Q(lambda) / AC(lambda) at 1, 64 and 1024 vmapped seeds, side by side with
the reference PyTorch code (github.com/mohmdelsayed/streaming-drl) on the same machine in the same invocation.

jaxrl runs the presets (``configs/stream_q_minatar.yaml``, ``stream_ac_minatar.yaml``: the paper's conv network;
``stream_ac_pendulum.yaml``: two 128-unit layers) as :mod:`jaxrl.programs.driver` drives them (members mapped with
``map_members``, AOT compile timed apart, in-chunk evaluation off), each configuration in a fresh process; env steps/s
counts every seed's steps. The reference runs its own scripts unmodified (``reference/streaming_drl_runner.py``,
``--reference-python`` an interpreter with torch, gymnasium 0.29 and MinAtar; ``--reference-dir`` a checkout): one
process is one seed, so its rows are one process (torch with 1 thread) and as many concurrent processes as the
machine has cores (their summed rate: the most seeds/s this machine gives the reference).

Usage::

    python benchmarks/stream_throughput.py --reference-python /path/venv/bin/python --reference-dir /path/streaming-drl
    python benchmarks/stream_throughput.py --seeds 1,64 --out-name smoke      # jaxrl only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_common import RESULTS, loadavg, machine_info, peak_rss_mib, run_worker, time_jaxrl_chunks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (algo, env, preset, reference script, reference env id)
CASES = {
    "stream_q_minatar": ("stream_q", "Breakout-MinAtar", "stream_q_minatar.yaml", "stream_q_minatar.py", "MinAtar/Breakout-v1"),
    "stream_ac_minatar": ("stream_ac", "Breakout-MinAtar", "stream_ac_minatar.yaml", "stream_ac_discrete_minatar.py",
                          "MinAtar/Breakout-v1"),
    "stream_ac_pendulum": ("stream_ac", "Pendulum-v1", "stream_ac_pendulum.yaml", "stream_ac_continuous.py", "Pendulum-v1"),
}
RUN_KEYS = ("algo", "env", "total_timesteps", "num_seeds")


def steps_per_seed(seeds: int, total: int) -> int:
    """Env steps per seed so that a run takes about ``total`` env steps in all (at least 64 per seed)."""
    return max(64, total // seeds)


def worker_jaxrl(case: str, seeds: int, total: int) -> dict:
    from jaxrl.runtime import size_cpu_thread_pool  # before anything starts JAX, as experiments/train.py does

    size_cpu_thread_pool(0)
    import yaml

    from jaxrl import envs
    from jaxrl.agents import ALGORITHMS
    from jaxrl.threefry import unroll_threefry_on_cpu
    from jaxrl.training.loop import make_runner
    from jaxrl.training.sweep import member_batch

    unroll_threefry_on_cpu()
    algo, env_name, preset, _, _ = CASES[case]
    values = yaml.safe_load((ROOT / "configs" / preset).read_text())
    spec = ALGORITHMS[algo]
    values["log_interval"] = 1  # a row of metrics per step (the presets' 1000 exceeds a 1024-seed run's steps)
    cfg = spec.config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k not in RUN_KEYS})
    env = envs.make(env_name)
    steps = steps_per_seed(seeds, total)
    agent = spec.make_agent(cfg, env, steps, 1, True)
    runner = make_runner(agent, env.default_params, 2, evaluate_each_chunk=False)
    keys, hparams = member_batch(spec.make_hparams(cfg), [{}], seeds, 0)
    load_start = loadavg()
    rss = {}
    timed = time_jaxrl_chunks(runner, keys, hparams, on_compiled=lambda: rss.setdefault("compiled", peak_rss_mib()))
    return {"implementation": "jaxrl", "case": case, "seeds": seeds, "env_steps_per_seed": steps,
            "compile_seconds": timed["compile_seconds"], "run_seconds": timed["run_seconds"],
            "env_steps_per_second": steps * seeds / timed["run_seconds"], "peak_rss_mib": peak_rss_mib(),
            "load_start": load_start, "load_end": loadavg()}


def run_reference(args, case: str, processes: int) -> dict:
    """``processes`` concurrent reference runs of ``case`` (one seed each); their summed env steps/s."""
    _, _, _, script, env_id = CASES[case]
    cmd = [args.reference_python, str(HERE / "reference" / "streaming_drl_runner.py"), "--reference-dir",
           args.reference_dir, "--script", script, "--env", env_id, "--steps", str(args.reference_steps),
           "--torch-threads", "1"]
    print("  $", " ".join(cmd[1:]), f"x{processes}", flush=True)
    procs = [subprocess.Popen(cmd + ["--seed", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"reference run failed:\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1][len("RESULT "):]))
    return {"implementation": "reference (PyTorch)", "case": case, "seeds": processes, "processes": processes,
            "env_steps_per_seed": args.reference_steps,
            "env_steps_per_second": sum(r["env_steps_per_second"] for r in results),
            "per_process": [round(r["env_steps_per_second"], 1) for r in results], "torch": results[0]["torch"],
            "gymnasium": results[0]["gymnasium"]}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Streaming-agent throughput ({m.get('cpu_model', 'cpu')}, {m.get('cpu_count')} cores, "
             f"jax {m['versions'].get('jax')})", "", f"`{result['command']}`", "",
             "| case | implementation | seeds | env steps/s (all seeds) | vs reference, same seeds | compile s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    reference = {(r["case"], r["seeds"]): r for r in result["rows"] if r["implementation"] != "jaxrl"}
    best_reference = {}
    for r in reference.values():
        best_reference[r["case"]] = max(best_reference.get(r["case"], 0.0), r["env_steps_per_second"])
    for r in result["rows"]:
        if r["implementation"] == "jaxrl":
            ref = reference.get((r["case"], r["seeds"]))
            base = ref["env_steps_per_second"] if ref else best_reference.get(r["case"])
            ratio = f"{r['env_steps_per_second'] / base:.1f}x" if base else "-"
            if base and not ref:
                ratio += " (vs the reference's best)"
            lines.append(f"| {r['case']} | jaxrl | {r['seeds']} | {r['env_steps_per_second']:,.0f} | {ratio} | "
                         f"{r['compile_seconds']:.1f} | {r['peak_rss_mib']:.0f} |")
        else:
            lines.append(f"| {r['case']} | reference, {r['processes']} process(es) | {r['seeds']} | "
                         f"{r['env_steps_per_second']:,.0f} | 1.0x | - | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "SEEDS", "TOTAL"), help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", default="1,64,1024")
    parser.add_argument("--total-steps", type=int, default=100_000, help="env steps per jaxrl run, all seeds together")
    parser.add_argument("--reference-python", default="")
    parser.add_argument("--reference-dir", default="")
    parser.add_argument("--reference-steps", type=int, default=5000, help="env steps per reference process")
    parser.add_argument("--out-name", default="stream_throughput_cpu")
    args = parser.parse_args()
    if args.worker:
        case, seeds, total = args.worker
        print("RESULT " + json.dumps(worker_jaxrl(case, int(seeds), int(total))))
        return
    rows = []
    for case in args.cases.split(","):
        if args.reference_python:
            for processes in sorted({1, len(os.sched_getaffinity(0))}):
                rows.append(run_reference(args, case, processes))
                print(json.dumps(rows[-1]), flush=True)
        for seeds in (int(s) for s in args.seeds.split(",")):
            rows.append(run_worker(__file__, [case, str(seeds), str(args.total_steps)]))
            print(json.dumps(rows[-1]), flush=True)
    result = {"machine": machine_info(), "command": " ".join(sys.argv), "rows": rows}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{args.out_name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
