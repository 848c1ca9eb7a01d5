"""Scaling on one accelerator: PPO CartPole-v1 at 1 to 4096 seeds in one program, and ES population scaling.

PPO rows use the classic reference hyperparameters (4 envs, 128-step
rollouts, 4 epochs x 4 minibatches, 64-64 tanh, lr 2.5e-4 annealed) and
500k env steps per seed, driven exactly as ``benchmarks/ppo_throughput.py``
drives them (its worker: AOT compile timed apart, ``--num-chunks`` chunks,
in-chunk evaluation off). ES rows are OpenAI-ES on CartPole-v1 with the
4-16-2 tanh policy, one 500-step episode per individual (the worker of
``benchmarks/evolution_throughput.py``). Every row runs in a fresh subprocess,
so its device memory peak (``peak_bytes_in_use`` of the device allocator,
reported by GPU backends; absent on CPU) and its host RSS are its own.

The goal this script checks: 1024 seeds of PPO CartPole (500k steps each)
in under 60 s of training time (``run s``) on one H100-class GPU.

Usage::

    python benchmarks/gpu_scaling.py                                   # the full table (a GPU)
    python benchmarks/gpu_scaling.py --seeds 1,4 --total-timesteps 20000 --populations 64 --generations 4 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import sys

from bench_common import RESULTS, loadavg, machine_info, run_worker


def device_memory() -> dict:
    """Peak and current bytes of the first device's allocator, in MiB (empty where the backend reports none)."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    out = {}
    for key in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit"):
        if key in stats:
            out[key.replace("bytes", "mib")] = stats[key] / 2**20
    return out


def worker(kind: str, size: int, steps: int, num_chunks: int) -> dict:
    import jax

    if kind == "ppo":
        from ppo_throughput import worker_jax

        result = worker_jax(size, steps, num_chunks, 0, 0)
    else:
        from evolution_throughput import worker as es_worker

        result = es_worker("openai_es", size, steps, 1, 500, num_chunks, 1)
    result.update(kind=kind, size=size, device=str(jax.local_devices()[0].device_kind),
                  backend=jax.default_backend(), device_memory=device_memory())
    result.pop("state", None)
    return result


def _row(r: dict) -> str:
    mem = r["device_memory"].get("peak_mib_in_use")
    mem_text = f"{mem:,.0f}" if mem is not None else "-"
    if r["kind"] == "ppo":
        return (f"| PPO | {r['size']} seeds | {r['total_env_steps']:,} | {r['env_steps_per_second']:,.0f} | "
                f"{r['run_seconds']:.1f} | {r['compile_seconds']:.1f} | {mem_text} | {r['final_train_return_mean']:.1f} |")
    return (f"| OpenAI-ES | population {r['size']} | {r['generations'] * r['env_steps_per_generation']:,} | "
            f"{r['env_steps_per_second']:,.0f} | {r['run_seconds']:.1f} | {r['compile_seconds']:.1f} | {mem_text} | "
            f"{r['final_population_return_mean']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", default="1,4,16,64,256,1024,4096", help="PPO seed counts ('' for none)")
    parser.add_argument("--total-timesteps", type=int, default=500_000, help="PPO env steps per seed")
    parser.add_argument("--populations", default="64,256,1024,4096,16384", help="OpenAI-ES population sizes ('' for none)")
    parser.add_argument("--generations", type=int, default=20, help="ES generations per row")
    parser.add_argument("--num-chunks", type=int, default=4)
    parser.add_argument("--worker-timeout", type=float, default=1800.0)
    parser.add_argument("--out-name", default="gpu_scaling")
    args = parser.parse_args()
    if args.worker:
        kind, size, steps, chunks = args.worker
        print("RESULT " + json.dumps(worker(kind, int(size), int(steps), int(chunks))))
        return

    machine = machine_info()
    load_before = loadavg()
    configs = [("ppo", int(s), args.total_timesteps) for s in filter(None, args.seeds.split(","))]
    configs += [("es", int(p), args.generations) for p in filter(None, args.populations.split(","))]
    rows = []
    for kind, size, steps in configs:
        print(f"{kind} {size} ...", flush=True)
        r = run_worker(__file__, [kind, str(size), str(steps), str(args.num_chunks)], timeout=args.worker_timeout)
        print("  " + _row(r), flush=True)
        rows.append(r)
    command = "python benchmarks/gpu_scaling.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(
        {"machine": machine, "command": command.strip(), "load_before": load_before, "load_after": loadavg(),
         "rows": rows}, indent=2, default=str) + "\n")
    device = rows[0]["device"] if rows else "?"
    lines = [
        f"# Scaling on one device ({device}, backend {rows[0]['backend'] if rows else '?'})",
        "",
        f"- date: {machine['date']}; git commit: {machine['git_commit']}; jax {machine['versions']['jax']}",
        f"- host: {machine['cpu_model']}, {machine['cpus_usable']} usable cores",
        f"- command: `{command.strip()}`",
        "- PPO: classic CartPole-v1 hyperparameters, seeds vmapped in one program; ES: OpenAI-ES, 4-16-2 tanh, "
        "one 500-step episode per individual. run s excludes compilation; device memory = allocator peak.",
        "",
        "| run | members | env steps | env steps/s | run s | compile s | device peak MiB | final return (PPO: training; ES: population mean) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *[_row(r) for r in rows],
    ]
    (RESULTS / f"{args.out_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
