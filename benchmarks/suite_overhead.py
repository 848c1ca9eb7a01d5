"""Env-only throughput of jaxrl's suite adapters against the suite's own step at equal batch size.

For each environment: ``jit(scan(vmap(step)))`` over ``--steps`` steps of ``--envs`` environments with uniformly
random actions, once through the suite's own API (with its own auto-reset wrapper, the cheapest way the suite
offers to run many episodes) and once through the jaxrl adapter (``jaxrl.envs.make_raw``: terminated / truncated
apart, final observation kept, auto-reset). Both are timed in the same process, alternating (and alternating which
goes first), ``--repeats`` times
after a warm-up; the table gives the median steps per second and the ratio (adapter / suite).

Usage::

    python benchmarks/suite_overhead.py --out benchmarks/results/suite_overhead_cpu
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_common import machine_info  # noqa: E402


def random_action_loop(init, step, steps: int):
    """``jit(key -> total reward)``: ``init(key) -> state``, then ``steps`` times ``step(state, key) -> (state,
    rewards [num_envs])``, the one timed loop every case (the suite's and the adapter's) runs."""
    import jax

    def run(key):
        def body(state, k):
            state, rewards = step(state, k)
            return state, rewards.sum()

        return jax.lax.scan(body, init(key), jax.random.split(key, steps))[1].sum()

    return jax.jit(run)


def xminigrid_native(env_id: str, num_envs: int, steps: int):
    """The suite's own loop: GymAutoResetWrapper(env) (it resets inside step, losing the final observation)."""
    import jax
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(env_id)
    if env_id.startswith("XLand"):  # the adapter's default rule set (an XLand env's own default is empty)
        from jaxrl import envs

        params = params.replace(ruleset=envs.make_raw("xminigrid/" + env_id).default_params.ruleset)
    env = GymAutoResetWrapper(env)
    num_actions = env.num_actions(params)

    def step(timestep, k):
        actions = jax.random.randint(k, (num_envs,), 0, num_actions)
        timestep = jax.vmap(env.step, in_axes=(None, 0, 0))(params, timestep, actions)
        return timestep, timestep.reward

    return random_action_loop(lambda key: jax.vmap(env.reset, in_axes=(None, 0))(params, jax.random.split(key, num_envs)),
                              step, steps)


def jumanji_native(env_id: str, num_envs: int, steps: int):
    """The suite's own loop: AutoResetWrapper(env, next_obs_in_extras=True) (it keeps the final observation in
    ``extras``, but reports the time limit as a termination)."""
    import jax
    import jumanji
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(env_id), next_obs_in_extras=True)
    num_actions = env.action_spec.num_values

    def step(state, k):
        state, timestep = jax.vmap(env.step)(state, jax.random.randint(k, (num_envs,), 0, num_actions))
        return state, timestep.reward

    return random_action_loop(lambda key: jax.vmap(env.reset)(jax.random.split(key, num_envs))[0], step, steps)


def playground_native(task: str, num_envs: int, steps: int):
    """The suite's own loop: ``wrap_for_brax_training`` (brax's episode, auto-reset and vmap wrappers: the time
    limit folded into ``done``, and every episode restarting from the state its env was first reset to)."""
    import jax
    from mujoco_playground._src.wrapper import wrap_for_brax_training

    from jaxrl.envs.suites.playground import PlaygroundEnv

    ours = PlaygroundEnv(task)  # its Playground env: registry.load would clone menagerie for a locomotion task
    env = wrap_for_brax_training(ours._env, episode_length=ours.episode_length, action_repeat=ours.action_repeat)

    def step(state, k):
        state = env.step(state, jax.random.uniform(k, (num_envs, env.action_size), minval=-1.0, maxval=1.0))
        return state, state.reward

    return random_action_loop(lambda key: env.reset(jax.random.split(key, num_envs)), step, steps)


def craftax_native(env_id: str, num_envs: int, steps: int):
    """The suite's own auto-reset env (``make_craftax_env_from_name(..., auto_reset=True)``: every env generates a
    new world every step, under vmap)."""
    import jax
    from craftax.craftax_env import make_craftax_env_from_name

    env = make_craftax_env_from_name(env_id, auto_reset=True)
    params = env.default_params
    num_actions = env.action_space(params).n

    def step(state, k):
        k_act, k_env = jax.random.split(k)
        actions = jax.random.randint(k_act, (num_envs,), 0, num_actions)
        _, state, reward, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, num_envs), state, actions, params)
        return state, reward

    return random_action_loop(lambda key: jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)[1],
                              step, steps)


def craftax_optimistic_native(env_id: str, num_envs: int, steps: int, reset_ratio: int = 16):
    """The Craftax baselines' ``OptimisticResetVecEnvWrapper`` (the fastest way Craftax's authors run it): the
    no-auto-reset env vmapped, ``num_envs // reset_ratio`` worlds generated a step, each finished env given one
    of them at random."""
    import jax
    from craftax.craftax_env import make_craftax_env_from_name

    from jaxrl.envs.core import select_tree

    env = make_craftax_env_from_name(env_id, auto_reset=False)
    params = env.default_params
    num_actions = env.action_space(params).n
    num_resets = max(1, num_envs // reset_ratio)
    reset_all = jax.vmap(env.reset, in_axes=(0, None))

    def step(state, k):
        k_act, k_env, k_reset, k_pick = jax.random.split(k, 4)
        actions = jax.random.randint(k_act, (num_envs,), 0, num_actions)
        _, stepped, reward, done, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, num_envs), state, actions, params)
        _, fresh = reset_all(jax.random.split(k_reset, num_resets), params)
        pick = jax.random.randint(k_pick, (num_envs,), 0, num_resets)
        return select_tree(done, jax.tree.map(lambda f: f[pick], fresh), stepped), reward

    return random_action_loop(lambda key: reset_all(jax.random.split(key, num_envs), params)[1], step, steps)


def adapter(name: str, num_envs: int, steps: int, **env_kwargs):
    import jax

    from jaxrl import envs
    from jaxrl.envs.core import Discrete

    env = envs.make_raw(name, **env_kwargs)
    params = env.default_params
    space = env.action_space(params)

    def random_actions(k):
        if isinstance(space, Discrete):
            return jax.random.randint(k, (num_envs,), 0, space.n)
        return jax.random.uniform(k, (num_envs,) + space.shape, minval=-1.0, maxval=1.0)

    def step(state, k):
        k_act, k_env = jax.random.split(k)
        state, ts = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, num_envs), state,
                                                                 random_actions(k_act), params)
        return state, ts.reward

    return random_action_loop(lambda key: jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)[0],
                              step, steps)


# name -> (suite id, the suite's own loop[, steps per timing (the slow ones run fewer than --steps)[, adapter kwargs]])
CASES = {"xminigrid/MiniGrid-Empty-5x5": ("MiniGrid-Empty-5x5", xminigrid_native),
         "xminigrid/MiniGrid-DoorKey-8x8": ("MiniGrid-DoorKey-8x8", xminigrid_native),
         "xminigrid/XLand-MiniGrid-R1-9x9": ("XLand-MiniGrid-R1-9x9", xminigrid_native),
         "jumanji/Snake-v1": ("Snake-v1", jumanji_native), "jumanji/Game2048-v1": ("Game2048-v1", jumanji_native),
         "jumanji/Maze-v0": ("Maze-v0", jumanji_native),
         "playground/CartpoleBalance": ("CartpoleBalance", playground_native),
         "playground/Go1JoystickFlatTerrain": ("Go1JoystickFlatTerrain", playground_native, 200),
         "playground/Go1JoystickFlatTerrain (adapter reset_ratio 16)": ("Go1JoystickFlatTerrain", playground_native, 200,
                                                                        {"reset_ratio": 16}),
         "craftax/Craftax-Classic-Symbolic-v1": ("Craftax-Classic-Symbolic-v1", craftax_native, 100),
         "craftax/Craftax-Classic-Symbolic-v1 (vs optimistic reset)": ("Craftax-Classic-Symbolic-v1",
                                                                        craftax_optimistic_native, 200)}


def timed(fn, key) -> float:
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(key))
    return time.perf_counter() - start


def main() -> None:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", nargs="*", default=[], help="run the cases whose name contains one of these")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (suite_id, native_builder, *case_steps) in CASES.items():
        if args.only and not any(part in name for part in args.only):
            continue
        steps = case_steps[0] if case_steps else args.steps
        env_kwargs = case_steps[1] if len(case_steps) > 1 else {}
        native = native_builder(suite_id, args.envs, steps)
        ours = adapter(name.split(" ")[0], args.envs, steps, **env_kwargs)
        key = jax.random.PRNGKey(0)
        timed(native, key), timed(ours, key)  # compile and warm up
        t_native, t_ours = [], []
        for r in range(args.repeats):  # the order alternates, so neither side always runs first
            key = jax.random.PRNGKey(r + 1)
            if r % 2:
                t_ours.append(timed(ours, key))
                t_native.append(timed(native, key))
            else:
                t_native.append(timed(native, key))
                t_ours.append(timed(ours, key))
        total = args.envs * steps
        sps_native, sps_ours = total / np.median(t_native), total / np.median(t_ours)
        rows.append({"env": name, "steps": steps, "suite_steps_per_second": sps_native,
                     "adapter_steps_per_second": sps_ours, "ratio": sps_ours / sps_native})
        print(f"{name}: suite {sps_native:,.0f} steps/s, adapter {sps_ours:,.0f} steps/s, ratio {sps_ours / sps_native:.2f}",
              flush=True)
    machine = machine_info()
    (out / "results.json").write_text(json.dumps({"machine": machine, "envs": args.envs, "steps": args.steps,
                                                  "repeats": args.repeats, "rows": rows}, indent=1))
    lines = [f"Machine: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} cores, CPU only; "
             f"{args.envs} envs, median of {args.repeats}.", "",
             "| env | steps | suite's own step (steps/s) | jaxrl adapter (steps/s) | adapter / suite |", "|---|---|---|---|---|"]
    lines += [f"| {r['env']} | {r['steps']} | {r['suite_steps_per_second']:,.0f} | {r['adapter_steps_per_second']:,.0f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
