"""Evolution throughput on CPU: generations/s and env steps/s of whole compiled generations.

One generation = ask, evaluate the whole population by rollouts (``--episodes``
episodes of a fixed ``--episode-len`` steps per individual, a ``lax.scan``
vmapped over population and episodes), tell. Env steps count every step the
program computes: ``population x episodes x episode_len`` per generation
(CartPole episodes that end early are still stepped to the scan's end, auto-reset).
The policy is the 4-16-2 tanh network of the CartPole presets.

Each (strategy, population) runs in a fresh subprocess (helpers in
``bench_common.py``), driven as :mod:`jaxrl.programs.driver` drives a run:
AOT compile timed separately, ``--num-chunks`` chunks of the shared training
loop, in-chunk evaluation off.

Usage::

    python benchmarks/evolution_throughput.py                  # the committed results
    python benchmarks/evolution_throughput.py --populations 64 --generations 5 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import sys

from bench_common import RESULTS, loadavg, machine_info, peak_rss_mib, run_worker, time_jaxrl_chunks


def worker(strategy: str, population: int, generations: int, episodes: int, episode_len: int, num_chunks: int,
           num_seeds: int) -> dict:
    load_start = loadavg()
    import jax

    from jaxrl import envs
    from jaxrl.evolution.search import EvolutionConfig, make_evolution
    from jaxrl.training.loop import make_runner

    env = envs.make("CartPole-v1")
    cfg = EvolutionConfig(strategy=strategy, population=population, episodes=episodes, episode_len=episode_len,
                          hidden_sizes=(16,), sigma=0.1 if strategy == "openai_es" else 0.05)
    agent = make_evolution(cfg, env, generations, eval_episodes=1)
    runner = make_runner(agent, env.default_params, num_chunks, evaluate_each_chunk=False)
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    timed = time_jaxrl_chunks(runner, keys, ())
    pop = timed["metrics"][-1]["population_returns"]
    seconds = timed["run_seconds"]
    steps = generations * agent.env_steps_per_update * num_seeds
    return {"strategy": strategy, "population": population, "num_seeds": num_seeds, "generations": generations,
            "episodes": episodes, "episode_len": episode_len, "env_steps_per_generation": agent.env_steps_per_update,
            "generations_per_second": generations / seconds, "env_steps_per_second": steps / seconds,
            "compile_seconds": timed["compile_seconds"], "run_seconds": seconds, "chunk_seconds": timed["chunk_seconds"],
            "final_population_return_mean": float(pop.mean()), "peak_rss_mib": peak_rss_mib(),
            "load_start": load_start, "load_end": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategies", default="openai_es,ga")
    parser.add_argument("--populations", default="64,256,1024")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--episode-len", type=int, default=500)
    parser.add_argument("--num-chunks", type=int, default=2)
    parser.add_argument("--num-seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="round-robin repeats; each row keeps its fastest")
    parser.add_argument("--out-name", default="evolution_throughput_cpu")
    args, rest = parser.parse_known_args()
    if args.worker:
        strategy, population, generations, episodes, episode_len, num_chunks, num_seeds = rest
        result = worker(strategy, int(population), int(generations), int(episodes), int(episode_len), int(num_chunks),
                        int(num_seeds))
        print("RESULT " + json.dumps(result))
        return

    machine = machine_info()
    load_before = loadavg()
    configs = [(s, int(p)) for s in args.strategies.split(",") for p in args.populations.split(",")]
    runs: dict = {c: [] for c in configs}
    for _ in range(args.repeats):
        for strategy, population in configs:
            runs[(strategy, population)].append(run_worker(__file__, [
                strategy, str(population), str(args.generations), str(args.episodes), str(args.episode_len),
                str(args.num_chunks), str(args.num_seeds)]))
    rows = []
    for (strategy, population), repeats in runs.items():
        best = max(repeats, key=lambda r: r["generations_per_second"])
        best["repeats_env_steps_per_second"] = [round(r["env_steps_per_second"]) for r in repeats]
        rows.append(best)
    load_after = loadavg()
    command = "python benchmarks/evolution_throughput.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(
        {"machine": machine, "command": command.strip(), "load_before": load_before, "load_after": load_after,
         "rows": rows}, indent=2) + "\n")
    v = machine["versions"]
    lines = [
        "# Evolution throughput: whole generations on CartPole-v1 (CPU)",
        "",
        f"- date: {machine['date']}; git commit: {machine['git_commit']}",
        f"- machine: {machine['cpu_model']}, {machine['cpus_usable']} usable cores, {machine['memory_gib']} GiB RAM; {machine['platform']}",
        f"- versions: python {machine['python']}, jax {v['jax']} (jaxlib {v['jaxlib']}), flax {v['flax']}, gymnax {v['gymnax']}",
        f"- load average before / after: {load_before} / {load_after} (the machine is shared: other jobs ran alongside)",
        f"- command: `{command.strip()}`",
        f"- one generation: ask, {args.episodes} episode(s) of {args.episode_len} steps per individual "
        "(a scan vmapped over population and episodes), tell; policy 4-16-2 tanh (114 parameters); "
        f"{args.num_seeds} seed(s); {args.generations} generations in {args.num_chunks} compiled chunks; compile timed separately.",
        "- env steps: population x episodes x episode_len per generation (every step the program computes).",
        f"- repeats: {args.repeats} (round-robin); each row shows its fastest repeat.",
        "",
        "| strategy | population | generations/s | env steps/s | env steps/generation | compile s | peak RSS MiB | env steps/s of each repeat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['population']} | {r['generations_per_second']:.2f} | {r['env_steps_per_second']:,.0f} | "
                     f"{r['env_steps_per_generation']:,} | {r['compile_seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{', '.join(f'{x:,}' for x in r['repeats_env_steps_per_second'])} |")
    (RESULTS / f"{args.out_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
