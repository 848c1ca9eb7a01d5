"""jaxrl's SAC against stable-baselines3's SAC on the same MDP: MuJoCo's InvertedPendulum.

    python benchmarks/sac_inverted_pendulum.py                       # 3 seeds x 30k steps each side
    python benchmarks/sac_inverted_pendulum.py --seeds 2 --total-timesteps 10000 --out-name smoke

jaxrl trains on ``brax/inverted_pendulum`` with brax's ``mjx`` backend (MuJoCo
physics in JAX, the same model file, frame skip 2 and 0.02 s timestep as
Gymnasium's), stable-baselines3 on Gymnasium's ``InvertedPendulum-v5``. Both use
the same SAC settings: 64-64 ReLU actor and twin critics, Adam 3e-4, batch
256, replay 1M, 1000 warm-up steps, one env, one learner step per env step,
tau 0.005, gamma 0.99, learned temperature from 1.0 with target entropy -1.
Every ``--eval-every`` steps each seed's deterministic policy plays
``--eval-episodes`` episodes (jaxrl: its chunked driver's evaluation; SB3:
``evaluate_policy``). This is a learning comparison, not a speed one: it checks
that a failure to learn is the algorithm's on this task, not jaxrl's.

Needs the ``bench`` extra (stable-baselines3, torch, gymnasium, imageio for
Gymnasium's MuJoCo module); brax brings mujoco and mujoco-mjx.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from bench_common import RESULTS, machine_info

SETTINGS = dict(hidden_sizes=(64, 64), lr=3e-4, q_lr=3e-4, batch_size=256, buffer_size=1_000_000, learning_starts=1000,
                num_envs=1, steps_per_update=1, gradient_steps=1, tau=0.005, gamma=0.99, init_alpha=1.0)


def run_jaxrl(seeds: int, total: int, eval_every: int, eval_episodes: int) -> np.ndarray:
    """``[evaluations, seeds]`` mean deterministic evaluation returns, seeds vmapped in one program."""
    from jaxrl import train

    result = train(algo="sac", env="brax/inverted_pendulum", env_kwargs={"backend": "mjx", "episode_length": 1000},
                   num_seeds=seeds, total_timesteps=total, num_chunks=total // eval_every, eval_episodes=eval_episodes,
                   activation="relu", quiet=True, **SETTINGS)
    return np.asarray(result.curves["eval_returns"]).mean(-1)[:, 0, :]


def run_sb3(seeds: int, total: int, eval_every: int, eval_episodes: int) -> np.ndarray:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    curves = []
    for seed in range(seeds):
        model = SAC("MlpPolicy", gym.make("InvertedPendulum-v5"), policy_kwargs=dict(net_arch=list(SETTINGS["hidden_sizes"])),
                    learning_rate=SETTINGS["lr"], batch_size=SETTINGS["batch_size"], buffer_size=SETTINGS["buffer_size"],
                    learning_starts=SETTINGS["learning_starts"], tau=SETTINGS["tau"], gamma=SETTINGS["gamma"], seed=seed)
        curve = []
        for _ in range(total // eval_every):
            model.learn(eval_every, reset_num_timesteps=False)
            mean, _ = evaluate_policy(model, gym.make("InvertedPendulum-v5"), n_eval_episodes=eval_episodes, deterministic=True)
            curve.append(mean)
        curves.append(curve)
    return np.asarray(curves, np.float64).T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--total-timesteps", type=int, default=30_000)
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--eval-episodes", type=int, default=8)
    p.add_argument("--out-name", default="sac_inverted_pendulum")
    args = p.parse_args()
    if args.total_timesteps % args.eval_every:
        p.error("--total-timesteps must be a multiple of --eval-every")
    curves = {"jaxrl (brax mjx)": run_jaxrl(args.seeds, args.total_timesteps, args.eval_every, args.eval_episodes),
              "stable-baselines3 (Gymnasium MuJoCo)": run_sb3(args.seeds, args.total_timesteps, args.eval_every, args.eval_episodes)}
    steps = [args.eval_every * (i + 1) for i in range(args.total_timesteps // args.eval_every)]
    lines = [f"# SAC on InvertedPendulum: jaxrl vs stable-baselines3 ({args.seeds} seeds)", "",
             f"- machine: {machine_info()}", f"- command: `python benchmarks/sac_inverted_pendulum.py {' '.join(sys.argv[1:])}`",
             f"- settings (both): {SETTINGS}", "- cells: deterministic evaluation return per seed (max 1000)", "",
             "| implementation | " + " | ".join(f"{s:,} steps" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for name, curve in curves.items():
        cells = [", ".join(f"{x:.0f}" for x in row) for row in curve]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.md").write_text(text)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps({"steps": steps, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in SETTINGS.items()},
                                                               "curves": {k: v.tolist() for k, v in curves.items()}}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
