"""Where the time of one jaxrl SAC iteration goes (Pendulum-v1, one seed, CPU).

At the settings of ``configs/sac_pendulum.yaml`` (one env, one learner step on
256 transitions per env step, 100k buffer), four compiled ``lax.scan`` loops
of ``--iterations`` iterations each are timed, built from jaxrl's own pieces
(the closures that :func:`jaxrl.agents.sac.make_sac` hands to
:func:`jaxrl.training.off_policy.make_off_policy_agent`, captured as they are
passed, and :mod:`jaxrl.buffers`):

(a) env collection only: :func:`~jaxrl.training.rollout.collect_rollout` of one
    vectorised step with SAC's behaviour policy (actor forward, squashed
    Gaussian sample, Pendulum step, auto-reset);
(b) replay add + sample only: :func:`~jaxrl.buffers.add` of that step's
    transition and :func:`~jaxrl.buffers.sample` of 256 distinct transitions;
(c) one learner step only: SAC's ``learn_step`` (critic, actor and
    temperature updates, Polyak target update) on a fixed batch;
(d) the full iteration: ``run_chunk`` of :func:`jaxrl.training.loop.make_runner`
    (what the training driver runs: ``agent.update`` = collection, add, the
    ``lax.cond`` learning gate, sample, learner step, metrics), in the
    learning phase.

Each is AOT-compiled (compile time reported apart) and run once, then all
four are timed round-robin ``--repeats`` times; the fastest repeat is
reported (the least disturbed by other jobs on a shared machine), with the
median beside it. The buffer holds
``--buffer-fill`` transitions collected by the untrained actor, so (b), (c)
and (d) sample from a buffer as filled midway through the preset's run.
One seed runs un-vmapped (as :func:`jaxrl.training.loop.map_members` runs it);
Threefry is lowered without its loop as the training driver does.

Usage::

    python benchmarks/sac_time_breakdown.py                  # benchmarks/results/sac_time_breakdown.md and .json
    python benchmarks/sac_time_breakdown.py --iterations 200 --repeats 2 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench_common import RESULTS, loadavg, machine_info, peak_rss_mib

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs" / "sac_pendulum.yaml"


def load_preset():
    import yaml

    raw = yaml.safe_load(PRESET.read_text())
    run = {k: raw.pop(k) for k in ("algo", "env", "total_timesteps", "num_seeds")}
    raw["hidden_sizes"] = tuple(raw["hidden_sizes"])
    return run, raw


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=1000, help="iterations (= env steps) per timed scan")
    p.add_argument("--repeats", type=int, default=3, help="timed calls of each scan; the fastest is reported")
    p.add_argument("--buffer-fill", type=int, default=5000, help="transitions in the replay buffer while timing")
    p.add_argument("--cpu-threads", type=int, default=0, help="XLA:CPU pool size (0: XLA's default, one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-name", default="sac_time_breakdown", help="benchmarks/results/<name>.md and .json")
    args = p.parse_args()
    command = "python benchmarks/sac_time_breakdown.py" + "".join(f" {a}" for a in sys.argv[1:])
    load_before = loadavg()

    from jaxrl.runtime import size_cpu_thread_pool  # before anything starts JAX

    size_cpu_thread_pool(args.cpu_threads)
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxrl.agents.sac as sac_module
    from jaxrl import envs
    from jaxrl.buffers import add, init_buffer, sample
    from jaxrl.runtime import intra_op_pool_threads
    from jaxrl.threefry import unroll_threefry_on_cpu
    from jaxrl.training.loop import RunnerState, make_runner
    from jaxrl.training.off_policy import example_item, rollout_items
    from jaxrl.training.rollout import collect_rollout

    unroll_threefry_on_cpu()  # as the training driver does
    run, options = load_preset()
    assert run["algo"] == "sac"
    cfg = sac_module.SACConfig(**options)
    env = envs.make(run["env"])
    env_params = env.default_params
    hp = sac_module.sac_hparams(cfg)
    if cfg.steps_per_update != 1 or cfg.num_envs != 1:
        raise SystemExit("the breakdown assumes one env step per iteration (num_envs 1, steps_per_update 1)")
    if args.buffer_fill < max(cfg.batch_size, cfg.learning_starts):
        raise SystemExit(f"--buffer-fill must be at least batch_size and learning_starts ({max(cfg.batch_size, cfg.learning_starts)})")

    # The agent's own closures, captured as make_sac passes them to the shared off-policy loop.
    pieces = {}
    original = sac_module.make_off_policy_agent

    def capture(cfg_, env_, total_, **kwargs):
        pieces.update(kwargs)
        return original(cfg_, env_, total_, **kwargs)

    sac_module.make_off_policy_agent = capture
    try:
        agent = sac_module.make_sac(cfg, env, run["total_timesteps"], 1, True)
    finally:
        sac_module.make_off_policy_agent = original
    behaviour, learn_step = pieces["behaviour"], pieces["learn_step"]
    vec_env = agent.env
    n = args.iterations

    # ---- a state in the learning phase: the buffer filled by the untrained actor, update_step = buffer_fill.
    key = jax.random.PRNGKey(args.seed)
    key, key_init, key_fill = jax.random.split(key, 3)
    state = agent.init(key_init, hp)

    @jax.jit
    def fill(state, key):
        def body(carry, k):
            env_state, obs, buffer = carry
            env_state, obs, traj, _ = collect_rollout(
                k, lambda o: behaviour(state.params, o, jnp.int32(0), hp), vec_env, env_params, env_state, obs, 1)
            return (env_state, obs, add(buffer, rollout_items(traj))), None

        (env_state, obs, buffer), _ = jax.lax.scan(body, (state.env_state, state.obs, state.buffer), jax.random.split(key, args.buffer_fill))
        return state._replace(env_state=env_state, obs=obs, buffer=buffer,
                              update_step=jnp.int32(args.buffer_fill // agent.env_steps_per_update))

    state = jax.block_until_ready(fill(state, key_fill))
    steps_now = jnp.int32(args.buffer_fill)
    one_item = jax.tree.map(lambda x: x[None], example_item(env, env_params))  # [1, ...], what one iteration adds
    key, key_batch = jax.random.split(key)
    fixed_batch = sample(key_batch, state.buffer, cfg.batch_size)

    # ---- the four scans, every input an argument (hparams traced, as in training); each returns something that
    # depends on all its work (nothing dead-code eliminated).
    def part_env(hp, params, env_state, obs, keys):
        def body(c, k):
            env_state, obs = c
            env_state, obs, traj, _ = collect_rollout(
                k, lambda o: behaviour(params, o, steps_now, hp), vec_env, env_params, env_state, obs, 1)
            return (env_state, obs), traj.reward.sum()

        return jax.lax.scan(body, (env_state, obs), keys)

    def part_replay(hp, buffer, item, keys):
        def body(buffer, k):
            buffer = add(buffer, item)
            batch = sample(k, buffer, cfg.batch_size)
            return buffer, sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(batch))

        return jax.lax.scan(body, buffer, keys)

    def part_learner(hp, params, opt_state, batch, keys):
        def body(c, k):
            params, opt_state = c
            params, opt_state, metrics = learn_step(k, params, opt_state, batch, hp)
            return (params, opt_state), metrics["critic_loss"]

        return jax.lax.scan(body, (params, opt_state), keys)

    def part_full(hp, runner_state, first_update):
        return runner.run_chunk(runner_state, hp, first_update)

    runner = make_runner(agent, env_params, max(1, agent.num_updates // n), evaluate_each_chunk=False)
    if runner.chunk_len != n or state.update_step + n > agent.num_updates:
        raise SystemExit(f"--iterations {n} must divide the preset's {agent.num_updates} updates and fit after --buffer-fill")

    parts = {
        "a": ("env collection step only (collect_rollout: actor forward, sample, Pendulum step)", part_env,
              lambda k: (state.params, state.env_state, state.obs, jax.random.split(k, n))),
        "b": ("replay add + sample only (add 1 transition, sample 256 distinct)", part_replay,
              lambda k: (state.buffer, one_item, jax.random.split(k, n))),
        "c": ("one learner step only (critic + actor + temperature updates, target Polyak)", part_learner,
              lambda k: (state.params, state.opt_state, fixed_batch, jax.random.split(k, n))),
        "d": ("full iteration (run_chunk: agent.update = collect, add, learning gate, sample, learner step, metrics)", part_full,
              lambda k: (RunnerState(state, k), np.int32(int(state.update_step)))),
    }
    compiled, timings = {}, {}
    for name, (label, fn, make_args) in parts.items():
        key, key_part = jax.random.split(key)
        call_args = (hp, *make_args(key_part))
        t = time.perf_counter()
        compiled[name] = (jax.jit(fn).lower(*call_args).compile(), call_args)
        jax.block_until_ready(compiled[name][0](*call_args))  # once untimed (first-call allocations)
        timings[name] = {"compile_seconds": time.perf_counter() - t, "seconds": []}
    for _ in range(args.repeats):  # round-robin, so every part sees every phase of the machine's load
        for name, (fn, call_args) in compiled.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*call_args))
            timings[name]["seconds"].append(time.perf_counter() - t)
    results = {}
    for name, (label, _, _) in parts.items():
        seconds = timings[name]["seconds"]
        results[name] = {
            "part": label,
            "us_per_env_step": min(seconds) / n * 1e6,
            "median_us_per_env_step": statistics.median(seconds) / n * 1e6,
            "repeat_seconds": [round(s, 4) for s in seconds],
            "compile_seconds": round(timings[name]["compile_seconds"], 2),
        }
        print(f"({name}) {results[name]['us_per_env_step']:8.1f} us/env step  (median {results[name]['median_us_per_env_step']:.1f})  {label}", flush=True)

    parts_sum = sum(results[k]["us_per_env_step"] for k in "abc")
    info = machine_info()
    settings = {"preset": str(PRESET.relative_to(ROOT)), "config": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
                "iterations": n, "repeats": args.repeats, "buffer_fill": args.buffer_fill, "cpu_threads": args.cpu_threads,
                "cpu_intra_op_threads": intra_op_pool_threads(), "backend": jax.default_backend(), "seed": args.seed,
                "load_before": load_before, "load_after": loadavg(), "peak_rss_mib": round(peak_rss_mib(), 1)}
    v = info["versions"]
    lines = [
        "# Where the time of a jaxrl SAC iteration goes: Pendulum-v1, one seed (CPU)",
        "",
        f"- date: {info['date']}; git commit: {info['git_commit']}",
        f"- machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['cpus_usable']} usable), {info['memory_gib']} GiB RAM; {info['platform']}",
        f"- versions: python {info['python']}, jax {v['jax']} (jaxlib {v['jaxlib']}), flax {v['flax']}, optax {v['optax']}, gymnax {v['gymnax']}",
        f"- load average (1, 5, 15 min) before / after: {settings['load_before']} / {settings['load_after']} (the machine is shared: other jobs ran alongside)",
        f"- command: `{command}`",
        f"- settings: `{settings['preset']}` (1 env, 1 learner step per env step on 256 distinct transitions of a 100k buffer, 256-256 ReLU "
        f"actor and twin critics), one seed un-vmapped, XLA:CPU pool of {settings['cpu_intra_op_threads']} threads; buffer holding "
        f"{args.buffer_fill:,} transitions; each part a compiled `lax.scan` of {n:,} iterations (1 env step each), compile excluded; "
        f"fastest of {args.repeats} calls, taken round-robin over the parts (median beside it). See the script's docstring for what each part contains.",
        "",
        "| part | µs per env step | median µs | share of (d) | compile s |",
        "|---|---:|---:|---:|---:|",
    ]
    full = results["d"]["us_per_env_step"]
    for name, r in results.items():
        lines.append(f"| ({name}) {r['part']} | {r['us_per_env_step']:,.1f} | {r['median_us_per_env_step']:,.1f} | "
                     f"{r['us_per_env_step'] / full:.0%} | {r['compile_seconds']:.1f} |")
    lines += [
        f"| (a) + (b) + (c) | {parts_sum:,.1f} | | {parts_sum / full:.0%} | |",
        f"| (d) - [(a) + (b) + (c)]: the rest of the iteration (learning gate, key splits, metrics, scan carry) | {full - parts_sum:,.1f} | | "
        f"{(full - parts_sum) / full:.0%} | |",
        "",
        f"Full iteration: {1e6 / full:,.0f} env steps/s at one seed.",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.md").write_text(text)
    payload = {"command": command, "machine": info, "settings": settings, "parts": results,
               "sum_abc_us_per_env_step": parts_sum, "full_env_steps_per_second": 1e6 / full}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS / (args.out_name + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
