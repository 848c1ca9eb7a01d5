"""PPO throughput on CartPole-v1: jaxrl against PureJaxRL and stable-baselines3, side by side in one invocation.

All use the classic PPO reference hyperparameters (PureJaxRL's ``ppo.py``
config): 4 envs, 128-step rollouts, 4 epochs x 4 minibatches (minibatch 128),
64-64 tanh MLPs for actor and critic, Adam lr 2.5e-4 annealed linearly to 0,
gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5,
gradient-norm clip 0.5.

Rows, each in its own fresh subprocess (so its peak RSS, ``VmHWM``, is its
own), at 1, 4, 16 and 64 seeds and each XLA:CPU pool size of ``--cpu-threads``:

* ``purejaxrl``: PureJaxRL's ``purejaxrl/ppo.py`` from a checkout
  (``--purejaxrl-dir``), unmodified, run as its README runs it:
  ``jax.jit(make_train(config))``, ``jax.vmap`` over seeds, one call for the
  whole run, compile (lower + compile) timed apart. PureJaxRL targets gymnax
  0.0.x; gymnax 1.0's six-value ``step`` is adapted to the old five values in
  this benchmark (:func:`import_purejaxrl_ppo`), not in jaxrl. A row whose
  process does not finish within ``--worker-timeout`` is recorded as such.
* ``jaxrl`` (the harness): ``make_ppo`` + ``make_runner`` driven exactly as
  :mod:`jaxrl.programs.driver` drives them (``map_members``, Threefry lowered
  unrolled, AOT compile of init and the chunk timed apart, ``--num-chunks``
  chunks with the per-update metrics fetched to the host after each, in-chunk
  evaluation off unless ``--eval-episodes``).
* ``jaxrl train.py``: ``experiments/train.py --config configs/ppo_cartpole.yaml``
  as a user runs it, with its defaults (20 chunks, 16 evaluation episodes per
  seed after each, metrics files, checkpoints), compile cache off; figures
  from its ``summary.json``.
* ``stable-baselines3`` (torch, ``--sb3-threads``), on a shorter run
  (``--sb3-timesteps``), cut at the first rollout boundary after
  ``--sb3-max-seconds``.

env steps/s = (env steps per seed x seeds) / wall seconds of the run (compile
excluded). Ratios: to PureJaxRL's fastest finished row at the same seed count,
and to SB3's first ``--sb3-threads`` row, all from this one invocation.
``--repeats N`` runs every row N times round-robin and keeps the fastest.

Usage::

    python benchmarks/ppo_throughput.py --purejaxrl-dir PATH                     # full: 500k steps per seed
    python benchmarks/ppo_throughput.py --purejaxrl-dir PATH --total-timesteps 100000   # the committed results
    python benchmarks/ppo_throughput.py --purejaxrl-dir PATH --seeds 1 --total-timesteps 20480 --sb3-timesteps 5000 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from bench_common import RESULTS, loadavg as _loadavg, machine_info, peak_rss_mib as _peak_rss_mib
from bench_common import distinct_pool_sizes, pool_label, run_worker as _run_worker, ru_maxrss_mib as _ru_maxrss_mib, time_jaxrl_chunks

HP = dict(
    num_envs=4,
    rollout_len=128,
    num_epochs=4,
    num_minibatches=4,
    hidden_sizes=(64, 64),
    activation="tanh",
    lr=2.5e-4,
    anneal_lr=True,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
)


# --------------------------------------------------------------------------- workers (subprocesses)


def worker_jax(num_seeds: int, total_timesteps: int, num_chunks: int, eval_episodes: int, seed: int, cpu_threads: int) -> dict:
    rss_start = _peak_rss_mib()
    load_start = _loadavg()
    from jaxrl.runtime import size_cpu_thread_pool  # before anything starts JAX, as experiments/train.py does

    size_cpu_thread_pool(cpu_threads)
    import jax
    import numpy as np

    from jaxrl import envs
    from jaxrl.agents.ppo import PPOConfig, hparams_from_config, make_ppo
    from jaxrl.runtime import intra_op_pool_threads
    from jaxrl.training.loop import make_runner
    from jaxrl.threefry import unroll_threefry_on_cpu
    from jaxrl.training.sweep import member_batch

    unroll_threefry_on_cpu()  # as the training driver does (same random bits, fewer kernels per key split)
    cfg = PPOConfig(**HP)
    env = envs.make("CartPole-v1")
    evaluate = eval_episodes > 0
    agent = make_ppo(cfg, env, total_timesteps, max(eval_episodes, 1), True)
    runner = make_runner(agent, env.default_params, num_chunks, evaluate_each_chunk=evaluate)
    keys, hparams = member_batch(hparams_from_config(cfg), [{}], num_seeds, seed)
    rss_imported = _peak_rss_mib()

    # As jaxrl.programs.driver.run: AOT-compile init and the chunk; the timed
    # compile region also runs init once (needed to lower the chunk on real state).
    rss = {}
    timed = time_jaxrl_chunks(runner, keys, hparams, on_compiled=lambda: rss.setdefault("compiled", _peak_rss_mib()))
    compile_seconds, run_seconds, chunk_seconds = timed["compile_seconds"], timed["run_seconds"], timed["chunk_seconds"]
    rss_compiled = rss["compiled"]
    last = timed["metrics"][-1]
    valid = np.asarray(last["valid"])[0]
    last_return = float(np.asarray(last["train_return"])[:, valid][:, -1].mean())
    eval_return = float(np.asarray(last["eval_returns"]).mean()) if evaluate else None

    steps_per_seed = agent.num_updates * agent.env_steps_per_update
    total_steps = steps_per_seed * num_seeds
    return {
        "implementation": "jaxrl",
        "seeds": num_seeds,
        "env_steps_per_seed": int(steps_per_seed),
        "total_env_steps": int(total_steps),
        "num_updates": agent.num_updates,
        "num_chunks": runner.num_chunks,
        "chunk_len": runner.chunk_len,
        "eval_episodes_per_chunk": eval_episodes,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "chunk_seconds": chunk_seconds,
        "env_steps_per_second": total_steps / run_seconds,
        "final_train_return_mean": last_return,
        "final_eval_return_mean": eval_return,
        "rss_mib": {"start": rss_start, "after_imports_and_setup": rss_imported, "after_compile": rss_compiled, "peak": _peak_rss_mib(), "ru_maxrss": _ru_maxrss_mib()},
        "peak_rss_mib": _peak_rss_mib(),
        "load_start": load_start,
        "load_end": _loadavg(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_threads_requested": cpu_threads,
        "cpu_intra_op_threads": intra_op_pool_threads(),
    }


def worker_sb3(total_timesteps: int, threads: int, seed: int, max_seconds: float) -> dict:
    rss_start = _peak_rss_mib()
    load_start = _loadavg()
    import torch

    default_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    import stable_baselines3
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    lr0 = HP["lr"]
    env = make_vec_env("CartPole-v1", n_envs=HP["num_envs"], seed=seed, vec_env_cls=DummyVecEnv)
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=lambda progress_remaining: lr0 * progress_remaining,
        n_steps=HP["rollout_len"],
        batch_size=HP["num_envs"] * HP["rollout_len"] // HP["num_minibatches"],
        n_epochs=HP["num_epochs"],
        gamma=HP["gamma"],
        gae_lambda=HP["gae_lambda"],
        clip_range=HP["clip_eps"],
        ent_coef=HP["ent_coef"],
        vf_coef=HP["vf_coef"],
        max_grad_norm=HP["max_grad_norm"],
        policy_kwargs=dict(net_arch=dict(pi=list(HP["hidden_sizes"]), vf=list(HP["hidden_sizes"])), activation_fn=torch.nn.Tanh, ortho_init=True),
        device="cpu",
        seed=seed,
        verbose=0,
    )
    class Clock(BaseCallback):
        """Marks each rollout boundary; stops at the first one after ``max_seconds``."""

        def __init__(self):
            super().__init__()
            self.t0 = time.perf_counter()
            self.mark = (0, 0.0)  # (env steps, seconds) at the last rollout start
            self.stop = False

        def _on_rollout_start(self) -> None:
            elapsed = time.perf_counter() - self.t0
            self.mark = (self.model.num_timesteps, elapsed)
            self.stop = elapsed > max_seconds

        def _on_step(self) -> bool:
            return not self.stop

    rss_setup = _peak_rss_mib()
    clock = Clock()
    t = clock.t0 = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=clock)
    run_seconds = time.perf_counter() - t
    steps = model.num_timesteps
    cut = clock.stop
    if cut:
        steps, run_seconds = clock.mark
    ep = [e["r"] for e in model.ep_info_buffer]
    return {
        "implementation": "stable-baselines3",
        "seeds": 1,
        "env_steps_per_seed": int(steps),
        "total_env_steps": int(steps),
        "requested_env_steps": total_timesteps,
        "cut_by_time_limit": cut,
        "compile_seconds": None,
        "run_seconds": run_seconds,
        "env_steps_per_second": steps / run_seconds,
        "final_train_return_mean": float(sum(ep) / len(ep)) if ep else None,
        "torch_threads": torch.get_num_threads(),
        "torch_default_threads": default_threads,
        "rss_mib": {"start": rss_start, "after_setup": rss_setup, "peak": _peak_rss_mib(), "ru_maxrss": _ru_maxrss_mib()},
        "peak_rss_mib": _peak_rss_mib(),
        "load_start": load_start,
        "load_end": _loadavg(),
        "torch_version": torch.__version__,
        "sb3_version": stable_baselines3.__version__,
    }


PUREJAXRL_CONFIG = {
    "LR": HP["lr"], "NUM_ENVS": HP["num_envs"], "NUM_STEPS": HP["rollout_len"], "UPDATE_EPOCHS": HP["num_epochs"],
    "NUM_MINIBATCHES": HP["num_minibatches"], "GAMMA": HP["gamma"], "GAE_LAMBDA": HP["gae_lambda"], "CLIP_EPS": HP["clip_eps"],
    "ENT_COEF": HP["ent_coef"], "VF_COEF": HP["vf_coef"], "MAX_GRAD_NORM": HP["max_grad_norm"], "ACTIVATION": HP["activation"],
    "ENV_NAME": "CartPole-v1", "ANNEAL_LR": HP["anneal_lr"], "DEBUG": False,
}  # purejaxrl/ppo.py's own __main__ config (the same reference hyperparameters), DEBUG off (no host callback)


def import_purejaxrl_ppo(purejaxrl_dir: str):
    """PureJaxRL's ``purejaxrl/ppo.py`` module from a checkout, adapted to the installed gymnax without editing it.

    PureJaxRL was written against gymnax 0.0.x, whose ``step`` returned five values
    ``(obs, state, reward, done, info)``; gymnax 1.0 returns six, with ``terminated``
    and ``truncated`` apart and three more ``info`` keys. The module's ``gymnax`` is
    replaced by a shim whose ``make`` wraps each env so ``step`` returns the old five
    values (``done = terminated | truncated``, the old ``done``) and the old ``info``.
    Its ``wrappers.py`` imports ``navix`` (for MiniGrid, unused by ``ppo.py``); an empty
    module stands in when it is not installed. Its ``distrax`` import needs the
    ``bench`` extra.
    """
    import importlib
    import types
    from pathlib import Path

    import gymnax
    import jax.numpy as jnp

    source = Path(purejaxrl_dir).expanduser().resolve() / "purejaxrl"
    if not (source / "ppo.py").is_file():
        raise SystemExit(f"--purejaxrl-dir: {purejaxrl_dir} has no purejaxrl/ppo.py (give the root of a PureJaxRL checkout)")
    sys.path.insert(0, str(source))
    try:
        importlib.import_module("navix")
    except ImportError:
        sys.modules["navix"] = types.ModuleType("navix")
    ppo = importlib.import_module("ppo")

    class FiveValueStep:
        """gymnax 1.0 env with gymnax 0.0.x's ``step`` signature."""

        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            return getattr(self._env, name)

        def step(self, key, state, action, params=None):
            obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
            info = {k: v for k, v in info.items() if k not in ("terminated", "truncated", "final_observation")}
            return obs, state, reward, jnp.logical_or(terminated, truncated), info

    ppo.gymnax = types.SimpleNamespace(make=lambda name, **kw: (lambda env, params: (FiveValueStep(env), params))(*gymnax.make(name, **kw)))
    return ppo


def worker_purejaxrl(num_seeds: int, total_timesteps: int, seed: int, cpu_threads: int, purejaxrl_dir: str) -> dict:
    """PureJaxRL as its README runs it: ``jax.jit(make_train(config))`` (``jax.vmap`` over seeds), one call for the whole run."""
    rss_start = _peak_rss_mib()
    load_start = _loadavg()
    from jaxrl.runtime import intra_op_pool_threads, size_cpu_thread_pool

    size_cpu_thread_pool(cpu_threads)  # the same pool sizing as the jaxrl rows
    import jax
    import numpy as np

    ppo = import_purejaxrl_ppo(purejaxrl_dir)
    config = {**PUREJAXRL_CONFIG, "TOTAL_TIMESTEPS": total_timesteps}
    train = ppo.make_train(dict(config))
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    t0 = time.perf_counter()
    fn, arg = (jax.jit(train), keys[0]) if num_seeds == 1 else (jax.jit(jax.vmap(train)), keys)
    compiled = fn.lower(arg).compile()
    compile_seconds = time.perf_counter() - t0
    rss_compiled = _peak_rss_mib()
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(arg))
    run_seconds = time.perf_counter() - t
    num_updates = int(total_timesteps) // (HP["rollout_len"] * HP["num_envs"])
    steps_per_seed = num_updates * HP["rollout_len"] * HP["num_envs"]
    returns = np.asarray(out["metrics"]["returned_episode_returns"])  # [(S,) U, T, B]
    return {
        "implementation": "purejaxrl",
        "seeds": num_seeds,
        "env_steps_per_seed": steps_per_seed,
        "total_env_steps": steps_per_seed * num_seeds,
        "num_updates": num_updates,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "env_steps_per_second": steps_per_seed * num_seeds / run_seconds,
        "final_train_return_mean": float(returns[..., -1, :, :].mean()),
        "rss_mib": {"start": rss_start, "after_compile": rss_compiled, "peak": _peak_rss_mib(), "ru_maxrss": _ru_maxrss_mib()},
        "peak_rss_mib": _peak_rss_mib(),
        "load_start": load_start,
        "load_end": _loadavg(),
        "backend": jax.default_backend(),
        "cpu_threads_requested": cpu_threads,
        "cpu_intra_op_threads": intra_op_pool_threads(),
    }


def worker_train_py(num_seeds: int, total_timesteps: int, seed: int, cpu_threads: int) -> dict:
    """jaxrl as a user runs it: ``experiments/train.py --config configs/ppo_cartpole.yaml`` with its defaults
    (chunks, in-chunk evaluation, checkpoints, metrics files), the compile cache off; figures from its summary.json."""
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    load_start = _loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "run"
        cmd = [sys.executable, str(root / "experiments" / "train.py"), "--config", str(root / "configs" / "ppo_cartpole.yaml"),
               "--num-seeds", str(num_seeds), "--total-timesteps", str(total_timesteps), "--seed", str(seed),
               "--out-dir", str(out_dir), "--compile-cache", "off", "--quiet"]
        if cpu_threads:
            cmd += ["--cpu-threads", str(cpu_threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"train.py failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        summary = json.loads((out_dir / "summary.json").read_text())
        config = (out_dir / "config.yaml").read_text()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "implementation": "jaxrl train.py",
        "seeds": num_seeds,
        "env_steps_per_seed": summary["env_steps_per_seed"],
        "total_env_steps": summary["total_env_steps"],
        "num_updates": summary["num_updates"],
        "compile_seconds": summary["compile_seconds"],
        "run_seconds": summary["run_seconds"],
        "env_steps_per_second": summary["env_steps_per_second"],
        "final_train_return_mean": summary["final_return_mean"],  # train.py's: the deterministic evaluation return
        "eval_episodes_per_chunk": summary.get("eval_episodes"),
        "num_chunks": next((int(line.split(":")[1]) for line in config.splitlines() if line.startswith("num_chunks:")), None),
        "peak_rss_mib": usage.ru_maxrss / 1024.0,  # the train.py child's (ru_maxrss of waited-for children)
        "load_start": load_start,
        "load_end": _loadavg(),
        "cpu_threads_requested": cpu_threads,
        "cpu_intra_op_threads": summary.get("cpu_intra_op_threads"),
        "command": " ".join(cmd[1:]).replace(str(root) + "/", "").replace(str(out_dir), "RUN_DIR"),
    }


# --------------------------------------------------------------------------- parent


WORKER_TIMEOUT = 900.0


def run_worker(args: list[str], attempts: int = 2) -> dict:
    """Runs one configuration of this script in a fresh interpreter (see :func:`bench_common.run_worker`)."""
    return _run_worker(__file__, args, WORKER_TIMEOUT, attempts)


def label(r: dict) -> str:
    impl = r["implementation"]
    if impl == "stable-baselines3":
        return impl + f" ({r['torch_threads']} torch thread{'s' if r['torch_threads'] != 1 else ''})"
    if r.get("hung"):
        return impl + f" (--cpu-threads {r['cpu_threads_requested']})"
    return impl + pool_label(r)


def fastest(rows: list[dict], implementation: str, seeds: int) -> dict | None:
    """The fastest finished row of ``implementation`` at ``seeds`` (over pool sizes), or None."""
    done = [r for r in rows if r["implementation"] == implementation and r["seeds"] == seeds and not r.get("hung")]
    return max(done, key=lambda r: r["env_steps_per_second"]) if done else None


def fmt_row(r: dict, rows: list[dict], sb3_sps: float) -> str:
    if r.get("hung"):
        return (f"| {label(r)} | {r['seeds']} | did not finish: {r['hung']} | - | - | - | - | - | - | - | "
                f"{r['load_start'][0]:.2f} / {r['load_end'][0]:.2f} |")
    pjx = fastest(rows, "purejaxrl", r["seeds"])
    to_pjx = f"{r['env_steps_per_second'] / pjx['env_steps_per_second']:.2f}x" if pjx and r["implementation"] != "stable-baselines3" else "-"
    compile_s = "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.1f}"
    compile_to_pjx = (f"{r['compile_seconds'] / min(x['compile_seconds'] for x in rows if x['implementation'] == 'purejaxrl' and x['seeds'] == r['seeds'] and not x.get('hung')):.2f}x"
                      if pjx and r["compile_seconds"] is not None else "-")
    ret = r.get("final_train_return_mean")
    return (
        f"| {label(r)} | {r['seeds']} | {r['env_steps_per_second']:,.0f} | {to_pjx} | {r['env_steps_per_second'] / sb3_sps:.2f}x | "
        f"{compile_s} | {compile_to_pjx} | {r['peak_rss_mib']:,.0f} | {r['run_seconds']:.1f} | "
        f"{'-' if ret is None else f'{ret:.0f}'} | {r['load_start'][0]:.2f} / {r['load_end'][0]:.2f} |"
        + (" " + ", ".join(f"{x['env_steps_per_second']:,.0f}" for x in r["all_repeats"]) + " |" if len(r.get("all_repeats", [])) > 1 else "")
    )


def render(info: dict, settings: dict, rows: list[dict], ref: dict, command: str) -> str:
    sb3_sps = ref["env_steps_per_second"]
    v = info["versions"]
    harness = next((r for r in rows if r["implementation"] == "jaxrl" and not r.get("hung")), None)
    lines = [
        "# PPO throughput on CartPole-v1: jaxrl vs PureJaxRL vs stable-baselines3 (CPU)",
        "",
        f"- date: {info['date']}; git commit: {info['git_commit']}",
        f"- machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['cpus_usable']} usable), {info['memory_gib']} GiB RAM; {info['platform']}",
        f"- versions: python {info['python']}, jax {v['jax']} (jaxlib {v['jaxlib']}), flax {v['flax']}, optax {v['optax']}, gymnax {v['gymnax']}, "
        f"torch {v['torch']}, stable-baselines3 {v['stable-baselines3']}, gymnasium {v['gymnasium']}; PureJaxRL checkout: {settings.get('purejaxrl_commit') or '-'}",
        f"- load average (1 min) before / after the whole run: {settings['load_before'][0]:.2f} / {settings['load_after'][0]:.2f}",
        f"- command: `{command}`",
        "",
        "Hyperparameters (all): 4 envs, 128-step rollouts, 4 epochs x 4 minibatches of 128, 64-64 tanh actor and critic, "
        "Adam (eps 1e-5) lr 2.5e-4 linearly annealed, gamma 0.99, lambda 0.95, clip 0.2, ent 0.01, vf 0.5, grad clip 0.5.",
        f"Env steps per seed: {settings['jax_timesteps']:,} requested (whole updates of 512 run); per-step cost does not depend on run length.",
        "",
        "- **purejaxrl**: its `purejaxrl/ppo.py` unmodified, `jax.jit(make_train(config))` (`jax.vmap` over seeds), one call for the "
        "whole run, compile (lower + compile) timed apart; gymnax 1.0's six-value step adapted to its five values in the benchmark. "
        "It does less per step than jaxrl: no value of the true final observation (a time-limit truncation is treated as termination), "
        "no metrics beyond episode returns, no evaluation.",
        "- **jaxrl** (harness): `make_ppo` + `make_runner` driven as `jaxrl/programs/driver.py` drives it (members mapped with "
        f"`map_members`, AOT compile of init and chunk timed apart), {harness['num_chunks'] if harness else '?'} chunks, in-chunk evaluation "
        + ("ON" if settings["eval_episodes"] else "OFF") + ", per-update metrics fetched to the host after every chunk (timed).",
        "- **jaxrl train.py**: `python experiments/train.py --config configs/ppo_cartpole.yaml --num-seeds N --total-timesteps T "
        "--compile-cache off --quiet [--cpu-threads K]` as a user runs it (its defaults: 20 chunks, 16 deterministic evaluation "
        "episodes per seed after every chunk, metrics files, checkpoints); compile s and env steps/s from its `summary.json` "
        "(its run seconds include evaluation, metrics and checkpoints); its return column is the final evaluation return.",
        f"- stable-baselines3: {settings['sb3_timesteps']:,} env steps requested per row, cut at the first rollout boundary after "
        f"{settings['sb3_max_seconds']:g} s; DummyVecEnv of 4 gymnasium CartPole-v1, MlpPolicy pi=[64,64], vf=[64,64], Tanh; "
        f"time = `model.learn` only; torch default threads here: {ref['torch_default_threads']}.",
        "- env steps/s = all seeds' env steps / run wall seconds (compile excluded). The PureJaxRL ratio is against PureJaxRL's fastest "
        "finished row at the same number of seeds (over pool sizes); compile ratio likewise against its fastest compile. "
        f"SB3 ratio against SB3 with {ref['torch_threads']} torch thread(s), same invocation.",
        "- pool: XLA:CPU intra-op threads (`--cpu-threads`; 0 = XLA's default, one per core). Peak RSS: VmHWM of the row's fresh process.",
        f"- repeats: {settings['repeats']} (round-robin); " + ("each row shows its fastest repeat." if settings["repeats"] > 1 else "one measurement per row."),
        "",
        "| implementation | seeds | env steps/s | vs PureJaxRL | vs SB3 | compile s | compile vs PureJaxRL | peak RSS MiB | run s | final return | load 1m start / end |"
        + (" env steps/s of each repeat |" if settings["repeats"] > 1 else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if settings["repeats"] > 1 else ""),
    ]
    order = {"stable-baselines3": 0, "purejaxrl": 1, "jaxrl": 2, "jaxrl train.py": 3}
    ordered = sorted(rows, key=lambda r: (r["implementation"] != "stable-baselines3", r["seeds"], order[r["implementation"]]))
    lines += [fmt_row(r, rows, sb3_sps) for r in ordered]
    lines.append("")
    if any(r.get("hung") for r in rows):
        lines += [
            "A row that did not finish: its process was killed at the per-row time limit. Where this happened to vmapped PureJaxRL "
            "with XLA's default pool, every thread of the process was found waiting (native stacks: the Eigen pool idle, the main "
            "thread in `block_until_ready`), i.e. XLA:CPU deadlocked on that program rather than ran slowly; with a one-thread pool the "
            "same program finishes.",
            "",
        ]
    return "\n".join(lines)


def git_commit_of(path: str | None) -> str | None:
    import subprocess

    if not path:
        return None
    out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--purejaxrl-dir", help="root of a PureJaxRL checkout (github.com/luchris429/purejaxrl); without it no PureJaxRL rows")
    p.add_argument("--total-timesteps", type=int, default=500_000, help="env steps per seed for jaxrl and PureJaxRL (default 500k)")
    p.add_argument("--seeds", default="1,4,16,64", help="comma-separated seed counts")
    p.add_argument("--num-chunks", type=int, default=4, help="compiled chunks per jaxrl harness run")
    p.add_argument("--cpu-threads", default="0,1", help="comma-separated XLA:CPU pool sizes for the JAX rows "
                   "(0: XLA's default, one per core; as experiments/train.py --cpu-threads)")
    p.add_argument("--modes", default="purejaxrl,harness,train", help="which JAX rows: purejaxrl, harness (jaxrl as driven by the driver), train (train.py)")
    p.add_argument("--eval-episodes", type=int, default=0, help="in-chunk evaluation episodes per seed in the harness rows (0 = off)")
    p.add_argument("--sb3-timesteps", type=int, default=100_000, help="SB3 env steps timed (shorter run)")
    p.add_argument("--sb3-max-seconds", type=float, default=90.0, help="cut an SB3 row at the first rollout boundary after this many seconds")
    p.add_argument("--sb3-threads", default="1", help="torch thread counts for SB3 rows (0 = torch default); the first is the ratio reference")
    p.add_argument("--repeats", type=int, default=1, help="round-robin repeats of every config; each row reports the fastest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker-timeout", type=float, default=900.0, help="seconds before a row's process is killed (jaxrl rows: retried once; "
                   "PureJaxRL rows: recorded as not finished)")
    p.add_argument("--out-name", default="ppo_throughput_cpu", help="results/<name>.md and .json")
    p.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "jax":
            n, steps, chunks, evals, seed, threads = map(int, rest)
            result = worker_jax(n, steps, chunks, evals, seed, threads)
        elif kind == "purejaxrl":
            n, steps, seed, threads = map(int, rest[:4])
            result = worker_purejaxrl(n, steps, seed, threads, rest[4])
        elif kind == "train":
            result = worker_train_py(*map(int, rest))
        else:
            steps, threads, seed = map(int, rest[:3])
            result = worker_sb3(steps, threads, seed, float(rest[3]))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - {"purejaxrl", "harness", "train"})
    if unknown:
        p.error(f"--modes: unknown {', '.join(unknown)}; choose from purejaxrl, harness, train")
    if "purejaxrl" in modes and not args.purejaxrl_dir:
        modes.remove("purejaxrl")
        print("no --purejaxrl-dir: no PureJaxRL rows", flush=True)
    elif args.purejaxrl_dir:
        from pathlib import Path

        if not (Path(args.purejaxrl_dir).expanduser() / "purejaxrl" / "ppo.py").is_file():
            p.error(f"--purejaxrl-dir: {args.purejaxrl_dir} has no purejaxrl/ppo.py (give the root of a PureJaxRL checkout)")
    global WORKER_TIMEOUT
    WORKER_TIMEOUT = args.worker_timeout
    command = "python benchmarks/ppo_throughput.py" + "".join(f" {a}" for a in sys.argv[1:])
    info = machine_info()
    settings = {
        "jax_timesteps": args.total_timesteps,
        "seeds": [int(s) for s in args.seeds.split(",")],
        "num_chunks": args.num_chunks,
        "cpu_threads": [int(t) for t in args.cpu_threads.split(",")],
        "modes": modes,
        "eval_episodes": args.eval_episodes,
        "sb3_timesteps": args.sb3_timesteps,
        "sb3_threads": [int(t) for t in args.sb3_threads.split(",")],
        "sb3_max_seconds": args.sb3_max_seconds,
        "purejaxrl_commit": git_commit_of(args.purejaxrl_dir),
        "load_before": _loadavg(),
    }
    print(f"machine: {info['cpu_model']}, {info['cpu_count']} cores; load {settings['load_before']}", flush=True)
    pools = distinct_pool_sizes(settings["cpu_threads"])
    mode_kind = {"purejaxrl": "purejaxrl", "harness": "jax", "train": "train"}
    configs = [("sb3", t, 0) for t in settings["sb3_threads"]]
    configs += [(mode_kind[m], n, t) for n in settings["seeds"] for m in modes for t in pools]
    samples: dict = {c: [] for c in configs}
    hung_pools: dict = {}  # (pool, repeat) -> seeds at which a PureJaxRL row did not finish
    for repeat in range(args.repeats):  # round-robin, so every config sees every phase of the machine's load
        if args.repeats > 1:
            print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
        for kind, n, threads in configs:
            steps = str(args.total_timesteps)
            if kind == "sb3":
                print(f"stable-baselines3, torch threads={n or 'default'}, {args.sb3_timesteps:,} steps", flush=True)
                r = run_worker(["sb3", str(args.sb3_timesteps), str(n), str(args.seed), str(args.sb3_max_seconds)])
            else:
                print(f"{kind}, {n} seed(s), {args.total_timesteps:,} steps per seed, --cpu-threads {threads}", flush=True)
                if kind == "jax":
                    r = run_worker(["jax", str(n), steps, str(args.num_chunks), str(args.eval_episodes), str(args.seed), str(threads)])
                elif kind == "train":
                    r = run_worker(["train", str(n), steps, str(args.seed), str(threads)])
                elif (threads, repeat) in hung_pools:  # it deadlocked at fewer seeds with this pool: not worth a timeout per row
                    r = {"implementation": "purejaxrl", "seeds": n, "hung": f"not run: did not finish at {hung_pools[(threads, repeat)]} seed(s) with this pool",
                         "cpu_threads_requested": threads, "env_steps_per_second": 0.0, "load_start": _loadavg(), "load_end": _loadavg()}
                else:
                    load_start = _loadavg()
                    try:
                        r = _run_worker(__file__, ["purejaxrl", str(n), steps, str(args.seed), str(threads), args.purejaxrl_dir],
                                        WORKER_TIMEOUT, attempts=1)
                    except SystemExit as e:
                        r = {"implementation": "purejaxrl", "seeds": n, "hung": f"killed after {WORKER_TIMEOUT:.0f} s ({e})",
                             "cpu_threads_requested": threads, "env_steps_per_second": 0.0, "load_start": load_start, "load_end": _loadavg()}
                        hung_pools[(threads, repeat)] = n
            if r.get("hung"):
                print(f"  did not finish: {r['hung']}", flush=True)
            else:
                print(f"  {r['env_steps_per_second']:,.0f} env steps/s, compile {r.get('compile_seconds') or 0:.1f}s, run {r['run_seconds']:.1f}s, "
                      f"peak RSS {r['peak_rss_mib']:.0f} MiB, final return {r.get('final_train_return_mean')}, load {r['load_end']}", flush=True)
            samples[(kind, n, threads)].append(r)
    settings["load_after"] = _loadavg()
    settings["repeats"] = args.repeats
    rows = []
    for c in configs:  # each row is the fastest of its repeats (the least disturbed by other load); all are kept in the JSON
        best = dict(max(samples[c], key=lambda r: r["env_steps_per_second"]))
        best["all_repeats"] = [{k: r.get(k) for k in ("env_steps_per_second", "run_seconds", "compile_seconds", "peak_rss_mib", "load_start", "load_end", "hung")}
                               for r in samples[c]]
        rows.append(best)

    ref = rows[0]
    text = render(info, settings, rows, ref, command)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.md").write_text(text)
    payload = {"command": command, "machine": info, "settings": settings,
               "reference": "stable-baselines3 with %d torch thread(s); PureJaxRL's fastest finished row per seed count" % ref["torch_threads"],
               "results": rows}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS / (args.out_name + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
