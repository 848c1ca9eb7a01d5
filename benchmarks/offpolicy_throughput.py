"""Off-policy throughput: DQN on CartPole-v1 and SAC on Pendulum-v1, jaxrl vs stable-baselines3 and CleanRL's JAX scripts (CPU).

Every side uses the same hyperparameters, those of the presets
``configs/dqn_cartpole.yaml`` (CleanRL's DQN CartPole settings) and
``configs/sac_pendulum.yaml``:

* DQN: 1 env, a learner step every 10 env steps on 128 distinct transitions
  of a 10k replay buffer, learning from step 10k, target copy every 500
  steps, epsilon 1 -> 0.05 over half the run, Adam 2.5e-4, 120-84 ReLU,
  gradient-norm clip 10. (SB3's DQN loss is Huber; the preset's is squared
  error: the same cost.)
* SAC: 1 env, one learner step per env step on 256 transitions of a 100k
  buffer, learning from step 1000, twin 256-256 ReLU critics, 256-256 actor,
  Adam 1e-3, tau 0.005, learned temperature (initial 1, target entropy -1).

Every configuration runs in its own fresh subprocess (helpers in
``bench_common.py``, shared with ``ppo_throughput.py``); the parent collects
all rows into one table so ratios come from one invocation on one machine.

jaxrl is driven as :mod:`jaxrl.programs.driver` drives it (members mapped with
``map_members``: vmapped, or un-vmapped for one seed; Threefry lowered without
its loop; AOT compile timed separately, ``--num-chunks`` chunks, in-chunk
evaluation off as SB3's ``learn`` does not evaluate). jaxrl's env steps/s
covers the whole run, including the steps before ``learning_starts``: vmapped
(several seeds) those iterations compute and discard their learner steps, so
they cost as much as the others; at one seed they skip them. The rate of the
chunks that start at or after ``learning_starts`` (the learning phase only,
as SB3 is timed) is recorded too, and the ratio column uses the lower of the two.

SB3's env steps/s is measured from ``learning_starts`` on (the training phase
only: SB3 skips learner steps before it, which would flatter it), up to
``--sb3-timesteps`` steps or the first env step after ``--sb3-max-seconds``
seconds of that phase. torch uses 1 thread (on this 2-core machine the
fastest setting for SB3, see ``results/ppo_throughput_cpu.md``).

CleanRL (``--cleanrl-dir``, a checkout of github.com/vwxyzjn/cleanrl): its JAX
scripts ``cleanrl/dqn_jax.py`` and ``cleanrl/sac_continuous_action_jax.py``
(the latter is not on CleanRL's master branch: it is the file of CleanRL pull
request #519; ``--cleanrl-sac-script`` names another) run unmodified, each in
its own fresh subprocess, under ``cleanrl_runner.py`` (``runpy``; see its
docstring for the timing and the gymnasium >= 1.0 adapter), with
``--total-timesteps`` the jaxrl run's env steps per seed (the same epsilon
schedule) and every hyperparameter the script has a flag for set as above
(``CLEANRL_FLAGS``); what the script hard-codes is listed in the output
(``CLEANRL_FIXED``). CleanRL compiles lazily inside its loop, so its env
steps/s is that of the steady state: from ``learning_starts +
--cleanrl-warmup-steps`` env steps to the end (no compilation inside; checked
and shown), the counterpart of jaxrl's learning phase with compile timed
apart; its whole-run rate and its rate from ``learning_starts`` (both with its
compilation inside) are shown too. CleanRL's JAX runs on XLA:CPU's default
pool (one thread per core), as the script does by itself.

Usage::

    python benchmarks/offpolicy_throughput.py --repeats 2       # SB3 and jaxrl only
    python benchmarks/offpolicy_throughput.py --cleanrl-dir /tmp/cleanrl --repeats 1 --dqn-timesteps 100000
    python benchmarks/offpolicy_throughput.py --algos dqn --dqn-timesteps 100000 --out-name smoke
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from importlib import metadata

from bench_common import RESULTS, distinct_pool_sizes, loadavg, machine_info, peak_rss_mib, pool_label, run_worker, time_jaxrl_chunks

DQN_HP = dict(num_envs=1, steps_per_update=10, gradient_steps=1, batch_size=128, buffer_size=10_000, learning_starts=10_000,
              target_update_interval=500, hidden_sizes=(120, 84), activation="relu", double_q=False, value_loss="mse",
              lr=2.5e-4, gamma=0.99, tau=1.0, start_epsilon=1.0, end_epsilon=0.05, exploration_fraction=0.5, max_grad_norm=10.0)
SAC_HP = dict(num_envs=1, steps_per_update=1, gradient_steps=1, batch_size=256, buffer_size=100_000, learning_starts=1000,
              hidden_sizes=(256, 256), activation="relu", lr=1e-3, q_lr=1e-3, gamma=0.99, tau=0.005, init_alpha=1.0,
              target_entropy_scale=1.0)
ENVS = {"dqn": "CartPole-v1", "sac": "Pendulum-v1"}
HP = {"dqn": DQN_HP, "sac": SAC_HP}

# CleanRL: the script's default file, and which of its flags (Args fields) take which DQN_HP / SAC_HP value.
CLEANRL_SCRIPTS = {"dqn": "cleanrl/dqn_jax.py", "sac": "cleanrl/sac_continuous_action_jax.py"}
CLEANRL_FLAGS = {
    "dqn": {"num_envs": "num_envs", "lr": "learning_rate", "buffer_size": "buffer_size", "gamma": "gamma", "tau": "tau",
            "target_update_interval": "target_network_frequency", "batch_size": "batch_size", "start_epsilon": "start_e",
            "end_epsilon": "end_e", "exploration_fraction": "exploration_fraction", "learning_starts": "learning_starts",
            "steps_per_update": "train_frequency"},
    "sac": {"num_envs": "num_envs", "buffer_size": "buffer_size", "gamma": "gamma", "tau": "tau", "batch_size": "batch_size",
            "learning_starts": "learning_starts", "lr": "policy_lr", "q_lr": "q_lr"},
}
# Flags with no DQN_HP / SAC_HP counterpart, set to what jaxrl does (SAC: actor, temperature and target update at
# every learner step; CleanRL's default delays the actor to every 2nd) or to switch logging extras off.
CLEANRL_EXTRA = {
    "dqn": {"track": False, "capture_video": False, "save_model": False, "upload_model": False},
    "sac": {"policy_frequency": 1, "target_network_frequency": 1, "autotune": True, "track": False, "capture_video": False,
            "cuda": False},
}
# What the scripts hard-code (no flag): the jaxrl setting, CleanRL's, and whether they agree.
CLEANRL_FIXED = {
    "dqn": [
        ("hidden_sizes (120, 84), relu", "QNetwork: Dense 120-84, relu", True),
        ("double_q False, value_loss mse", "plain DQN target, squared error", True),
        ("gradient_steps 1", "one update per train_frequency env steps", True),
        ("max_grad_norm 10", "no gradient clipping", False),
        ("Adam eps 1e-8", "optax.adam's default eps 1e-8", True),
        ("replay batch: 128 distinct transitions", "cleanrl_utils ReplayBuffer: uniform with replacement, numpy + torch tensors", False),
    ],
    "sac": [
        ("hidden_sizes (256, 256), relu; 2 critics", "Actor/Critic Dense 256-256, relu; VectorCritic n_critics=2", True),
        ("steps_per_update 1, gradient_steps 1", "one learner step per env step", True),
        ("init_alpha 1.0, target entropy -|A|", "EntropyCoef(ent_coef_init=1.0), target -prod(action shape)", True),
        ("temperature Adam lr = lr (1e-3)", "temperature Adam lr = q_lr (1e-3)", True),
        ("log std tanh-squashed into [-5, 2]", "log std clipped to [-20, 2]", False),
        ("actions before learning_starts: tanh(N(0, 1))", "uniform over the action box", False),
        ("replay stores the actor's action in [-1, 1]", "stores the env-scaled action (Pendulum: [-2, 2]; the script computes "
         "scale_action but adds the unscaled one)", False),
        ("replay batch: 256 distinct transitions", "cleanrl_utils ReplayBuffer: uniform with replacement, numpy + torch tensors", False),
    ],
}


# --------------------------------------------------------------------------- workers (subprocesses)


def worker_jax(algo: str, num_seeds: int, total_timesteps: int, num_chunks: int, seed: int, cpu_threads: int) -> dict:
    load_start = loadavg()
    from jaxrl.runtime import size_cpu_thread_pool  # before anything starts JAX, as experiments/train.py does

    size_cpu_thread_pool(cpu_threads)
    import jax
    import numpy as np

    from jaxrl import envs
    from jaxrl.agents import ALGORITHMS
    from jaxrl.runtime import intra_op_pool_threads
    from jaxrl.threefry import unroll_threefry_on_cpu
    from jaxrl.training.loop import make_runner
    from jaxrl.training.sweep import member_batch

    unroll_threefry_on_cpu()  # as the training driver does
    spec = ALGORITHMS[algo]
    cfg = spec.config_cls(**(DQN_HP if algo == "dqn" else SAC_HP))
    env = envs.make(ENVS[algo])
    agent = spec.make_agent(cfg, env, total_timesteps, 1, True)
    runner = make_runner(agent, env.default_params, num_chunks, evaluate_each_chunk=False)
    keys, hparams = member_batch(spec.make_hparams(cfg), [{}], num_seeds, seed)
    timed = time_jaxrl_chunks(runner, keys, hparams)
    last = timed["metrics"][-1]
    valid = np.asarray(last["valid"])[0]
    steps_per_seed = agent.num_updates * agent.env_steps_per_update
    # Chunks that start at or after learning_starts: the phase SB3's rate covers.
    chunk_steps = runner.chunk_len * agent.env_steps_per_update
    learning = [c for c in range(runner.num_chunks) if c * chunk_steps >= cfg.learning_starts and (c + 1) * runner.chunk_len <= agent.num_updates]
    learning_sps = (len(learning) * chunk_steps * num_seeds / sum(timed["chunk_seconds"][c] for c in learning)) if learning else float("inf")
    return {
        "implementation": "jaxrl",
        "algo": algo,
        "seeds": num_seeds,
        "env_steps_per_seed": int(steps_per_seed),
        "total_env_steps": int(steps_per_seed * num_seeds),
        "num_updates": agent.num_updates,
        "num_chunks": runner.num_chunks,
        "compile_seconds": timed["compile_seconds"],
        "run_seconds": timed["run_seconds"],
        "chunk_seconds": timed["chunk_seconds"],
        "env_steps_per_second": min(steps_per_seed * num_seeds / timed["run_seconds"], learning_sps),
        "whole_run_env_steps_per_second": steps_per_seed * num_seeds / timed["run_seconds"],
        "learning_phase_env_steps_per_second": learning_sps,
        "final_train_return_mean": float(np.asarray(last["train_return"])[:, valid][:, -1].mean()),
        "peak_rss_mib": peak_rss_mib(),
        "load_start": load_start,
        "load_end": loadavg(),
        "backend": jax.default_backend(),
        "cpu_threads_requested": cpu_threads,
        "cpu_intra_op_threads": intra_op_pool_threads(),
    }


def worker_sb3(algo: str, total_timesteps: int, seed: int, max_seconds: float) -> dict:
    load_start = loadavg()
    import torch

    torch.set_num_threads(1)
    import stable_baselines3
    from stable_baselines3 import DQN, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = make_vec_env(ENVS[algo], n_envs=1, seed=seed, vec_env_cls=DummyVecEnv)
    if algo == "dqn":
        hp = DQN_HP
        model = DQN("MlpPolicy", env, learning_rate=hp["lr"], buffer_size=hp["buffer_size"], learning_starts=hp["learning_starts"],
                    batch_size=hp["batch_size"], tau=hp["tau"], gamma=hp["gamma"], train_freq=hp["steps_per_update"],
                    gradient_steps=hp["gradient_steps"], target_update_interval=hp["target_update_interval"],
                    exploration_fraction=hp["exploration_fraction"], exploration_initial_eps=hp["start_epsilon"],
                    exploration_final_eps=hp["end_epsilon"], max_grad_norm=hp["max_grad_norm"],
                    policy_kwargs=dict(net_arch=list(hp["hidden_sizes"]), activation_fn=torch.nn.ReLU),
                    device="cpu", seed=seed, verbose=0)
    else:
        hp = SAC_HP
        model = SAC("MlpPolicy", env, learning_rate=hp["lr"], buffer_size=hp["buffer_size"], learning_starts=hp["learning_starts"],
                    batch_size=hp["batch_size"], tau=hp["tau"], gamma=hp["gamma"], train_freq=hp["steps_per_update"],
                    gradient_steps=hp["gradient_steps"], ent_coef="auto_1.0", target_entropy="auto",
                    policy_kwargs=dict(net_arch=list(hp["hidden_sizes"]), activation_fn=torch.nn.ReLU),
                    device="cpu", seed=seed, verbose=0)
    learning_starts = hp["learning_starts"]

    class Clock(BaseCallback):
        """Marks the first step of the training phase; stops once ``max_seconds`` of it have passed."""

        def __init__(self):
            super().__init__()
            self.mark = None  # (env steps, time) at learning_starts

        def _on_step(self) -> bool:
            now = time.perf_counter()
            if self.mark is None:
                if self.model.num_timesteps >= learning_starts:
                    self.mark = (self.model.num_timesteps, now)
                return True
            self.last = (self.model.num_timesteps, now)
            return now - self.mark[1] < max_seconds

    clock = Clock()
    t = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=clock)
    total_seconds = time.perf_counter() - t
    (s0, t0), (s1, t1) = clock.mark, clock.last
    ep = [e["r"] for e in model.ep_info_buffer]
    return {
        "implementation": "stable-baselines3",
        "algo": algo,
        "seeds": 1,
        "env_steps_per_seed": int(s1),
        "total_env_steps": int(s1 - s0),
        "compile_seconds": None,
        "run_seconds": t1 - t0,
        "whole_learn_seconds": total_seconds,
        "env_steps_per_second": (s1 - s0) / (t1 - t0),
        "final_train_return_mean": float(sum(ep) / len(ep)) if ep else None,
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
        "load_start": load_start,
        "load_end": loadavg(),
        "sb3_version": stable_baselines3.__version__,
        "torch_version": torch.__version__,
    }


def cleanrl_args_fields(script_path) -> set[str]:
    """Field names of the ``Args`` dataclass of a CleanRL script (its tyro flags), read from its source."""
    import re
    from pathlib import Path

    source = Path(script_path).read_text()
    body = source.split("class Args:", 1)[1].split("\n\n\n", 1)[0] if "class Args:" in source else ""
    return set(re.findall(r"^    (\w+): [^=\n]+=", body, flags=re.M))


def cleanrl_argv(algo: str, script_path, total_timesteps: int, seed: int) -> tuple[list[str], dict, list[str]]:
    """The CleanRL script's command line at the benchmark's settings.

    Returns:
        ``(argv, set_flags, unsettable)``: ``set_flags`` maps each flag given to its value; ``unsettable`` lists
        the ``DQN_HP`` / ``SAC_HP`` names whose flag the script does not have.
    """
    fields = cleanrl_args_fields(script_path)
    hp = HP[algo]
    wanted = {"env_id": ENVS[algo], "total_timesteps": total_timesteps, "seed": seed}
    wanted.update({flag: hp[name] for name, flag in CLEANRL_FLAGS[algo].items()})
    wanted.update(CLEANRL_EXTRA[algo])
    argv, given = [], {}
    for field, value in wanted.items():
        if field not in fields:
            continue
        flag = "--" + field.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + field.replace("_", "-"))
        else:
            argv += [flag, str(value)]
        given[field] = value
    unsettable = [name for name, flag in CLEANRL_FLAGS[algo].items() if flag not in fields]
    return argv, given, unsettable


def worker_cleanrl(algo: str, cleanrl_dir: str, script: str, total_timesteps: int, seed: int, warmup_steps: int,
                   max_seconds: float) -> dict:
    load_start = loadavg()
    import hashlib
    from importlib import metadata
    from pathlib import Path

    from cleanrl_runner import run_cleanrl

    script_path = Path(cleanrl_dir) / script
    argv, given, unsettable = cleanrl_argv(algo, script_path, total_timesteps, seed)
    learning_starts = HP[algo]["learning_starts"]
    out = run_cleanrl(str(script_path), argv, cleanrl_dir, learning_starts, warmup_steps, max_seconds)
    import torch

    from jaxrl.runtime import intra_op_pool_threads

    steady = out["steady_state"]
    ep = out["episode_returns"][-100:]  # as SB3's ep_info_buffer
    return {
        "implementation": "CleanRL JAX",
        "algo": algo,
        "seeds": 1,
        "script": script,
        "script_sha256": hashlib.sha256(script_path.read_bytes()).hexdigest()[:16],
        "argv": argv,
        "flags_set": given,
        "hparams_without_flag": unsettable,
        "env_steps_per_seed": out["env_steps"],
        "total_env_steps": steady["steps"],
        "compile_seconds": out["compile_seconds"],
        "xla_compiles": out["xla_compiles"],
        "run_seconds": steady["seconds"],
        "env_steps_per_second": steady["env_steps_per_second"],
        "steady_state": steady,
        "learning_phase": out["learning_phase"],
        "whole_run": out["whole_run"],
        "whole_run_env_steps_per_second": out["whole_run"]["env_steps_per_second"],
        "learning_phase_env_steps_per_second": out["learning_phase"]["env_steps_per_second"],
        "warmup_steps": warmup_steps,
        "script_seconds": out["script_seconds"],
        "stopped_early": out["stopped_early"],
        "last_sps_printed": out["last_sps_printed"],
        "final_train_return_mean": float(sum(ep) / len(ep)) if ep else None,
        "episodes": len(out["episode_returns"]),
        "jax_aliases": out["aliases"],
        "progress_bar_disabled": out["progress_bar_disabled"],
        "peak_rss_mib": peak_rss_mib(),
        "load_start": load_start,
        "load_end": loadavg(),
        "cpu_intra_op_threads": intra_op_pool_threads(),
        "torch_threads": torch.get_num_threads(),
        "tyro_version": metadata.version("tyro"),
        "tensorboard_version": metadata.version("tensorboard"),
    }


# --------------------------------------------------------------------------- parent


def jaxrl_uncommitted() -> list[str]:
    """Files under jaxrl/ that differ from the recorded commit (they are what the jaxrl rows ran)."""
    from bench_common import HERE

    out = subprocess.run(["git", "status", "--porcelain", "--", "jaxrl"], cwd=HERE.parent, capture_output=True, text=True).stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


def ratio(r: dict, ref: dict | None) -> float | None:
    return None if ref is None else r["env_steps_per_second"] / ref["env_steps_per_second"]


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x" if x < 1 else f"{x:.1f}x"


def fmt_row(r: dict) -> str:
    compile_s = "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.1f}"
    impl = r["implementation"]
    if impl == "stable-baselines3":
        impl += " (1 torch thread)"
    else:
        impl += (f" `{r['script'].rsplit('/', 1)[-1]}`" if impl == "CleanRL JAX" else "") + pool_label(r)
    phases = "-"
    if "learning_phase_env_steps_per_second" in r:
        phases = f"{r['whole_run_env_steps_per_second']:,.0f} / {r['learning_phase_env_steps_per_second']:,.0f}"
    return (f"| {r['algo'].upper()} | {impl} | {r['seeds']} | {r['env_steps_per_second']:,.0f} | "
            f"{fmt_ratio(r['ratio_to_sb3'])} | {fmt_ratio(r['ratio_to_cleanrl_jax'])} | {compile_s} | {r['peak_rss_mib']:,.0f} | "
            f"{r['run_seconds']:.1f} | {r['total_env_steps']:,} | {r['load_start'][0]:.2f} / {r['load_end'][0]:.2f} | {phases} | "
            + ", ".join(f"{x:,.0f}" for x in r["all_repeats"]) + " |")


def cleanrl_notes(settings: dict, rows: list[dict]) -> list[str]:
    """The CleanRL rows' settings: flags given, what could not be set, what the runner adapted."""
    lines = []
    for r in rows:
        if r["implementation"] != "CleanRL JAX":
            continue
        algo = r["algo"]
        lines.append(f"- CleanRL {algo.upper()}: `{r['script']}` (sha256 {r['script_sha256']}), run as "
                     f"`{r['script']} {' '.join(r['argv'])}`.")
        if r["hparams_without_flag"]:
            lines.append(f"  - {', '.join(r['hparams_without_flag'])}: no flag in the script, left at its default.")
        for ours, theirs, same in CLEANRL_FIXED[algo]:
            lines.append(f"  - hard-coded in the script ({'same' if same else 'differs'}): jaxrl {ours}; CleanRL {theirs}.")
        window = r["steady_state"]
        lines.append(f"  - timed: env steps {window['steps']:,} from step {HP[algo]['learning_starts'] + r['warmup_steps']:,} "
                     f"(learning_starts + {r['warmup_steps']:,} warm-up) to {r['env_steps_per_seed']:,}"
                     f"{' (stopped by --cleanrl-max-seconds)' if r['stopped_early'] else ''}; XLA compilations inside: "
                     f"{window['xla_compiles']} (whole run: {r['xla_compiles']}, {r['compile_seconds']:.1f} s of JAX tracing, lowering "
                     f"and compiling, the compile column); from learning_starts: {r['learning_phase']['xla_compiles']} compilations, "
                     f"{r['learning_phase']['compile_seconds']:.1f} s. Mean return of its last "
                     f"{min(r['episodes'], 100)} training episodes: {r['final_train_return_mean']:.1f}.")
        adapted = ["gymnasium vector env built with autoreset_mode=SAME_STEP and its info rewritten to gymnasium 0.29's "
                   "`final_observation` / `final_info` layout (the script reads them)"]
        if r["jax_aliases"]:
            adapted.append("removed JAX APIs aliased before the script ran: " + ", ".join(f"`{a}`" for a in r["jax_aliases"]))
        else:
            adapted.append("no removed JAX API used (no alias needed)")
        if r["progress_bar_disabled"]:
            adapted.append("`tqdm.rich` made unimportable (no progress bar: the script prints its SPS lines instead)")
        lines.append("  - adapted by the runner, not in the script: " + "; ".join(adapted) + ".")
    return lines


def render(info: dict, settings: dict, rows: list[dict], command: str) -> str:
    v = info["versions"]
    has_cleanrl = any(r["implementation"] == "CleanRL JAX" for r in rows)
    title = "jaxrl vs stable-baselines3" + (" and CleanRL's JAX scripts" if has_cleanrl else "")
    lines = [
        f"# Off-policy throughput: DQN on CartPole-v1, SAC on Pendulum-v1, {title} (CPU)",
        "",
        f"- date: {info['date']}; git commit: {info['git_commit']}" + (
            f" (uncommitted changes under jaxrl/: {', '.join(settings['jaxrl_uncommitted'])})" if settings.get("jaxrl_uncommitted") else ""),
        f"- machine: {info['cpu_model']}, {info['cpu_count']} cores ({info['cpus_usable']} usable), {info['memory_gib']} GiB RAM; {info['platform']}",
        f"- versions: python {info['python']}, jax {v['jax']} (jaxlib {v['jaxlib']}), flax {v['flax']}, optax {v['optax']}, gymnax {v['gymnax']}, "
        f"torch {v['torch']}, stable-baselines3 {v['stable-baselines3']}, gymnasium {v['gymnasium']}"
        + (f", tyro {v.get('tyro')}, tensorboard {v.get('tensorboard')}" if has_cleanrl else ""),
        f"- load average (1, 5, 15 min) before / after the whole run: {settings['load_before']} / {settings['load_after']} "
        "(the machine is shared: other jobs ran alongside)",
        f"- command: `{command}`",
        "- hyperparameters: as the presets `configs/dqn_cartpole.yaml` and `configs/sac_pendulum.yaml` on every side (see the script's docstring; "
        "CleanRL's exceptions below).",
        f"- jaxrl: DQN {settings['dqn_timesteps']:,} / SAC {settings['sac_timesteps']:,} env steps per seed, seeds vmapped in one program (one seed runs un-vmapped), "
        f"{settings['num_chunks']} chunks, XLA:CPU pool as --cpu-threads {','.join(map(str, settings['cpu_threads']))} (0: XLA's default, one thread per core), in-chunk evaluation off, compile excluded (timed separately); env steps/s is the lower of the "
        "whole run's rate and that of the chunks starting at or after learning_starts (both shown).",
        f"- stable-baselines3: env steps/s of the training phase only (from learning_starts on), at most {settings['sb3_max_seconds']:g} s of it; "
        "1 torch thread, DummyVecEnv of 1 gymnasium env.",
    ]
    if has_cleanrl:
        lines += [
            f"- CleanRL JAX: {settings.get('cleanrl_label') or settings['cleanrl_dir']}; each script unmodified, in a fresh subprocess under "
            "`benchmarks/cleanrl_runner.py` (runpy), with --total-timesteps the jaxrl run's (DQN "
            f"{settings['dqn_timesteps']:,}, SAC {settings['sac_timesteps']:,}: the same epsilon schedule), 1 seed, XLA:CPU's default pool. "
            f"env steps/s: its steady state, from learning_starts + {settings['cleanrl_warmup_steps']:,} env steps (past its lazy JIT "
            "compilation) to the end"
            + (f" or {settings['cleanrl_max_seconds']:g} s" if settings["cleanrl_max_seconds"] > 0 else "")
            + "; the last column but one shows its whole run / from learning_starts, both with its compilation inside.",
        ]
    lines += [
        "- ratios: env steps/s over that of stable-baselines3 / of CleanRL JAX on the same algorithm, measured in this same invocation.",
        f"- repeats: {settings['repeats']} (round-robin); each row shows its fastest repeat; the last column lists every repeat.",
        "",
        "| algorithm | implementation | seeds | env steps/s | ratio to SB3 | ratio to CleanRL JAX | compile s | peak RSS MiB | run s timed | "
        "env steps timed | load 1m start / end | whole run / learning phase | env steps/s of each repeat |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for algo in settings["algos"]:
        lines += [fmt_row(r) for r in rows if r["algo"] == algo]
    notes = cleanrl_notes(settings, rows)
    if notes:
        lines += ["", "CleanRL settings, and what differs from jaxrl's:", "", *notes]
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="dqn,sac")
    p.add_argument("--seeds", default="1,4", help="comma-separated seed counts for jaxrl")
    p.add_argument("--dqn-timesteps", type=int, default=500_000, help="jaxrl DQN env steps per seed")
    p.add_argument("--sac-timesteps", type=int, default=10_000, help="jaxrl SAC env steps per seed")
    p.add_argument("--num-chunks", type=int, default=4)
    p.add_argument("--cpu-threads", default="0", help="comma-separated XLA:CPU pool sizes for the jaxrl rows "
                   "(0: XLA's default, one per core; as experiments/train.py --cpu-threads)")
    p.add_argument("--sb3-max-seconds", type=float, default=60.0, help="seconds of SB3's training phase timed")
    p.add_argument("--repeats", type=int, default=1, help="round-robin repeats of every row; each row reports its fastest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cleanrl-dir", default=None, help="checkout of github.com/vwxyzjn/cleanrl: adds the CleanRL JAX rows")
    p.add_argument("--cleanrl-dqn-script", default=CLEANRL_SCRIPTS["dqn"], help="relative to --cleanrl-dir")
    p.add_argument("--cleanrl-sac-script", default=CLEANRL_SCRIPTS["sac"],
                   help="relative to --cleanrl-dir (the default is CleanRL pull request #519's file, not on its master branch)")
    p.add_argument("--cleanrl-warmup-steps", type=int, default=1000,
                   help="env steps after learning_starts left out of CleanRL's timed window (its lazy JIT compilation)")
    p.add_argument("--cleanrl-max-seconds", type=float, default=0.0,
                   help="stop a CleanRL run this many seconds into its timed window (0: run all its steps)")
    p.add_argument("--cleanrl-label", default=None, help="where the CleanRL scripts come from (printed in the results)")
    p.add_argument("--worker-timeout", type=float, default=1200.0)
    p.add_argument("--out-name", default="offpolicy_throughput_cpu", help="results/<name>.md and .json")
    p.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker is not None:
        kind, algo, *rest = args.worker
        if kind == "jax":
            n, steps, chunks, seed, threads = map(int, rest)
            result = worker_jax(algo, n, steps, chunks, seed, threads)
        elif kind == "cleanrl":
            cleanrl_dir, script, steps, seed, warmup, max_seconds = rest
            result = worker_cleanrl(algo, cleanrl_dir, script, int(steps), int(seed), int(warmup), float(max_seconds))
        else:
            result = worker_sb3(algo, int(rest[0]), int(rest[1]), float(rest[2]))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    command = "python benchmarks/offpolicy_throughput.py" + "".join(f" {a}" for a in sys.argv[1:])
    info = machine_info()
    settings = {
        "algos": args.algos.split(","),
        "seeds": [int(s) for s in args.seeds.split(",")],
        "dqn_timesteps": args.dqn_timesteps,
        "sac_timesteps": args.sac_timesteps,
        "num_chunks": args.num_chunks,
        "cpu_threads": [int(t) for t in args.cpu_threads.split(",")],
        "sb3_max_seconds": args.sb3_max_seconds,
        "cleanrl_dir": args.cleanrl_dir,
        "cleanrl_label": args.cleanrl_label,
        "cleanrl_warmup_steps": args.cleanrl_warmup_steps,
        "cleanrl_max_seconds": args.cleanrl_max_seconds,
        "jaxrl_uncommitted": jaxrl_uncommitted(),
        "load_before": loadavg(),
    }
    scripts = {"dqn": args.cleanrl_dqn_script, "sac": args.cleanrl_sac_script}
    if args.cleanrl_dir:
        from pathlib import Path

        for algo in settings["algos"]:
            if not (Path(args.cleanrl_dir) / scripts[algo]).is_file():
                raise SystemExit(f"--cleanrl-dir: no {scripts[algo]} in {args.cleanrl_dir}"
                                 + (" (CleanRL's JAX SAC is in its pull request #519: git show "
                                    "refs/pull/519/head:cleanrl/sac_continuous_action_jax.py in a clone that fetched it)" if algo == "sac" else ""))
    for dist in ("tyro", "tensorboard"):
        try:
            info["versions"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info["versions"][dist] = None
    print(f"machine: {info['cpu_model']}, {info['cpu_count']} cores; load {settings['load_before']}", flush=True)
    configs = []
    for algo in settings["algos"]:
        # SB3 timed on the learning phase: enough steps past learning_starts for the time limit to end it.
        sb3_steps = (DQN_HP if algo == "dqn" else SAC_HP)["learning_starts"] + 1_000_000
        configs.append(["sb3", algo, str(sb3_steps), str(args.seed), str(args.sb3_max_seconds)])
        steps = args.dqn_timesteps if algo == "dqn" else args.sac_timesteps
        if args.cleanrl_dir:
            configs.append(["cleanrl", algo, args.cleanrl_dir, scripts[algo], str(steps), str(args.seed),
                            str(args.cleanrl_warmup_steps), str(args.cleanrl_max_seconds)])
        configs += [["jax", algo, str(n), str(steps), str(args.num_chunks), str(args.seed), str(t)]
                    for n in settings["seeds"] for t in distinct_pool_sizes(settings["cpu_threads"])]
    samples = [[] for _ in configs]
    for repeat in range(args.repeats):  # round-robin, so every row sees every phase of the machine's load
        for config, found in zip(configs, samples):
            print(" ".join(config[:2] + config[3:4] if config[0] == "cleanrl" else config[:3]) + (f" cpu-threads {config[-1]}" if config[0] == "jax" else "") + (f" (repeat {repeat + 1}/{args.repeats})" if args.repeats > 1 else ""), flush=True)
            r = run_worker(__file__, config, args.worker_timeout)
            print(f"  {r['env_steps_per_second']:,.0f} env steps/s, load {r['load_end']}", flush=True)
            found.append(r)
    rows = []
    for found in samples:  # each row: its fastest repeat (the least disturbed by other jobs); all kept in the JSON
        best = dict(max(found, key=lambda r: r["env_steps_per_second"]))
        best["all_repeats"] = [round(r["env_steps_per_second"], 1) for r in found]
        rows.append(best)
    for r in rows:
        refs = {impl: next((x for x in rows if x["algo"] == r["algo"] and x["implementation"] == impl), None)
                for impl in ("stable-baselines3", "CleanRL JAX")}
        r["ratio_to_sb3"] = ratio(r, refs["stable-baselines3"])
        r["ratio_to_cleanrl_jax"] = ratio(r, refs["CleanRL JAX"])
    settings["repeats"] = args.repeats
    settings["load_after"] = loadavg()
    text = render(info, settings, rows, command)
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.md").write_text(text)
    payload = {"command": command, "machine": info, "settings": settings, "results": rows}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS / (args.out_name + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
